"""The model options that ``test`` and ``demo`` share, as the original tools spelled them.

``--ckpt`` and the resize mode come first, then a backend sub-command: ``pytorch --model ARCH`` (a zoo name or
class path, checked against the checkpoint) or ``openvino --model MODEL.xml`` (an IR or ONNX file; ``--ckpt``
may then name the IR's ``.bin``, as in the original tool). ``openvino`` without ``--model`` exports the
``--ckpt`` checkpoint to an IR first (cached).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from segmentoly.commands.common import add_resize_arguments, resize_from_arguments
from segmentoly.inference.predictor import Predictor

logger = logging.getLogger("segmentoly")

#: ``--ckpt bundled``: the small demo model that ships with the package.
BUNDLED = "bundled"


def add_predictor_arguments(parser: argparse.ArgumentParser, *, batch_size: bool = False) -> None:
    parser.add_argument("--ckpt", help=f"segmentoly checkpoint (.pth), an OpenVINO IR's .bin, or '{BUNDLED}'")
    parser.add_argument("--dataset", help="dataset whose class names to show (split name or COCO json)")
    parser.add_argument(
        "--mean_pixel",
        type=float,
        nargs=3,
        metavar=("B", "G", "R"),
        help="BGR mean subtracted from images (PyTorch; an IR has its mean inside)",
    )
    add_resize_arguments(parser)
    backends = parser.add_subparsers(dest="backend", metavar="BACKEND", required=True)
    pytorch = backends.add_parser("pytorch", help="run the model in PyTorch")
    pytorch.add_argument("--model", help="architecture: zoo name or class path (default: the checkpoint's)")
    pytorch.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    pytorch.add_argument("--show_flops", action="store_true", help="print GFLOPs (PyTorch's FLOP counter)")
    if batch_size:
        pytorch.add_argument("--batch_size", type=int, default=1, help="images per forward pass (default 1)")
    openvino = backends.add_parser("openvino", help="run an IR (or ONNX) model with OpenVINO")
    openvino.add_argument("--model", help="the IR's .xml (or an .onnx); default: export --ckpt")
    openvino.add_argument("-d", "--device", default="CPU", help="OpenVINO device (default CPU)")


def bundled_checkpoint() -> Path:
    from segmentoly.assets import BUNDLED_CHECKPOINT

    return BUNDLED_CHECKPOINT


def predictor_from_arguments(args: argparse.Namespace, **kwargs) -> Predictor:
    """The Predictor the command line describes (class names from ``--dataset`` override the model's)."""
    from segmentoly.commands.common import class_names_from_arguments

    resize = resize_from_arguments(args)
    names = class_names_from_arguments(args.dataset, None) if args.dataset else None
    checkpoint = str(bundled_checkpoint()) if args.ckpt == BUNDLED else args.ckpt
    if args.backend == "openvino" and args.mean_pixel:
        logger.warning("--mean_pixel is ignored by openvino: an IR subtracts its own mean (the checkpoint's)")
    if args.backend == "pytorch":
        if not checkpoint:
            raise ValueError("pytorch needs --ckpt (a segmentoly checkpoint)")
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        predictor = Predictor.from_checkpoint(checkpoint, model=args.model, resize=resize, device=device, **kwargs)
        if args.mean_pixel:
            model = predictor.backend.model
            model.config.pixel_mean = tuple(args.mean_pixel)
            model.pixel_mean.copy_(torch.tensor(args.mean_pixel).reshape(1, 3, 1, 1))
            predictor.pixel_mean = tuple(args.mean_pixel)
    elif args.model:
        if (
            checkpoint
            and Path(checkpoint).suffix == ".bin"
            and Path(checkpoint) != Path(args.model).with_suffix(".bin")
        ):
            raise ValueError(
                f"--ckpt {checkpoint}: the weights of {args.model} are {Path(args.model).with_suffix('.bin')}"
            )
        predictor = Predictor.from_openvino(args.model, resize=resize, device=args.device, class_names=names, **kwargs)
    else:
        if not checkpoint:
            raise ValueError("openvino needs --model MODEL.xml, or --ckpt CHECKPOINT.pth to export")
        predictor = Predictor.from_checkpoint(
            checkpoint, backend="openvino", resize=resize, device=args.device, **kwargs
        )
    if names is not None:
        if len(names) != len(predictor.class_names):
            raise ValueError(
                f"--dataset {args.dataset} has {len(names) - 1} classes, the model {len(predictor.class_names) - 1}"
            )
        predictor.class_names = tuple(names)
    return predictor


def print_flops(predictor: Predictor, height: int, width: int) -> None:
    from segmentoly.export.flops import count_gflops

    model = predictor.backend.model
    print(f"GFLOPs at {height}x{width}: {count_gflops(model, height, width):.1f}")
