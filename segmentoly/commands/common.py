"""Argument helpers and error reporting shared by the command-line tools."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from segmentoly.data.transforms import ResizeMode, parse_resize

#: Exceptions that carry a message meant for the user: printed without a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, PermissionError, OSError)


def add_resize_arguments(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    """The resize modes of the original tools; exactly one may be given."""
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument(
        "--fit_max",
        "--fix_max",
        nargs=2,
        type=int,
        metavar=("SCALE", "MAXSIZE"),
        help="resize so that the shorter side is at most SCALE and the longer at most MAXSIZE (Detectron's test)",
    )
    group.add_argument(
        "--fit_window",
        nargs=2,
        type=int,
        metavar=("MAXHEIGHT", "MAXWIDTH"),
        help="resize so that height and width are at most MAXHEIGHT and MAXWIDTH, keeping the aspect ratio",
    )
    group.add_argument("--size", nargs=2, type=int, metavar=("HEIGHT", "WIDTH"), help="resize to exactly this size")


def resize_from_arguments(args: argparse.Namespace) -> ResizeMode | None:
    for name in ("fit_max", "fit_window", "size"):
        values = getattr(args, name, None)
        if values:
            return parse_resize(name, values)
    return None


def class_names_from_arguments(dataset: str | None, num_classes: int | None) -> list[str] | None:
    """Class names for ``--dataset`` (a split name or a COCO json) or ``-nc`` (generic names)."""
    if dataset:
        from segmentoly.data.splits import COCO_CLASS_NAMES, DATASET_SPLITS

        if dataset in DATASET_SPLITS:
            names = list(COCO_CLASS_NAMES)
        else:
            names = class_names_of_json(Path(dataset))
        if num_classes is not None and num_classes != len(names):
            raise ValueError(
                f"-nc {num_classes} disagrees with --dataset {dataset} ({len(names)} classes with the background)"
            )
        return names
    if num_classes is not None:
        if num_classes < 2:
            raise ValueError(f"-nc: expected at least 2 classes (the background and one), got {num_classes}")
        return ["background", *(f"class_{i}" for i in range(1, num_classes))]
    return None


def class_names_of_json(path: Path) -> list[str]:
    """Class names (background first) of a COCO instances json, by ascending category id."""
    import json

    try:
        data = json.loads(path.read_text())
        categories = sorted(data["categories"], key=lambda c: c["id"])
        return ["background", *(str(c["name"]) for c in categories)]
    except OSError as error:
        raise ValueError(f"{path}: cannot read it: {error.strerror or error}") from error
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a COCO instances json with categories ({error})") from error


def run_command(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run a command's ``main``: user errors become one line on stderr and exit status 2, no traceback."""
    # Our own progress messages at INFO; libraries (the ONNX optimiser, say) only when something is wrong.
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("segmentoly").setLevel(logging.INFO)
    try:
        return main(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
