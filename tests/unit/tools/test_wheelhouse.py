"""embinit.tools.wheelhouse's pure parts: target platforms, requirements, and what is kept
once torch is left out. The whole path (build, offline install, train) is
tests/e2e/test_wheelhouse.py, opt-in."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from embinit.tools.wheelhouse import kept_packages, platform_tags, select_requirements
from tests.conftest import ROOT


def test_manylinux_platform_expands_to_every_older_tag() -> None:
    tags = platform_tags("manylinux_2_28_x86_64")
    assert tags[0] == "manylinux_2_28_x86_64" and tags[-1] == "manylinux1_x86_64"
    assert {"manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_5_x86_64"} <= set(tags)
    assert "manylinux_2_29_x86_64" not in tags
    arm = platform_tags("manylinux_2_28_aarch64")
    assert arm[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
    assert platform_tags("macosx_11_0_arm64") == ["macosx_11_0_arm64"]


def test_requirements_of_the_chosen_extras_only() -> None:
    lines = ["numpy>=1.24", 'pytest>=8; extra == "dev"', 'wandb>=0.16; extra == "wandb"',
             'tomli; python_version < "3.11" and extra == "dev"']
    assert select_requirements(lines) == ["numpy>=1.24"]
    assert select_requirements(lines, ["dev"]) == [
        "numpy>=1.24", "pytest>=8", 'tomli; python_version < "3.11"']


def _item(name: str, *requires: str, url: str = "") -> dict:
    return {"metadata": {"name": name, "version": "1.0", "requires_dist": list(requires)},
            "download_info": {"url": url or f"https://x/{name}-1.0-py3-none-any.whl"}}


def test_torch_and_what_only_torch_needs_are_left_out() -> None:
    report = {"install": [
        _item("sentence-transformers", "torch>=1.11", "numpy", "tqdm"),
        _item("torch", "filelock", "sympy>=1.13", "nvidia-cublas-cu12; platform_system == 'Linux'"),
        _item("sympy", "mpmath"), _item("mpmath"), _item("nvidia-cublas-cu12"),
        _item("filelock"), _item("numpy"), _item("tqdm", 'colorama; platform_system == "Windows"'),
        _item("hydra-core", "omegaconf<2.4", 'pytest; extra == "dev"'),
        _item("omegaconf", "antlr4-python3-runtime==4.9.*"),
        _item("antlr4-python3-runtime", url="https://x/antlr4-python3-runtime-4.9.3.tar.gz"),
        _item("pytest"),
    ]}
    kept = {it["metadata"]["name"] for it in kept_packages(
        report, ["sentence-transformers", "hydra-core", "filelock>=3.12"])}
    # filelock stays (embinit asks for it too); pytest only came in through an extra not asked.
    assert kept == {"sentence-transformers", "numpy", "tqdm", "hydra-core", "omegaconf",
                    "antlr4-python3-runtime", "filelock"}
    assert "pytest" in {it["metadata"]["name"] for it in kept_packages(report, ["hydra-core[dev]"])}


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_targets_pass_the_target_and_install_with_no_index() -> None:
    def dry(*args: str) -> str:
        return subprocess.run(["make", "-n", "--no-print-directory", *args], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout

    out = dry("wheelhouse", "PY=3.12", "PLATFORM=manylinux_2_28_x86_64", "WHEEL_EXTRAS=wandb")
    assert "-m embinit.tools.wheelhouse --out .whl --python 3.12" in out
    assert "--platform manylinux_2_28_x86_64" in out and '--extras "wandb"' in out
    assert '--exclude "torch"' in out
    out = dry("install-offline", "WHEELHOUSE=/nodes/whl")
    assert "pip install --no-index --find-links /nodes/whl" in out
    assert '"embinit" "pytest>=8" "setuptools"' in " ".join(out.split())
