"""An offline install: `make wheelhouse`, then `make install-offline` into a fresh venv that
has torch and nothing else, with no index; `train=smoke` and gpu-check's dry run from it.

Opt-in, because it takes about 80 s on two cores, most of it pip unpacking numpy, scipy and
pandas (docs/gpu.md has the measured size and times):

    EMBINIT_TEST_WHEELHOUSE=build pytest tests/e2e/test_wheelhouse.py   # builds one (index)
    EMBINIT_TEST_WHEELHOUSE=.whl  pytest tests/e2e/test_wheelhouse.py   # uses a built one

The venv sees torch and torch's own dependencies only (symlinked into one folder named by a
.pth file), as a GPU node's environment has them; every other package must come from the
wheelhouse, since pip runs with --no-index and no configuration.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.cli import ROOT, TINY, cli_env

WHEELHOUSE = os.environ.get("EMBINIT_TEST_WHEELHOUSE", "")
pytestmark = pytest.mark.skipif(
    not WHEELHOUSE, reason="opt-in (~80 s): EMBINIT_TEST_WHEELHOUSE=build, or =DIR of a "
                           "built wheelhouse (see docs/gpu.md)")


def torch_only_site(out: Path) -> set[str]:
    """Symlink torch and its dependencies (as installed here) into ``out``; their names."""
    out.mkdir(parents=True, exist_ok=True)
    todo, seen = ["torch"], set()
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        seen.add(name)
        todo += [r.name for r in map(Requirement, dist.requires or [])
                 if r.marker is None or r.marker.evaluate({"extra": ""})]
        base = Path(str(dist.locate_file("")))
        for top in {Path(str(f)).parts[0] for f in dist.files or []}:
            if top not in ("..", "__pycache__") and not top.endswith(".pth") \
                    and (base / top).exists() and not (out / top).exists():
                (out / top).symlink_to(base / top)
    return seen


def _env() -> dict[str, str]:
    env = cli_env()
    for key in [k for k in env if k.startswith("PIP_")] + ["VIRTUAL_ENV", "PYTHONPATH"]:
        env.pop(key, None)
    # No configured find-links, extra indexes or constraints: the wheelhouse alone.
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PYTHONNOUSERSITE="1", WANDB_MODE="disabled", HF_HUB_OFFLINE="1")
    return env


def _make(*args: str, timeout: float = 600, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc.stdout


@pytest.fixture(scope="module")
def offline_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("offline")
    if WHEELHOUSE == "build":
        house = tmp / "whl"
        _make("wheelhouse", f"PYTHON={sys.executable}", f"WHEELHOUSE={house}")
    else:
        house = Path(WHEELHOUSE).resolve()
    wheels = {p.name.split("-")[0].lower() for p in house.glob("*.whl")}
    assert "embinit" in wheels and not wheels & {"torch", "triton"}, sorted(wheels)
    assert not any(w.startswith("nvidia") for w in wheels)
    torch_dir = tmp / "torch_site"
    torch_dists = torch_only_site(torch_dir)
    venv.EnvBuilder(with_pip=True).create(tmp / "venv")
    py = tmp / "venv" / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "_node_torch.pth").write_text(f"{torch_dir}\n")
    _make("install-offline", f"PYTHON={py}", f"WHEELHOUSE={house}", env=_env())
    listed = subprocess.run(
        [str(py), "-c", "import importlib.metadata as m, json; print(json.dumps("
         "{d.metadata['Name']: str(d.locate_file('')) for d in m.distributions()}))"],
        env=_env(), capture_output=True, text=True, check=True).stdout
    where = {canonicalize_name(k): v for k, v in json.loads(listed).items()}
    assert {"embinit", "numpy", "gensim", "hydra-core", "pytest"} <= set(where)
    parent = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    leaked = {n: w for n, w in where.items() if n not in torch_dists and w in parent}
    assert not leaked, leaked  # all but torch's came from the wheelhouse, into the venv
    return py, tmp


def test_train_smoke_from_the_offline_install(offline_venv: tuple[Path, Path]) -> None:
    py, tmp = offline_venv
    work = tmp / "empty"
    work.mkdir()
    train = py.parent / "embinit-train"
    proc = subprocess.run([str(train), *TINY], cwd=work, env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (summary,) = work.rglob("summary.json")
    assert json.loads(summary.read_text())["status"] == "completed"
    where = subprocess.run([str(py), "-c", "import embinit; print(embinit.__file__)"], cwd=work,
                           env=_env(), capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(tmp / "venv")), where  # the wheel's embinit, not the checkout


def test_gpu_check_dry_run_needs_only_torch_and_the_wheelhouse(
        offline_venv: tuple[Path, Path]) -> None:
    py, tmp = offline_venv
    proc = subprocess.run([str(py), "-m", "embinit.tools.gpu_check", "--dry-run", "--out",
                           str(tmp / "gpu")], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    result = json.loads((tmp / "gpu" / "dry_run" / "gpu_check.json").read_text())
    assert all(s["status"] == "passed" for s in result["steps"]), result["steps"]
