"""Export a finished run's input embeddings: `embinit-export RUN_DIR [--out DIR]`.

Writes into `--out` (default `RUN_DIR/export`), for the initial matrix (`init_embedding.npy`)
and the trained one (the model's `wte`):

    init.w2v.bin, final.w2v.bin     word2vec binary (gensim `KeyedVectors.load_word2vec_format(
                                    path, binary=True)`), keyed by the token strings (`Ġthe`)
    projector/{init,final}_vectors.tsv, projector/metadata.tsv, projector/projector_config.pbtxt
                                    the TensorBoard Embedding Projector's input (one row per token)
    neighbours.json, neighbours.md  the nearest neighbours (cosine) of probe words, init vs final
    hf/ (with --hf)                 the trained model as a Hugging Face GPT2LMHeadModel + its
                                    tokenizer (`from_pretrained("hf")`, pipelines, lm-eval-harness);
                                    bos/eos/pad are the end-of-document token, and a literal
                                    `<|endoftext|>` in text stays text (`portable_json`)

Keys are the tokenizer's own strings: unique and without whitespace (byte-level tokens write
a space as `Ġ`), so the word2vec format round-trips. The metadata's `text` column shows each
token decoded (`Ġthe` -> ` the`, whitespace escaped). Pickled `.kv` files are not written:
loading them runs code from the file.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embinit.errors import DataError, EmbinitError
from embinit.storage import atomic_write_json, atomic_write_text

# Frequent English words from several fields, so any Wikipedia-trained arm has most of them.
PROBE_WORDS = ("the", "of", "one", "city", "king", "war", "music", "science", "water",
               "january", "british", "first", "good", "house", "river")
N_NEIGHBOURS = 10


_NAMED_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(text: str) -> str:
    """Control and line-separator characters made visible, so a TSV cell stays one line."""
    return "".join(_NAMED_ESCAPES.get(c) or (c if c.isprintable() else f"\\u{ord(c):04x}")
                   for c in text)


def token_keys(tokenizer: Any, vocab_size: int) -> list[str]:
    """One unique, whitespace-free key per row: the token string (`<rowN>` for unused rows)."""
    keys = []
    seen: set[str] = set()
    for i in range(vocab_size):
        tok = tokenizer.id_to_token(i)
        key = f"<row{i}>" if tok is None else tok
        if any(c.isspace() for c in key) or key in seen:
            # Any whitespace as \uXXXX plus the row: still unique, still one word.
            key = "".join(f"\\u{ord(c):04x}" if c.isspace() else c for c in key) + f"#{i}"
        seen.add(key)
        keys.append(key)
    return keys


def token_texts(tokenizer: Any, vocab_size: int) -> list[str]:
    """Each row decoded on its own (`Ġthe` -> ` the`), whitespace escaped; not unique."""
    return [_escape(tokenizer.decode([i], skip_special_tokens=False)) for i in range(vocab_size)]


def probe_ids(tokenizer: Any, words: Sequence[str]) -> dict[str, int]:
    """Probe word -> its token id, when the word is one token (` word` first, as in text)."""
    found = {}
    for w in words:
        for cand in (f" {w}", w):
            ids = tokenizer.encode(cand, add_special_tokens=False).ids
            if len(ids) == 1:
                found[w] = ids[0]
                break
    return found


def nearest(matrix: np.ndarray, row: int, k: int) -> list[tuple[int, float]]:
    """The k rows with the highest cosine similarity to `row` (itself excluded)."""
    m = matrix.astype(np.float64)
    norms = np.linalg.norm(m, axis=1)
    norms[norms == 0] = 1.0
    sims = (m @ m[row]) / (norms * norms[row])
    sims[row] = -np.inf
    top = np.argsort(-sims, kind="stable")[:k]
    return [(int(i), float(sims[i])) for i in top]


def _save_word2vec(path: Path, keys: list[str], matrix: np.ndarray) -> None:
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vector_size=matrix.shape[1], dtype=np.float32)
    kv.add_vectors(keys, matrix.astype(np.float32))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        kv.save_word2vec_format(str(tmp), binary=True)
        os.replace(tmp, path)  # atomic: a reader sees the old file or the whole new one
    finally:
        tmp.unlink(missing_ok=True)


def _tsv(matrix: np.ndarray) -> str:
    return "".join("\t".join(f"{x:.6g}" for x in row) + "\n" for row in matrix)


def gpt2_state_dict(state: dict[str, Any], n_layer: int) -> dict[str, Any]:
    """Our GPT's state_dict under GPT2LMHeadModel's names.

    The names already follow GPT-2's; HF stores its projections as Conv1D (in x out), the
    transpose of nn.Linear's (out x in), so those weights are transposed.
    """
    out = {"transformer.wte.weight": state["wte.weight"], "transformer.wpe.weight": state["wpe.weight"],
           "lm_head.weight": state["lm_head.weight"]}
    for name in ("weight", "bias"):
        if f"ln_f.{name}" in state:
            out[f"transformer.ln_f.{name}"] = state[f"ln_f.{name}"]
    for i in range(n_layer):
        for key, value in state.items():
            prefix = f"blocks.{i}."
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix):]
            conv = rest.endswith(".weight") and rest.split(".")[-2] in ("c_attn", "c_proj", "c_fc")
            out[f"transformer.h.{i}.{rest}"] = value.t().contiguous() if conv else value
    return out


def export_hf(loaded: Any, out_dir: Path) -> Path:
    """Write the trained model as a GPT2LMHeadModel (safetensors) + a fast tokenizer."""
    try:
        from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
    except ImportError as exc:
        raise DataError("--hf needs transformers: pip install transformers") from exc
    from embinit.run.data.tokenizer import portable_json

    cfg = loaded.model.cfg
    eod, unk = special_tokens(loaded)
    eod_id = None if eod is None else loaded.tokenizer.token_to_id(eod)
    hf_cfg = GPT2Config(
        vocab_size=loaded.model.vocab_size, n_positions=cfg.block_size, n_embd=cfg.d_model,
        n_layer=cfg.n_layer, n_head=cfg.n_head, n_inner=4 * cfg.d_model,
        activation_function="gelu",  # nn.GELU() is the exact (erf) GELU, not GPT-2's tanh one
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5,
        tie_word_embeddings=bool(cfg.tie_embeddings),
        # The run's end-of-document id, not GPT-2's 50256: generate() stops on it.
        bos_token_id=eod_id, eos_token_id=eod_id, pad_token_id=eod_id,
    )
    hf_model = GPT2LMHeadModel(hf_cfg)
    target = hf_model.state_dict()
    ours = gpt2_state_dict(loaded.model.state_dict(), cfg.n_layer)
    for key in target:
        if key in ours:
            target[key] = ours[key].detach().to(target[key].dtype)
        elif key.endswith("bias") and not cfg.bias:
            target[key] = target[key].new_zeros(target[key].shape)  # bias=False == a zero bias
        elif key.endswith(("attn.bias", "attn.masked_bias")):
            continue  # HF's causal-mask buffers
        else:
            raise DataError(f"no weight for {key} in this run's model: cannot export it to GPT-2")
    hf_model.load_state_dict(target)
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(hf_model.generation_config, key, eod_id)
    hf_dir = out_dir / "hf"
    hf_model.save_pretrained(str(hf_dir))  # safetensors: no pickle
    # split_special_tokens: AutoTokenizer reads a literal "<|endoftext|>" in text as text, as
    # embinit does (encode_special_tokens); tokenizer.json is made portable for plain loaders.
    tok = PreTrainedTokenizerFast(tokenizer_object=loaded.tokenizer, split_special_tokens=True)
    if eod_id is not None:
        tok.eos_token = tok.bos_token = tok.pad_token = eod
    if unk is not None and loaded.tokenizer.token_to_id(unk) is not None:
        tok.unk_token = unk
    tok.model_max_length = cfg.block_size
    tok.save_pretrained(str(hf_dir))
    tok_file = hf_dir / "tokenizer.json"
    atomic_write_text(tok_file, portable_json(tok_file.read_text(encoding="utf-8")))
    return hf_dir


def special_tokens(loaded: Any) -> tuple[str | None, str | None]:
    """(end-of-document, unknown) token strings of a loaded run: its vocab config's, else the
    defaults; None where the tokenizer lacks one."""
    from embinit.config import VocabConfig

    vocab = loaded.config.get("vocab") or {}
    found = []
    for key in ("eod_token", "unk_token"):
        token = vocab.get(key) or getattr(VocabConfig, key)
        found.append(token if loaded.tokenizer.token_to_id(token) is not None else None)
    return found[0], found[1]


def export_run(run_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None,
               probes: Sequence[str] = PROBE_WORDS, k: int = N_NEIGHBOURS,
               hf: bool = False) -> Path:
    """Write the exports (see the module docstring); returns the output directory."""
    from embinit.load import load_run

    loaded = load_run(run_dir)
    final = loaded.model.wte.weight.detach().cpu().float().numpy()
    vocab_size = final.shape[0]
    init = loaded.init_embedding()
    if init is not None and init.shape != final.shape:
        raise DataError(f"{loaded.dir}/init_embedding.npy has shape {init.shape} but the model's "
                        f"embedding is {final.shape}; the files come from different runs: re-run it")
    matrices = {"final": final} if init is None else {"init": init, "final": final}

    out_dir = Path(out) if out is not None else loaded.dir / "export"
    (out_dir / "projector").mkdir(parents=True, exist_ok=True)
    keys = token_keys(loaded.tokenizer, vocab_size)
    texts = token_texts(loaded.tokenizer, vocab_size)
    for name, m in matrices.items():
        _save_word2vec(out_dir / f"{name}.w2v.bin", keys, m)
        atomic_write_text(out_dir / "projector" / f"{name}_vectors.tsv", _tsv(m))
    # Multi-column metadata has a header row; `token` is unique, `text` is readable.
    atomic_write_text(out_dir / "projector" / "metadata.tsv",
                      "token\ttext\tid\n"
                      + "".join(f"{_escape(k_)}\t{t}\t{i}\n" for i, (k_, t) in enumerate(zip(keys, texts, strict=True))))
    atomic_write_text(out_dir / "projector" / "projector_config.pbtxt", "".join(
        f'embeddings {{\n  tensor_name: "{name}"\n  tensor_path: "{name}_vectors.tsv"\n'
        f'  metadata_path: "metadata.tsv"\n}}\n' for name in matrices))

    ids = probe_ids(loaded.tokenizer, probes)
    neighbours: dict[str, Any] = {"run": str(loaded.dir), "k": k, "metric": "cosine",
                                  "missing": [w for w in probes if w not in ids], "probes": {}}
    lines = [f"# Nearest neighbours (cosine) in {loaded.dir}\n"]
    for word, row in ids.items():
        entry: dict[str, Any] = {"token": keys[row], "id": row}
        lines.append(f"\n## {word} (`{keys[row]}`)\n\n| rank | "
                     + " | ".join(matrices) + " |\n| ---: |" + " --- |" * len(matrices) + "\n")
        cols = []
        for name, m in matrices.items():
            nn = nearest(m, row, k)
            entry[name] = [{"token": keys[i], "text": texts[i], "cosine": round(s, 4)} for i, s in nn]
            cols.append([f"`{texts[i]}` {s:.3f}" for i, s in nn])
        neighbours["probes"][word] = entry
        for r, cells in enumerate(zip(*cols, strict=True), start=1):
            lines.append(f"| {r} | " + " | ".join(c.replace("|", "\\|") for c in cells) + " |\n")
    if neighbours["missing"]:
        lines.append("\nNot a single token in this vocabulary: "
                     + ", ".join(neighbours["missing"]) + "\n")
    if init is None:
        lines.append("\nThis run saved no init_embedding.npy: only the final matrix is exported.\n")
    atomic_write_json(out_dir / "neighbours.json", neighbours)
    atomic_write_text(out_dir / "neighbours.md", "".join(lines))
    if hf:
        export_hf(loaded, out_dir)
    return out_dir


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="embinit-export",
        description="Export a finished run's initial and final input embeddings (word2vec binary, "
        "TensorBoard projector TSV) and the nearest neighbours of probe words.",
    )
    parser.add_argument("run_dir", help="a finished run: experiments/<study>/<arm>/seed<k>")
    parser.add_argument("--out", help="output directory (default: RUN_DIR/export)")
    parser.add_argument("--probe", action="append", metavar="WORD",
                        help=f"a probe word (repeatable; default: {', '.join(PROBE_WORDS)})")
    parser.add_argument("-k", type=int, default=N_NEIGHBOURS, help="neighbours per probe word")
    parser.add_argument("--hf", action="store_true",
                        help="also write OUT/hf: a Hugging Face GPT2LMHeadModel + tokenizer (needs transformers)")
    args = parser.parse_args(argv)
    try:
        out = export_run(args.run_dir, args.out, args.probe or PROBE_WORDS, args.k, args.hf)
    except EmbinitError as e:
        print(f"embinit-export: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out} (word2vec binary, projector/ TSV, neighbours.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
