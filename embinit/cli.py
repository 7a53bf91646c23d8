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

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from embinit.config import register_configs, validate
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


def arm_choices(arm: str, conf_dir: Path = CONF_DIR) -> dict[str, str]:
    """The group choices an arm's config file makes, e.g. word_glove -> {vocab: word, init: glove}."""
    path = conf_dir / "arm" / f"{arm}.yaml"
    if not path.exists():
        return {}  # Hydra itself reports an unknown arm, listing the valid ones
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
    for group, chosen in arm_choices(arm, conf_dir).items():
        if group in given and given[group] != chosen:
            raise ConfigError(
                f"arm={arm} sets {group}={chosen}, but the command line also says "
                f"{group}={given[group]}; the run would silently be a different arm. Drop "
                f"{group}={given[group]} (to run arm {arm}), or drop arm={arm} and give "
                f"vocab= and init= alone"
            )


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def train(cfg: DictConfig) -> None:
    """`embinit-train`: one arm, or a study's sweep (same overrides as `python run.py`)."""
    from hydra.core.hydra_config import HydraConfig

    # gensim logs every Word2Vec epoch at INFO; keep the run log readable.
    logging.getLogger("gensim").setLevel(logging.WARNING)
    try:
        hc = HydraConfig.get()
        check_arm_overrides(list(hc.overrides.task))
        validate(cfg)  # before importing torch: a bad setting is reported at once
        from embinit.run.pipeline import run

        run(cfg, hc.runtime.output_dir)
    except EmbinitError as e:
        log.error("%s", e)
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def _study_paths(study: str, overrides: Sequence[str]) -> tuple[Path, Path]:
    """(experiments/<study.name>, results/<study.name>) as the composed config resolves them."""
    from hydra import compose, initialize_config_dir

    # Hydra's own overrides (launcher, sweep dirs) and flags do not change paths or study.name.
    kept = [o for o in overrides if not o.startswith(("-", "hydra", "+hydra"))]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"study={study}", *kept])
    name = str(cfg.study.name)
    return Path(cfg.paths.experiments) / name, Path(cfg.paths.results) / name


def sweep(argv: Sequence[str] | None = None) -> int:
    """`embinit-sweep STUDY [overrides]`: train every run of the study, then its report."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or "=" in args[0]:
        studies = ", ".join(sorted(p.stem for p in (CONF_DIR / "study").glob("*.yaml")))
        print("usage: embinit-sweep STUDY [hydra overrides ...]\n\n"
              "Train every arm x seed of a study (skipping completed runs), then write its\n"
              "report to results/STUDY. Studies: " + studies + "\n"
              "Example: embinit-sweep arms train.num_threads=2", file=sys.stderr)
        return 0 if args and args[0] in ("-h", "--help") else 2
    study, overrides = args[0], args[1:]
    experiments, results = _study_paths(study, overrides)
    prog = sys.argv[0]
    sys.argv = [prog, f"study={study}", *overrides]
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
    from embinit.study.report.build import main as report_main

    return report_main(argv)


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
