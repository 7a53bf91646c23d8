"""Entry point: `python run.py [hydra overrides]` runs one arm (or a sweep with -m / study=...).

Examples:
    python run.py                               # default arm: vocab=bpe init=scratch
    python run.py vocab=word init=word2vec      # word-level + Word2Vec
    python run.py study=arms                    # the default study: arms x seeds (multirun)
"""

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from embinit.config import register_configs, validate
from embinit.errors import EmbinitError

register_configs()
log = logging.getLogger("embinit")


@hydra.main(version_base="1.3", config_path="embinit/conf", config_name="config")
def main(cfg: DictConfig) -> None:
    # gensim logs every Word2Vec epoch at INFO; keep the run log readable.
    logging.getLogger("gensim").setLevel(logging.WARNING)
    try:
        validate(cfg)  # before importing torch: a bad setting is reported at once
        from embinit.run.pipeline import run

        run(cfg, HydraConfig.get().runtime.output_dir)
    except EmbinitError as e:
        log.error("%s", e)
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
