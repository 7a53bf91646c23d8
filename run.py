"""Entry point: `python run.py [overrides]` runs one arm; see README for the flow."""
import hydra
from omegaconf import DictConfig, OmegaConf

from embinit.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    print(OmegaConf.to_yaml(cfg, resolve=True))


if __name__ == "__main__":
    main()
