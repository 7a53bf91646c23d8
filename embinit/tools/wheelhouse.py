"""A folder of every wheel embinit needs except torch, for a node with no internet.

``python -m embinit.tools.wheelhouse --out .whl`` (``make wheelhouse``), from a checkout on a
machine that can reach an index, writes into ``--out``:

1. embinit's own wheel, built from a clean copy of the sources (a stale ``build/`` folder
   never leaks into it);
2. pure-Python wheels built here for the requirements that publish only an sdist
   (``--sdist``, default antlr4-python3-runtime 4.9.3, which omegaconf 2.3 pins);
3. every other runtime requirement, resolved once (``pip install --dry-run --report``) with
   the project's own pins (omegaconf < 2.4, hydra-core < 1.4), then fetched as wheels:
   ``pip download --only-binary=:all: --platform ... --python-version ...`` for another
   target (``--python 3.12 --platform manylinux_2_28_x86_64``), ``pip wheel`` for this
   interpreter (which builds any further sdist-only requirement).

torch is left out, and so is everything only torch needs (its CUDA libraries, triton,
sympy, ...): the node's own torch provides them. ``--exclude`` names more packages the
node's environment already has (say ``torch numpy scipy``), left out the same way. ``--extras`` adds embinit's optional
extras (``wandb``, ``glove``, ``contextual``, ``hf``; none by default, the extras that
need torch resolve against it without fetching it); ``--also`` adds requirements beyond
embinit's (default ``pytest``, which the CUDA tests of ``make gpu-check`` run under, and
``setuptools``, which torch requires and which an older venv shadows with its own).

Install on the node with ``make install-offline WHEELHOUSE=DIR`` (``pip install --no-index
--find-links DIR embinit``) onto the torch already there. See docs/gpu.md.
"""

from __future__ import annotations

import argparse
import email.parser
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
EXCLUDE = ("torch",)  # the node has it
SDIST_ONLY = ("antlr4-python3-runtime==4.9.3",)  # omegaconf 2.3's pin; no wheel on PyPI
# make gpu-check runs the CUDA tests under pytest. setuptools: torch (2.6 on) requires a recent
# one, and a venv made by Python <= 3.11 carries setuptools 65, which shadows the node's.
ALSO = ("pytest>=8", "setuptools")
_MANYLINUX = re.compile(r"manylinux_(\d+)_(\d+)_(\w+)")
# The legacy names of manylinux_2_{5,12,17} (PEP 600), which many wheels still carry alone.
_LEGACY = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


def platform_tags(platform: str) -> list[str]:
    """``platform`` and every older platform a wheel for it may carry: pip (before 24)
    matches ``--platform manylinux_2_28_x86_64`` exactly, so each is passed on its own."""
    m = _MANYLINUX.fullmatch(platform)
    if not m:
        return [platform]
    major, minor, arch = int(m[1]), int(m[2]), m[3]
    oldest = 5 if arch in ("x86_64", "i686") else 17
    tags = []
    for glibc in range(minor, oldest - 1, -1):
        tags.append(f"manylinux_{major}_{glibc}_{arch}")
        if (major, glibc) in _LEGACY:
            tags.append(f"{_LEGACY[major, glibc]}_{arch}")
    return tags


def wheel_requirements(wheel: Path, extras: Iterable[str] = ()) -> list[str]:
    """The Requires-Dist of a wheel: its base requirements plus those of ``extras``."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(zf.read(name).decode("utf-8"))
    return select_requirements(meta.get_all("Requires-Dist") or [], extras)


def select_requirements(requires_dist: Iterable[str], extras: Iterable[str] = ()) -> list[str]:
    """The requirements that apply with ``extras`` chosen, their extra markers removed."""
    chosen = {canonicalize_name(e) for e in extras}
    out = []
    for line in requires_dist:
        req = Requirement(line)
        extra = _extra_of(req.marker)
        if extra is not None and extra not in chosen:
            continue
        marker = _without_extra(req.marker)
        req.marker = Marker(marker) if marker else None
        out.append(str(req))
    return out


def _extra_of(marker: Marker | None) -> str | None:
    m = re.search(r"""extra\s*==\s*["']([^"']+)["']""", str(marker or ""))
    return canonicalize_name(m[1]) if m else None


def _without_extra(marker: Marker | None) -> str:
    text = re.sub(r"""\s*(and\s+)?extra\s*==\s*["'][^"']+["']""", "", str(marker or ""))
    return re.sub(r"^\s*and\s+", "", text).strip()


def kept_packages(report: dict[str, Any], roots: Iterable[str],
                  exclude: Iterable[str] = EXCLUDE) -> list[dict[str, Any]]:
    """The resolved packages (``pip install --report`` items) that ``roots`` need without
    passing through an excluded one: torch, and what only torch requires, drop out.

    An edge counts when the dependency was resolved at all (pip has already evaluated the
    markers for the target) and, for an ``extra ==`` requirement, when that extra was asked
    for on the requiring package (as a root, or by whoever required it).
    """
    items = {canonicalize_name(it["metadata"]["name"]): it for it in report["install"]}
    skip = {canonicalize_name(e) for e in exclude}
    todo = [Requirement(r) for r in roots]
    extras: dict[str, set[str]] = {}
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in skip or name not in items:
            continue
        new_extras = {canonicalize_name(e) for e in req.extras} - extras.get(name, set())
        if name in seen and not new_extras:
            continue
        seen.add(name)
        extras.setdefault(name, set()).update(new_extras)
        for line in items[name]["metadata"].get("requires_dist") or []:
            dep = Requirement(line)
            extra = _extra_of(dep.marker)
            if extra is None or extra in extras[name]:
                todo.append(dep)
    return [items[n] for n in items if n in seen]


def is_wheel(item: dict[str, Any]) -> bool:
    return item["download_info"]["url"].split("#")[0].endswith(".whl")


def _pip(*args: str, quiet: bool = True) -> None:
    cmd = [sys.executable, "-m", "pip", *args]
    if quiet:
        cmd.append("--quiet")
    print("+ pip " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True)


def _target_flags(python: str | None, platform: str | None) -> list[str]:
    if not (python or platform):
        return []
    flags = ["--only-binary=:all:", "--implementation", "cp"]
    if python:
        flags += ["--python-version", python]
    for tag in platform_tags(platform) if platform else []:
        flags += ["--platform", tag]
    return flags


def build_embinit_wheel(out: Path, root: Path = ROOT) -> Path:
    """embinit's wheel, built from a copy of pyproject.toml, README.md and embinit/ only."""
    if not (root / "pyproject.toml").exists():
        raise SystemExit(f"{root} has no pyproject.toml: run this from an embinit checkout")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(root / "embinit", src / "embinit",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (root / name).exists():
                shutil.copy2(root / name, src / name)
        for old in out.glob("embinit-*.whl"):
            old.unlink()
        _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(src))
    return next(out.glob("embinit-*.whl"))


def build(out: Path, python: str | None = None, platform: str | None = None,
          extras: Sequence[str] = (), also: Sequence[str] = ALSO,
          sdist_only: Sequence[str] = SDIST_ONLY, exclude: Sequence[str] = EXCLUDE) -> Path:
    """Fill ``out`` (see the module doc); returns embinit's wheel."""
    out.mkdir(parents=True, exist_ok=True)
    wheel = build_embinit_wheel(out)
    skip = {canonicalize_name(e) for e in exclude}
    roots = [r for r in [*wheel_requirements(wheel, extras), *also]
             if canonicalize_name(Requirement(r).name) not in skip]
    if sdist_only:  # pure Python: a wheel built here installs on any target
        _pip("wheel", "--no-deps", "--no-binary=:all:", "-w", str(out), *sdist_only)
    flags = _target_flags(python, platform)
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "report.json"
        target = ["--target", str(Path(tmp) / "target")] if flags else []
        _pip("install", "--dry-run", "--ignore-installed", "--find-links", str(out),
             "--report", str(report_path), *flags, *target, *roots)
        report = json.loads(report_path.read_text(encoding="utf-8"))
    built = {canonicalize_name(Requirement(s).name) for s in sdist_only}
    keep = [it for it in kept_packages(report, roots, exclude)
            if canonicalize_name(it["metadata"]["name"]) not in built]
    pins = [f"{it['metadata']['name']}=={it['metadata']['version']}" for it in keep]
    if flags:
        sdists = [p for p, it in zip(pins, keep, strict=True) if not is_wheel(it)]
        if sdists:  # resolved with --only-binary=:all:, so only find-links could give one
            raise SystemExit(f"no wheel for {', '.join(sdists)}: add them to --sdist")
        _pip("download", "--no-deps", "--find-links", str(out), "-d", str(out), *flags, *pins)
    else:  # this interpreter: pip wheel fetches wheels and builds any other sdist
        _pip("wheel", "--no-deps", "--find-links", str(out), "-w", str(out), *pins)
    return wheel


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.glob("*.whl")) / 1e6


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m embinit.tools.wheelhouse",
                                description="Write every wheel embinit needs except torch "
                                            "into one folder, for an offline install.")
    p.add_argument("--out", type=Path, default=ROOT / ".whl", help="the folder (default .whl)")
    p.add_argument("--python", help="target Python, e.g. 3.12 (default: this interpreter)")
    p.add_argument("--platform", help="target platform, e.g. manylinux_2_28_x86_64 "
                                      "(default: this machine)")
    p.add_argument("--extras", default="", help="embinit extras, comma-separated "
                                                "(wandb, glove, contextual, hf, dev)")
    p.add_argument("--also", default=" ".join(ALSO),
                   help="further requirements, space-separated (default: %(default)s)")
    p.add_argument("--sdist", default=" ".join(SDIST_ONLY),
                   help="sdist-only requirements to build here (default: %(default)s)")
    p.add_argument("--exclude", default=" ".join(EXCLUDE),
                   help="packages the node already has, left out with what only they need, "
                        "space-separated (default: %(default)s)")
    args = p.parse_args(argv)
    extras = [e.strip() for e in args.extras.split(",") if e.strip()]
    build(args.out, args.python, args.platform, extras, args.also.split(), args.sdist.split(),
          args.exclude.split())
    n = len(list(args.out.glob("*.whl")))
    print(f"wrote {n} wheels, {folder_mb(args.out):.1f} MB, to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
