"""The ``segmentoly`` command: one entry point with a sub-command per task.

Each sub-command lives in :mod:`segmentoly.commands` and is also reachable as the original tool's script
(``tools/convert_to_onnx.py`` is ``segmentoly export``, and so on).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from segmentoly import __version__
from segmentoly.commands.common import run_command

#: sub-command -> (module, one-line help)
COMMANDS = {
    "train": ("segmentoly.commands.train", "train a Mask R-CNN (one process, or many through torchrun)"),
    "demo": ("segmentoly.commands.demo", "run a model on images, a folder, a video or a webcam"),
    "test": ("segmentoly.commands.evaluate", "evaluate a model with the COCO protocol (box and mask AP)"),
    "export": ("segmentoly.commands.export", "export a model to ONNX (OpenVINO operators) and OpenVINO IR"),
    "quantize": ("segmentoly.commands.quantize", "quantise an OpenVINO IR to INT8 (NNCF post-training)"),
    "download": ("segmentoly.commands.download", "download, convert and export the pretrained Detectron models"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segmentoly",
        description="Mask R-CNN instance segmentation: train, evaluate, export and run on CPU through OpenVINO.",
    )
    parser.add_argument("--version", action="version", version=f"segmentoly {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = commands.add_parser(name, help=help_text, description=module.__doc__)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return args.run(args)


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
