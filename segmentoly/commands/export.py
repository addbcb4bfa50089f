"""``segmentoly export`` / ``tools/convert_to_onnx.py``: a model to ONNX (OpenVINO ops) and OpenVINO IR."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from segmentoly.commands.common import class_names_from_arguments, run_command

logger = logging.getLogger("segmentoly.export")

DEFAULT_FLOPS_SIZE = (800, 1344)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="architecture: a zoo name (resnet50_fpn) or a class path")
    parser.add_argument("--ckpt", help="segmentoly checkpoint with the weights (omit to export random weights)")
    parser.add_argument(
        "--input_size",
        nargs=2,
        type=int,
        metavar=("HEIGHT", "WIDTH"),
        help="fix the input size (multiples of 32); by default height and width are dynamic",
    )
    parser.add_argument("--output_file", required=True, type=Path, help="the ONNX file to write")
    classes = parser.add_mutually_exclusive_group()
    classes.add_argument("--dataset", help="the dataset (split name or COCO json) whose classes the model detects")
    classes.add_argument("-nc", "--num_classes", type=int, help="number of classes, background included")
    parser.add_argument("--no_ir", action="store_true", help="write only the ONNX file, no OpenVINO IR beside it")
    parser.add_argument("--fp16", action="store_true", help="compress the IR's weights to FP16 (default FP32)")
    parser.add_argument("--int8", metavar="DATASET", help="also write an INT8 IR (NNCF), calibrated on this dataset")
    parser.add_argument("--int8_images", help="image folder of an --int8 COCO json")
    from segmentoly.commands.quantize import add_int8_arguments

    add_int8_arguments(parser, prefix="int8_")
    parser.add_argument("--check", action="store_true", help="run the export with OpenVINO and compare it with PyTorch")
    parser.add_argument("--show_flops", action="store_true", help="print the model's GFLOPs (PyTorch's FLOP counter)")
    parser.add_argument("--verbose", action="store_true", help="print the exporter's messages")


def load_model(architecture: str, checkpoint: str | None, class_names: list[str] | None):
    """The model and its class names and preprocessing, from a checkpoint or (random weights) the zoo."""
    from segmentoly.rcnn.model_zoo import resolve_architecture
    from segmentoly.weights.checkpoint import build_model, read_checkpoint

    if checkpoint:
        state = read_checkpoint(checkpoint)
        model = build_model(state, architecture=architecture, source=checkpoint)
        saved = state.get("class_names") or []
        if class_names is not None and len(class_names) != len(saved):
            raise ValueError(
                f"{checkpoint}: the model has {len(saved)} classes (background included), "
                f"but --dataset/-nc asks for {len(class_names)}"
            )
        return model, saved or class_names, state.get("preprocessing") or {}
    if class_names is None:
        raise ValueError("give --dataset or -nc to say how many classes the model has (or --ckpt)")
    cls = resolve_architecture(architecture)
    logger.warning("no --ckpt: exporting %s with random weights", architecture)
    torch.manual_seed(0)
    return cls(len(class_names)), class_names, {}


def check_export(model, onnx_path: Path, input_size: tuple[int, int] | None) -> float:
    """Largest difference between PyTorch and OpenVINO on the exported file, for a random image."""
    from segmentoly.inference.backends import OpenVINOBackend, PyTorchBackend

    height, width = input_size or (320, 480)
    blob = np.random.default_rng(0).uniform(0, 255, (1, 3, height, width)).astype(np.float32)
    expected = PyTorchBackend(model)(blob)
    actual = OpenVINOBackend(onnx_path)(blob)
    worst = 0.0
    for name, value in expected.items():
        if value.shape != actual[name].shape:
            raise ValueError(
                f"--check: output {name} has shape {actual[name].shape} in OpenVINO, {value.shape} in PyTorch"
            )
        worst = max(worst, float(np.abs(value.astype(np.float64) - actual[name]).max(initial=0.0)))
    return worst


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="segmentoly export", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    from segmentoly.export import convert_to_ir, export_onnx, model_metadata
    from segmentoly.export.flops import count_gflops

    class_names = class_names_from_arguments(args.dataset, args.num_classes)
    model, class_names, preprocessing = load_model(args.model, args.ckpt, class_names)
    model.eval()
    input_size = tuple(args.input_size) if args.input_size else None
    if args.show_flops:
        height, width = input_size or DEFAULT_FLOPS_SIZE
        print(f"GFLOPs at {height}x{width}: {count_gflops(model, height, width):.1f}")
    if args.output_file.suffix != ".onnx":
        raise ValueError(f"--output_file {args.output_file}: expected a path ending in .onnx")
    metadata = model_metadata(model, list(class_names), preprocessing)
    onnx_path = export_onnx(model, args.output_file, metadata=metadata, input_size=input_size, verbose=args.verbose)
    print(f"wrote {onnx_path}")
    if not args.no_ir:
        xml = convert_to_ir(onnx_path, onnx_path.with_suffix(".xml"), compress_to_fp16=args.fp16)
        print(f"wrote {xml} and {xml.with_suffix('.bin')} ({'FP16' if args.fp16 else 'FP32'} weights)")
    if args.int8:
        if args.no_ir:
            raise ValueError("--int8 quantises the IR: drop --no_ir")
        from segmentoly.commands.quantize import quantize_model

        int8 = quantize_model(
            onnx_path.with_suffix(".xml"),
            onnx_path.with_name(f"{onnx_path.stem}_int8.xml"),
            args.int8,
            args.int8_images,
            "data/coco",
            resize=None,
            subset_size=args.int8_subset_size,
            quantize_all=args.int8_quantize_all,
        )
        print(f"wrote {int8} and {int8.with_suffix('.bin')} (INT8)")
    if args.check:
        worst = check_export(model, onnx_path, input_size)
        print(f"check: OpenVINO and PyTorch outputs differ by at most {worst:.2e}")
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    return run_command(main, argv)
