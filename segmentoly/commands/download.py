"""``segmentoly download`` / ``tools/download_pretrained_weights.py``: fetch the pretrained Detectron and
maskrcnn-benchmark models, convert them to segmentoly checkpoints, and export them to ONNX and OpenVINO IR.

With no arguments every default model of the registry is prepared under data/pretrained_models:
raw/ (as published), converted/ (segmentoly checkpoints; ImageNet backbones as backbone files for training),
onnx/ and ir/ (Mask R-CNN models). Interrupted downloads resume; finished steps are not redone. The exit
status is 0 only if every model succeeded.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from segmentoly.commands.common import run_command

logger = logging.getLogger("segmentoly.download")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model_zoo",
        type=Path,
        help="registry YAML with more models: they join the bundled registry (an entry of the same name replaces "
        "the bundled one), and without --models they are the ones prepared",
    )
    parser.add_argument(
        "--output_dir",
        type=Path,
        default=Path("data/pretrained_models"),
        help="root of the raw/, converted/, onnx/ and ir/ folders (default: %(default)s)",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        metavar="NAME",
        help="prepare only these models (names as --list shows them); default: every default model",
    )
    parser.add_argument("--all", action="store_true", help="also the registry's non-default models")
    parser.add_argument("--list", action="store_true", help="list the registry's models and exit")
    convert = parser.add_argument_group("converting a file you already have")
    convert.add_argument(
        "--convert_file",
        type=Path,
        metavar="PATH",
        help="a Detectron .pkl or maskrcnn-benchmark .pth to convert (and export) instead of downloading",
    )
    convert.add_argument("--name", help="the registry model the file is (its architecture, format, classes)")
    convert.add_argument("--architecture", help="or: the architecture the file has (zoo name or class path)")
    convert.add_argument("--format", choices=("detectron_pkl", "maskrcnn_benchmark_pth"), help="default: by suffix")
    convert.add_argument("--kind", choices=("mask_rcnn", "backbone"), default="mask_rcnn", help="with --architecture")
    convert.add_argument("--output", type=Path, help="the converted file (default: under --output_dir/converted)")
    parser.add_argument("--no_onnx", action="store_true", help="do not export to ONNX (nor IR)")
    parser.add_argument("--no_ir", action="store_true", help="do not convert the ONNX files to OpenVINO IR")
    parser.add_argument("--fp16", action="store_true", help="compress the IR's weights to FP16 (default FP32)")
    parser.add_argument("--force", action="store_true", help="redo conversion and export even if up to date")
    parser.add_argument("--no_progress", action="store_true", help="no download progress bars")


def list_models(models) -> str:
    """The registry as a table: name, kind, source, architecture and published APs."""
    from segmentoly.weights.registry import describe_keys

    def ap(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    header = ["name", "kind", "source", "architecture", "box AP", "mask AP", ""]
    rows = [
        [name, m.kind, m.source, m.architecture, ap(m.box_ap), ap(m.mask_ap), "" if m.default else "(not default)"]
        for name, m in zip(describe_keys(models), models.values())
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths if w))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="segmentoly download", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    from segmentoly.weights.convert import adhoc_entry
    from segmentoly.weights.prepare import prepare, summary_table
    from segmentoly.weights.registry import load_registry, select

    own = load_registry(args.model_zoo) if args.model_zoo else {}
    models = {**load_registry(), **own}
    if args.list:
        print(list_models(models))
        return 0

    raw_path = None
    if args.convert_file is not None:
        if args.models:
            raise ValueError("--convert_file converts one file: give --name or --architecture, not --models")
        if bool(args.name) == bool(args.architecture):
            raise ValueError("--convert_file: give either --name (a registry model) or --architecture")
        if args.name:
            (entry,) = select(models, [args.name])
            if args.format and args.format != entry.format:
                entry = replace(entry, format=args.format)
        else:
            entry = adhoc_entry(args.architecture, args.convert_file, format=args.format, kind=args.kind)
        entries, raw_path = [entry], args.convert_file
    else:
        for option in ("name", "architecture", "format", "output"):
            if getattr(args, option):
                raise ValueError(f"--{option} goes with --convert_file")
        # Without --models, a registry of one's own says what to prepare; the bundled defaults otherwise.
        entries = select(models if args.models else (own or models), args.models, everything=args.all)
    if not entries:
        raise ValueError("the registry has no models to prepare")

    outcomes = []
    for number, entry in enumerate(entries, 1):
        print(f"[{number}/{len(entries)}] {entry.key}", flush=True)
        outcome = prepare(
            entry,
            args.output_dir,
            raw_path=raw_path,
            converted_path=args.output,
            onnx=not args.no_onnx,
            ir=not args.no_ir,
            fp16=args.fp16,
            force=args.force,
            progress=not args.no_progress,
            report=lambda message: print(f"    {message}", flush=True),
        )
        if not outcome.ok:
            print(f"    {entry.key} failed: {outcome.error}", file=sys.stderr, flush=True)
        outcomes.append(outcome)
    print()
    print(summary_table(outcomes))
    print(f"\noutputs under {args.output_dir}" + (f" and {args.output}" if args.output else ""))
    failed = sum(not o.ok for o in outcomes)
    if failed:
        print(f"\n{failed} of {len(outcomes)} model(s) failed", file=sys.stderr)
        return 1
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    return run_command(main, argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(cli())
