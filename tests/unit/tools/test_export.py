"""embinit-export on a hand-built run directory: word2vec files, projector TSVs, neighbours."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gensim.models import KeyedVectors

import embinit
from embinit.record import INIT_EMBEDDING_FILE
from embinit.tools.export import export_run, main, nearest, token_keys
from tests.unit.tools.test_load import TEXT, TINY_MODEL, make_run_dir


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run_dir(tmp_path / "run")


def test_word2vec_files_hold_init_and_final_rows_by_token(run_dir: Path, tmp_path: Path) -> None:
    out = export_run(run_dir, tmp_path / "out")
    loaded = embinit.load_run(run_dir)
    final = loaded.model.wte.weight.detach().numpy()
    init = np.load(run_dir / INIT_EMBEDDING_FILE)
    for name, matrix in (("init", init), ("final", final)):
        kv = KeyedVectors.load_word2vec_format(str(out / f"{name}.w2v.bin"), binary=True)
        assert len(kv) == matrix.shape[0]
        the = loaded.tokenizer.token_to_id("Ġthe")
        np.testing.assert_allclose(kv["Ġthe"], matrix[the], rtol=1e-6)
        vectors = np.loadtxt(out / "projector" / f"{name}_vectors.tsv", delimiter="\t")
        np.testing.assert_allclose(vectors, matrix, rtol=1e-5, atol=1e-7)
    meta = (out / "projector" / "metadata.tsv").read_text().splitlines()
    assert meta[0] == "token\ttext\tid" and len(meta) == final.shape[0] + 1
    the_row = next(line.split("\t") for line in meta[1:] if line.startswith("Ġthe\t"))
    assert the_row[1] == " the"  # decoded readably
    assert 'tensor_path: "init_vectors.tsv"' in (out / "projector" / "projector_config.pbtxt").read_text()


def test_neighbours_of_probes_at_init_and_final(run_dir: Path, tmp_path: Path) -> None:
    out = export_run(run_dir, tmp_path / "out", probes=["the", "city", "zebra"], k=3)
    nb = json.loads((out / "neighbours.json").read_text())
    assert set(nb["probes"]) == {"the", "city"} and nb["missing"] == ["zebra"]
    the = nb["probes"]["the"]
    assert the["token"] == "Ġthe" and len(the["init"]) == len(the["final"]) == 3
    assert all(n["token"] != "Ġthe" for n in the["final"])
    md = (out / "neighbours.md").read_text()
    assert "## the (`Ġthe`)" in md and "zebra" in md


def test_keys_are_unique_and_whitespace_free() -> None:
    class Tok:  # a vocabulary with a space, a duplicate-looking key and a hole
        tokens = {0: "a b", 1: "a\\u0020b#0", 2: None, 3: "x"}

        def id_to_token(self, i: int) -> str | None:
            return self.tokens[i]

    keys = token_keys(Tok(), 4)
    assert len(set(keys)) == 4 and not any(c.isspace() for k in keys for c in k)


def test_nearest_is_cosine_and_excludes_the_row() -> None:
    m = np.array([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    assert [i for i, _ in nearest(m, 0, 3)] == [1, 2, 3]


def test_run_without_init_exports_final_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run_dir(tmp_path / "old", with_init=False)
    assert main([str(run)]) == 0
    assert (run / "export" / "final.w2v.bin").exists() and not (run / "export" / "init.w2v.bin").exists()
    assert "only the final matrix" in (run / "export" / "neighbours.md").read_text()
    assert main([str(tmp_path / "missing")]) == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize("tied", [True, False])
def test_hf_export_gives_the_same_logits(tmp_path: Path, tied: bool) -> None:
    transformers = pytest.importorskip("transformers")
    import dataclasses

    import torch

    run_dir = make_run_dir(tmp_path / "run", model_cfg=dataclasses.replace(TINY_MODEL, tie_embeddings=tied))
    out = export_run(run_dir, tmp_path / "out", hf=True)
    loaded = embinit.load_run(run_dir)
    hf_model = transformers.GPT2LMHeadModel.from_pretrained(str(out / "hf")).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(out / "hf"))
    ids = hf_tok("The city of the king")["input_ids"]
    assert ids == loaded.tokenizer.encode("The city of the king").ids
    with torch.no_grad():
        ours, _ = loaded.model(torch.tensor([ids]))
        theirs = hf_model(torch.tensor([ids])).logits
    torch.testing.assert_close(theirs, ours, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def embinit_tokenizer() -> Any:
    """A tokenizer trained as a run trains it (ids 0/1 = <|endoftext|>/<unk>), on real text."""
    from embinit.config import DataConfig, VocabConfig
    from embinit.run.data.corpus import open_corpus
    from embinit.run.data.tokenizer import train_tokenizer

    docs = [d.text for d in open_corpus(DataConfig(name="wiki_sample", max_docs=2))]
    return train_tokenizer(docs[:1], VocabConfig(name="bpe", size=400, min_count=2))


def test_run_and_hf_tokenizers_round_trip_the_special_strings(
        tmp_path: Path, embinit_tokenizer: Any) -> None:
    from tokenizers import Tokenizer

    from embinit.record import TOKENIZER_FILE
    from tests.unit.run.data.test_portable import MULTI_SCRIPT, SPECIALS

    run_dir = make_run_dir(tmp_path / "run", tokenizer=embinit_tokenizer)
    texts = [MULTI_SCRIPT, TEXT[:400] + "<|endoftext|>" + TEXT[400:800] + " <unk>"]
    expected = [embinit_tokenizer.encode(t).ids for t in texts]
    plain = Tokenizer.from_file(str(run_dir / TOKENIZER_FILE))
    assert [plain.encode(t).ids for t in texts] == expected
    assert [plain.decode(ids) for ids in expected] == texts
    transformers = pytest.importorskip("transformers")
    hf_dir = export_run(run_dir, tmp_path / "out", hf=True) / "hf"
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(hf_dir))
    assert [hf_tok(t)["input_ids"] for t in texts] == expected
    assert [hf_tok.decode(ids) for ids in expected] == texts
    assert hf_tok.decode([0, *expected[1], 0], skip_special_tokens=True) == texts[1]
    assert (hf_tok.eos_token, hf_tok.bos_token, hf_tok.pad_token, hf_tok.unk_token) == (
        SPECIALS[0], SPECIALS[0], SPECIALS[0], SPECIALS[1])
    exported = Tokenizer.from_file(str(hf_dir / "tokenizer.json"))  # the export's own file too
    assert [exported.decode(exported.encode(t).ids) for t in texts] == texts


def test_hf_export_generate_stops_at_the_end_of_document_id(
        tmp_path: Path, embinit_tokenizer: Any) -> None:
    transformers = pytest.importorskip("transformers")
    import torch

    run_dir = make_run_dir(tmp_path / "run", tokenizer=embinit_tokenizer)
    hf_dir = export_run(run_dir, tmp_path / "out", hf=True) / "hf"
    model = transformers.GPT2LMHeadModel.from_pretrained(str(hf_dir)).eval()
    eod = embinit_tokenizer.token_to_id("<|endoftext|>")
    assert eod == 0
    for cfg in (model.config, model.generation_config):
        assert (cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id) == (eod, eod, eod)
    prompt = torch.tensor([embinit_tokenizer.encode("The king").ids])
    assert prompt.shape[1] + 8 <= TINY_MODEL.block_size
    with torch.no_grad():  # every position's hidden state is e_0; only the EOD row reads it
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.zero_()
        model.transformer.ln_f.bias[0] = 1.0
        model.lm_head.weight.zero_()  # tied: the input embedding too, which no longer matters
        model.lm_head.weight[eod, 0] = 10.0
        mask = torch.ones_like(prompt)
        out = model.generate(prompt, attention_mask=mask, max_new_tokens=8, do_sample=False)
        assert out[0, prompt.shape[1]:].tolist() == [eod]  # one token, then it stopped
        # Told to stop on another id (<unk>), it goes on (the prompt + 8 fit block_size 16).
        never = model.generate(prompt, attention_mask=mask, max_new_tokens=8, do_sample=False,
                               eos_token_id=1)
        assert never[0, prompt.shape[1]:].tolist() == [eod] * 8
