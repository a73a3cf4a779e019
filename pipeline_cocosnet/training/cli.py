"""``cocosnet train`` and ``python -m pipeline_cocosnet.training`` (the same flags).

``--config CONFIG.yaml`` gives the configuration; ``--set section.key=value`` (repeatable)
and the shortcut flags override single keys. Several GPUs or processes::

    accelerate launch --multi_gpu --num_processes 8 -m pipeline_cocosnet.training --config train.yaml
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["add_train_arguments", "register_train_command", "config_from_args", "run_train", "main"]

#: shortcut flag → config key
SHORTCUTS = {
    "output_dir": "train.output_dir",
    "max_steps": "train.max_steps",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "gradient_accumulation_steps": "train.gradient_accumulation_steps",
    "mixed_precision": "train.mixed_precision",
    "resume": "train.resume",
    "data_root": "data.root",
    "num_workers": "data.num_workers",
    "vgg_weights": "loss.vgg_weights",
    "init_pipeline": "model.init_pipeline",
}


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The training flags (shared by ``cocosnet train`` and ``-m pipeline_cocosnet.training``)."""
    parser.add_argument("--config", type=Path, help="YAML config (sections model, data, loss, optim, train); default: built-in defaults")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config key (value parsed as YAML), e.g. --set loss.warp=250; repeatable",
    )
    parser.add_argument("--output-dir", help="where checkpoints, samples, logs and the final pipeline go")
    parser.add_argument("--data-root", help="dataset root folder")
    parser.add_argument("--max-steps", type=int, help="optimizer steps to train for")
    parser.add_argument("--epochs", type=int, help="epochs to train for (when --max-steps is not given)")
    parser.add_argument("--batch-size", type=int, help="batch size per process (release: 2 per GPU, 16 in all)")
    parser.add_argument("--gradient-accumulation-steps", type=int, help="micro-batches per optimizer step")
    parser.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], help="autocast precision")
    parser.add_argument(
        "--resume",
        help="'latest' (the newest complete checkpoint; incomplete ones are skipped with the reason) or a checkpoint "
        "folder (…/checkpoints/step-NNNNNNN). A run stopped by SIGTERM/SIGINT saved one and exited with code 75",
    )
    parser.add_argument("--num-workers", type=int, help="data-loading worker processes")
    parser.add_argument("--vgg-weights", help="VGG19 weights (torchvision vgg19 .pth or the research code's vgg19_conv.pth)")
    parser.add_argument("--init-pipeline", help="pipeline folder to fine-tune from (e.g. `cocosnet convert` output)")
    parser.add_argument(
        "--learn-gru", action=argparse.BooleanOptionalAction, default=None, help="train the ConvGRU (off: as published)"
    )
    parser.add_argument("--cpu", action="store_true", default=None, help="train on CPU even when a GPU is present")
    return parser


def config_from_args(args: argparse.Namespace):
    """The config file, then ``--set`` overrides, then the shortcut flags."""
    from .config import load_config

    config = load_config(args.config, args.overrides)
    for name, key in SHORTCUTS.items():
        value = getattr(args, name, None)
        if value is not None:
            config.set(key, value)
    if args.learn_gru is not None:
        config.set("model.learn_gru", args.learn_gru)
    if args.cpu:
        config.set("train.cpu", True)
    return config


def run_train(args: argparse.Namespace) -> None:
    """Train from parsed arguments and print where the pipeline went.

    Stopped by SIGTERM/SIGINT: prints where the checkpoint went and exits with code 75 (``SystemExit``).
    """
    from .interruption import EXIT_INTERRUPTED, TrainingInterrupted
    from .trainer import Trainer

    log = logging.getLogger("pipeline_cocosnet.training")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    trainer = Trainer(config_from_args(args))
    try:
        folder = trainer.train()
    except TrainingInterrupted as stopped:
        if trainer.accelerator.is_main_process:
            print(
                f"cocosnet train: stopped by {stopped.signal_name} after step {stopped.step}; checkpoint saved to "
                f"{Path(stopped.checkpoint).resolve()}. Continue with the same command plus --resume latest "
                f"(exit code {EXIT_INTERRUPTED})",
                flush=True,
            )
        raise SystemExit(EXIT_INTERRUPTED) from None
    if trainer.accelerator.is_main_process:
        print(f"trained {trainer.state.step} steps; pipeline saved to {folder.resolve()}")


def register_train_command(subparsers) -> argparse.ArgumentParser:
    """Add ``train`` to a ``cocosnet`` sub-command set."""
    parser = subparsers.add_parser(
        "train",
        help="train or fine-tune a CoCosNet v2 model (accelerate: CPU, one or many GPUs)",
        description=(
            "Train CoCosNet v2 with the published losses and optimiser settings. Configure with a YAML file "
            "(see configs/train_*.yaml) and override keys with --set section.key=value or the flags below. For "
            "several GPUs run `accelerate launch --multi_gpu -m pipeline_cocosnet.training --config ...`."
        ),
    )
    add_train_arguments(parser)
    parser.set_defaults(run=run_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m pipeline_cocosnet.training`` (what ``accelerate launch -m`` runs)."""
    parser = add_train_arguments(
        argparse.ArgumentParser(prog="python -m pipeline_cocosnet.training", description="Train CoCosNet v2.")
    )
    args = parser.parse_args(argv)
    try:
        run_train(args)
    except (ValueError, OSError) as error:
        print(f"cocosnet train: error: {error}", file=sys.stderr)
        return 2
    return 0
