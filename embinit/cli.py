"""Console commands (pyproject `[project.scripts]`): they work from an installed wheel.

    embinit-train  [overrides]          one run (or a sweep with -m / study=...); = python run.py
    embinit-sweep  STUDY [overrides]    train study=STUDY, then its report into results/STUDY
    embinit-report STUDY_DIR [--out]    = python -m embinit.report
    embinit-params [overrides]          = python -m embinit.params
    embinit-sample RUN_DIR --prompt ... = python -m embinit.tools.sample
    embinit-export RUN_DIR [--out DIR]  = python -m embinit.tools.export

The configs ship inside the package (`embinit/conf`, package data, no `__init__.py`), so
`config_path` is that directory's absolute path: it resolves in a source checkout and in
site-packages alike (a relative path would make Hydra look for an importable module). Paths default to the
current directory (`paths.root`, or EMBINIT_ROOT), so the commands run in an empty one.
"""

from __future__ import annotations

import difflib
import errno
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from embinit.config import Config, register_configs, validate
from embinit.errors import ConfigError, EmbinitError

CONF_DIR = Path(__file__).resolve().parent / "conf"
# The config groups an arm (conf/arm/*.yaml) may choose: overriding them next to `arm=` is a
# contradiction (`arm=word_glove vocab=bpe` would silently compose bpe+glove).
ARM_GROUPS = ("vocab", "init")

register_configs()
log = logging.getLogger("embinit")


def _override_key_value(override: str) -> tuple[str, str] | None:
    """`vocab=bpe` -> ("vocab", "bpe"); `+arm=x` -> ("arm", "x"); keys with dots -> None."""
    if "=" not in override:
        return None
    key, value = override.split("=", 1)
    key = key.lstrip("+~")
    if "." in key or "@" in key:  # a value inside a group (vocab.size=...) refines, never contradicts
        return None
    return key, value


def arm_names(conf_dir: Path = CONF_DIR) -> list[str]:
    return sorted(p.stem for p in (conf_dir / "arm").glob("*.yaml"))


def arm_choices(arm: str, conf_dir: Path = CONF_DIR) -> dict[str, str]:
    """The group choices an arm's config file makes, e.g. word_glove -> {vocab: word, init: glove}."""
    path = conf_dir / "arm" / f"{arm}.yaml"
    if not path.exists():
        return {}  # check_arm_overrides refuses an arm without a file
    choices: dict[str, str] = {}
    for entry in OmegaConf.to_container(OmegaConf.load(path)).get("defaults", []):  # type: ignore[union-attr]
        if isinstance(entry, dict):
            for k, v in entry.items():
                group = str(k).replace("override", "").strip().lstrip("/")
                if group in ARM_GROUPS:
                    choices[group] = str(v)
    return choices


def check_arm_overrides(overrides: Sequence[str], conf_dir: Path = CONF_DIR) -> None:
    """Refuse `arm=X` together with a `vocab=`/`init=` that X chooses differently."""
    given = dict(kv for o in overrides if (kv := _override_key_value(o)) is not None)
    arm = given.get("arm")
    if not arm or arm == "null":
        return
    if not (conf_dir / "arm" / f"{arm}.yaml").exists():
        # `arm` is an optional group: Hydra would silently fall back to the default arm.
        close = difflib.get_close_matches(arm, arm_names(conf_dir), n=3, cutoff=0.5)
        hint = (f"did you mean {' or '.join(f'arm={c}' for c in close)}?" if close
                else "the arms are: " + ", ".join(arm_names(conf_dir)))
        raise ConfigError(f"arm={arm} is not an arm (there is no conf/arm/{arm}.yaml); {hint} "
                          "(`--help` lists every arm)")
    for group, chosen in arm_choices(arm, conf_dir).items():
        if group in given and given[group] != chosen:
            raise ConfigError(
                f"arm={arm} sets {group}={chosen}, but the command line also says "
                f"{group}={given[group]}; the run would silently be a different arm. Drop "
                f"{group}={given[group]} (to run arm {arm}), or drop arm={arm} and give "
                f"vocab= and init= alone"
            )


def write_failure(e: OSError) -> str:
    """One line for an OSError at the CLI boundary: what failed where, and the fix."""
    where = e.filename or "a file"
    fixes = {
        errno.ENOSPC: "the disk is full: free space there, or write elsewhere with "
                      "paths.root=<dir> (or paths.cache=<dir>, paths.experiments=<dir>)",
        errno.EDQUOT: "the disk quota is used up: free space, or write elsewhere with "
                      "paths.root=<dir>",
        errno.EFBIG: "the file is larger than the file-size limit (ulimit -f): raise it",
        errno.EROFS: "the file system is read-only: write elsewhere with paths.root=<dir>",
        errno.EACCES: "permission denied: fix the permissions there, or write elsewhere "
                      "with paths.root=<dir>",
        errno.EPERM: "not permitted: fix the permissions there, or write elsewhere with "
                     "paths.root=<dir>",
    }
    fix = fixes.get(e.errno or -1, "a short or failed write: check free space (df -h) and "
                                   "file-size limits (ulimit -f) there")
    return (f"could not write {where}: {e.strerror or e}; {fix}. Nothing partial was kept: "
            "the same command resumes once that is fixed")


def _fail(message: str) -> None:
    """Report an error once: on stderr, and in the run's log file (not on the console twice)."""
    record = logging.LogRecord("embinit", logging.ERROR, __file__, 0, "%s", (message,), None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def train() -> None:
    """`embinit-train`: one arm, or a study's sweep (same overrides as `python run.py`).

    `--help` is answered from the config files alone (Hydra's, with the groups, arms and
    most-changed keys of `conf/hydra/help/embinit.yaml`)."""
    register_help_resolver()
    _train()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _train(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig
    from tqdm.contrib.logging import logging_redirect_tqdm

    # gensim logs every Word2Vec epoch at INFO; keep the run log readable.
    logging.getLogger("gensim").setLevel(logging.WARNING)
    try:
        hc = HydraConfig.get()
        check_arm_overrides(list(hc.overrides.task))
        validate(cfg)  # before importing torch: a bad setting is reported at once
        from embinit.run.pipeline import run

        # Log lines print above a progress bar instead of through it.
        with logging_redirect_tqdm(loggers=[logging.getLogger()]):
            run(cfg, hc.runtime.output_dir)
    except EmbinitError as e:
        _fail(str(e))
    except OSError as e:  # disk full, read-only, permissions: one line, not a traceback
        _fail(write_failure(e))


# ------------------------------------------------------------------------------ --help


def _first_sentence(path: Path, width: int = 96) -> str:
    """The leading comment of a config file, up to its first full stop, on one line."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        if not line.startswith("# @package"):
            lines.append(line.lstrip("# ").strip())
    text = " ".join(lines)
    end = re.search(r"\.\s+(?=[A-Z])", text)  # "U.S.A. 's" and "et al. 2024" go on
    text = text[: end.start() + 1] if end else text
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def help_text(part: str, conf_dir: Path = CONF_DIR) -> str:
    """`${embinit_help:groups}` / `${embinit_help:arms}` in the help template: one line per
    config group (its options, and what it is: the schema's docstring) and one per arm."""
    if part == "arms":
        names = arm_names(conf_dir)
        width = max(map(len, names))
        return "\n".join(f"  {n:<{width}}  {_first_sentence(conf_dir / 'arm' / f'{n}.yaml')}"
                         for n in names)
    docs = {f.name: (f.default_factory.__doc__ or "").split("\n")[0]  # type: ignore[misc]
            for f in fields(Config) if f.default_factory is not None}  # type: ignore[misc]
    docs["arm"] = "a named arm: vocab x init (x size), listed below; or give vocab= init="
    groups = sorted(d.name for d in conf_dir.iterdir()
                    if d.is_dir() and d.name != "hydra" and any(d.glob("*.yaml")))
    width = max(map(len, groups))
    out = []
    for g in groups:
        options = "arm=<name>" if g == "arm" else " | ".join(
            sorted(p.stem for p in (conf_dir / g).glob("*.yaml")))
        out.append(f"  {g:<{width}}  {options}  -- {docs.get(g, '').rstrip('.')}")
    return "\n".join(out)


def register_help_resolver() -> None:
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("embinit_help"):
        OmegaConf.register_new_resolver("embinit_help", help_text)


def _compose(study: str, overrides: Sequence[str], hydra_node: bool = False) -> DictConfig:
    from hydra import compose, initialize_config_dir

    # Hydra's own overrides (launcher, sweep dirs) and flags do not change paths or study.name.
    kept = [o for o in overrides if not o.startswith(("-", "hydra", "+hydra"))]
    if hydra_node:  # the sweeper's parameters (arms x seeds) too; hydra.* overrides count here
        kept = [o for o in overrides if not o.startswith("-")]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=[f"study={study}", *kept],
                       return_hydra_config=hydra_node)


def _study_paths(study: str, overrides: Sequence[str]) -> tuple[Path, Path]:
    """(experiments/<study.name>, results/<study.name>) as the composed config resolves them."""
    cfg = _compose(study, overrides)
    name = str(cfg.study.name)
    return Path(cfg.paths.experiments) / name, Path(cfg.paths.results) / name


# Command-line keys that pick a study's runs themselves (Hydra lets them replace the sweep's).
_SWEPT_KEYS = ("seed", "arm")


def sweep_departure(study: str, overrides: Sequence[str]) -> str | None:
    """A short name for how `overrides` change what `study` measures (its budget, seeds, arms,
    or any setting that defines its runs: train=smoke gives "smoke"), or None when they only
    change where and how it runs (paths, threads, logging, the launcher)."""
    from omegaconf import OmegaConf

    from embinit.config import to_container
    from embinit.record import departure_name, identity

    given = dict(kv for o in overrides if (kv := _override_key_value(o)) is not None)
    swept = [f"{k}{given[k]}" for k in _SWEPT_KEYS if k in given]
    base, new = (to_container(_compose(study, o)) for o in ([], overrides))
    changed = identity(base) != identity(new)
    params = [OmegaConf.to_container(_compose(study, o, hydra_node=True).hydra.sweeper.params)
              for o in ([], overrides)]
    if not (changed or swept or params[0] != params[1]):
        return None
    if given.get("train") == "smoke":
        return "smoke"
    name = departure_name(base, new) if changed else "-".join(swept) or "custom"
    return re.sub(r"[^A-Za-z0-9._-]", "", name) or "custom"


def sweep(argv: Sequence[str] | None = None) -> int:
    """`embinit-sweep STUDY [overrides]`: train every run of the study, then its report.

    Overrides that change what the study measures (train=smoke, seed=0, train.max_steps=...)
    make another study: its runs and report go beside the study's own, under
    `<study>-<what changed>` (e.g. results/arms-smoke), never into results/<study>/."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or "=" in args[0]:
        studies = ", ".join(sorted(p.stem for p in (CONF_DIR / "study").glob("*.yaml")))
        print("usage: embinit-sweep STUDY [hydra overrides ...]\n\n"
              "Train every arm x seed of a study (skipping completed runs), then write its\n"
              "report to results/STUDY. Overrides that change what the study measures\n"
              "(train=smoke, seed=0, train.max_steps=10, ...) write beside it instead, to\n"
              "experiments/ and results/STUDY-<what changed> (e.g. results/arms-smoke).\n"
              "Studies: " + studies + "\n"
              "Example: embinit-sweep arms train.num_threads=2", file=sys.stderr)
        return 0 if args and args[0] in ("-h", "--help") else 2
    study, overrides = args[0], args[1:]
    try:
        own_name = str(_compose(study, []).study.name)
        departure = sweep_departure(study, overrides)
        named = [o for o in overrides if o.lstrip("+").startswith("study.name=")]
        if departure is not None and not named:
            overrides = [*overrides, f"study.name={own_name}-{departure}"]
            print(f"embinit-sweep: these overrides change what study {study} measures; its "
                  f"runs and report go to {own_name}-{departure}/ under experiments/ and "
                  f"results/, not {own_name}/ (study.name=<name> chooses another name)",
                  file=sys.stderr)
        elif departure is not None and _compose(study, overrides).study.name == own_name:
            raise ConfigError(
                f"study.name={own_name} with overrides that change what study {study} "
                f"measures would mix other runs into experiments/{own_name} and overwrite "
                f"results/{own_name}; drop study.name= (the sweep then writes to "
                f"{own_name}-{departure}) or choose another name")
        experiments, results = _study_paths(study, overrides)
    except EmbinitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a bad override: Hydra's own message, in one line
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    prog = sys.argv[0]
    # Rerun hints printed by a run name embinit-train, whose overrides these are.
    sys.argv = ["embinit-train", f"study={study}", *overrides]
    try:
        train()
    except SystemExit as e:  # Hydra and train() exit non-zero on errors; 0/None: continue
        if e.code not in (0, None):
            return int(e.code) if isinstance(e.code, int) else 1
    finally:
        sys.argv = [prog, *args]
    from embinit.study.report.build import main as report_main

    return report_main([str(experiments), "--out", str(results)])


def report(argv: Sequence[str] | None = None) -> int:
    """`embinit-report STUDY_DIR [--out DIR] [--reference ARM]`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):  # at once: the report imports pandas, scipy
        from embinit.commands import report_parser

        report_parser("embinit-report").print_help()
        return 0
    from embinit.study.report.build import main as report_main

    return report_main(args, prog="embinit-report")


def params(argv: Sequence[str] | None = None) -> int:
    """`embinit-params [overrides]`: parameter breakdown and FLOPs per token, as JSON."""
    from embinit.params import main as params_main

    return params_main(argv)


def sample(argv: Sequence[str] | None = None) -> int:
    from embinit.tools.sample import main as sample_main

    return sample_main(argv)


def export(argv: Sequence[str] | None = None) -> int:
    from embinit.tools.export import main as export_main

    return export_main(argv)


if __name__ == "__main__":
    train()
