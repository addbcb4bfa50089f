"""``segmentoly test`` / ``tools/test.py``: COCO box and mask AP of a model on a dataset.

The dataset is a named split (``coco_2017_val`` under ``data/coco``) or any COCO instances json with its image
folder (``--images``). Prints pycocotools' tables, and writes the detections (COCO results format) and the
metrics (JSON) to ``--output_dir``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from segmentoly.commands.common import run_command
from segmentoly.commands.predictor_options import add_predictor_arguments, predictor_from_arguments, print_flops


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", help="image folder of a --dataset json")
    parser.add_argument("--data_root", default="data/coco", help="folder of the named COCO splits")
    parser.add_argument("--nw", type=int, default=2, help="image reading worker processes (default 2)")
    parser.add_argument("--max_images", type=int, help="evaluate on the first N images only")
    parser.add_argument("--output_dir", type=Path, help="where to write detections.json and metrics.json")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    add_predictor_arguments(parser, batch_size=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="segmentoly test", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    from segmentoly.data.coco import CocoDataset
    from segmentoly.data.splits import dataset_paths
    from segmentoly.engine.evaluation import METRIC_NAMES, evaluate

    if not args.dataset:
        raise ValueError("--dataset is required: a split name (coco_2017_val) or a COCO json with --images")
    annotations, images = dataset_paths(args.dataset, args.images, data_root=args.data_root)
    dataset = CocoDataset(annotations, images)
    predictor = predictor_from_arguments(args)
    if len(predictor.class_names) != dataset.num_classes + 1:
        raise ValueError(
            f"the model detects {len(predictor.class_names) - 1} classes, {annotations} has {dataset.num_classes}"
        )
    if args.backend == "pytorch" and args.show_flops:
        first = dataset.image_info(0)
        print_flops(predictor, *predictor.input_shape(first.height, first.width))

    output_dir = args.output_dir or Path("outputs") / "test" / Path(annotations).stem
    metrics = evaluate(
        predictor,
        dataset,
        output_dir=output_dir,
        progress=not args.no_progress,
        max_images=args.max_images,
        batch_size=getattr(args, "batch_size", 1),
        num_workers=args.nw,
        info={"backend": args.backend},
    )
    for iou_type, title in (("bbox", "boxes"), ("segm", "masks")):
        print(f"\n{title} ({iou_type}):\n{metrics['summary'][iou_type]}")
    print("\n" + " " * 7 + "".join(f"{name:>8}" for name in METRIC_NAMES[:6]))
    for key in ("boxes", "masks"):
        # pycocotools reports -1 where no ground truth falls in an area range
        cells = [metrics[key][name] for name in METRIC_NAMES[:6]]
        print(f"{key:<7}" + "".join(f"{100 * v:8.2f}" if v >= 0 else f"{'-':>8}" for v in cells))

    print(f"\nwrote {output_dir / 'detections.json'} and {output_dir / 'metrics.json'}")
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    return run_command(main, argv)
