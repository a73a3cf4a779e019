"""The ``cocosnet`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _convert(args: argparse.Namespace) -> None:
    from .convert import convert_checkpoints

    correspondence, translator = convert_checkpoints(
        args.corr, args.translator, args.output, ngf=args.ngf, nef=args.nef, label_channels=args.label_channels
    )
    print(
        f"converted: label channels {correspondence.config.label_channels}, nef {correspondence.config.nef}, "
        f"ngf {translator.config.ngf} → {Path(args.output).resolve()}"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cocosnet",
        description="CoCosNet v2 exemplar-based image translation: convert weights, translate images.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    convert = commands.add_parser(
        "convert",
        help="convert the published latest_net_Corr.pth / latest_net_G.pth into a model folder",
        description=(
            "Read the published CoCosNet v2 checkpoints (.pth, loaded with weights_only=True, or the same state "
            "dicts as .safetensors), fold spectral normalisation, rename the keys and write a folder with "
            "correspondence/ and translator/ subfolders in safetensors. Widths are read off the checkpoint; "
            "the flags only assert them."
        ),
    )
    convert.add_argument("--corr", required=True, type=Path, help="correspondence checkpoint (latest_net_Corr.pth)")
    convert.add_argument("--translator", required=True, type=Path, help="generator checkpoint (latest_net_G.pth)")
    convert.add_argument("--output", required=True, type=Path, help="folder to write")
    convert.add_argument("--ngf", type=int, help="generator width (release: 64)")
    convert.add_argument("--nef", type=int, help="correspondence feature width (release: 32)")
    convert.add_argument("--label-channels", type=int, help="structure channels (DeepFashionHD pose: 20)")
    convert.set_defaults(run=_convert)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (ValueError, OSError) as error:
        print(f"cocosnet {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
