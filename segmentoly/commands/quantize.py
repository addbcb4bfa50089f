"""``segmentoly quantize``: INT8 post-training quantisation of an OpenVINO IR (NNCF), calibrated on images of a
COCO-format dataset. The result is an IR like any other: the demo, the evaluation and the Predictor take it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from segmentoly.commands.common import add_resize_arguments, resize_from_arguments, run_command

DEFAULT_SUBSET = 300


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="the FP32 IR (.xml) or ONNX file to quantise")
    parser.add_argument("--dataset", required=True, help="calibration data: a split name or a COCO json")
    parser.add_argument("--images", help="image folder of a --dataset json")
    parser.add_argument("--data_root", default="data/coco", help="folder of the named COCO splits")
    parser.add_argument("--output", type=Path, help="the INT8 IR to write (default: MODEL_int8.xml beside it)")
    add_int8_arguments(parser, prefix="")
    add_resize_arguments(parser)


def add_int8_arguments(parser: argparse.ArgumentParser, *, prefix: str) -> None:
    parser.add_argument(
        f"--{prefix}subset_size",
        type=int,
        default=DEFAULT_SUBSET,
        help=f"calibration images (default {DEFAULT_SUBSET})",
    )
    parser.add_argument(
        f"--{prefix}quantize_all",
        action="store_true",
        help="quantise the box regression and mask logits too (kept in FP32 by default)",
    )


def quantize_model(
    model: Path,
    output: Path,
    dataset: str,
    images: str | None,
    data_root: str,
    *,
    resize,
    subset_size: int,
    quantize_all: bool,
) -> Path:
    import openvino as ov

    from segmentoly.data.coco import CocoDataset
    from segmentoly.data.splits import dataset_paths
    from segmentoly.export.openvino_ir import ir_metadata
    from segmentoly.export.quantize import quantize_ir
    from segmentoly.inference.predictor import resize_mode

    if subset_size < 1:
        raise ValueError(f"--subset_size: expected a positive number of images, got {subset_size}")
    annotations, image_dir = dataset_paths(dataset, images, data_root=data_root)
    calibration = CocoDataset(annotations, image_dir)
    if resize is None:
        resize = resize_mode(None, ir_metadata(ov.Core().read_model(str(model))).get("preprocessing"))
    return quantize_ir(
        model, output, calibration, resize=resize, subset_size=subset_size, keep_precise_layers=not quantize_all
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="segmentoly quantize", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    model = Path(args.model)
    if not model.is_file():
        raise FileNotFoundError(f"{model}: model file not found")
    output = args.output or model.with_name(f"{model.stem}_int8.xml")
    path = quantize_model(
        model,
        output,
        args.dataset,
        args.images,
        args.data_root,
        resize=resize_from_arguments(args),
        subset_size=args.subset_size,
        quantize_all=args.quantize_all,
    )
    print(f"wrote {path} and {path.with_suffix('.bin')} (INT8)")
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    return run_command(main, argv)
