"""Training CoCosNet v2 with 🤗 accelerate: losses, discriminator, VGG19, datasets, loop, CLI.

Import cost is kept low: the heavy pieces (accelerate, the loop) load on use.
"""

from .config import ConfigError, TrainConfig, load_config

__all__ = ["ConfigError", "TrainConfig", "load_config", "Trainer", "train"]


def __getattr__(name: str):
    if name in ("Trainer", "train"):
        from . import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
