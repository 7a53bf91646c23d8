"""Entry point: `python run.py [hydra overrides]` runs one arm (or a sweep with -m / study=...).

A thin alias of the installed `embinit-train` command (embinit/cli.py), kept so a source
checkout works without installing.

Examples:
    python run.py                               # default arm: vocab=bpe init=scratch
    python run.py vocab=word init=word2vec      # word-level + Word2Vec
    python run.py study=arms                    # the default study: arms x seeds (multirun)
"""

from embinit.cli import train

if __name__ == "__main__":
    train()
