"""End-to-end latency of a zoo model per backend, split into preprocess / network / postprocess.

For each input size, the same image goes through the Predictor with the PyTorch backend and with OpenVINO
(the IR reshaped to the input size, as the Predictor runs it, and the dynamic-size IR as exported; with
``--int8`` also the IR quantised to INT8, calibrated on the shared COCO sample), and the median milliseconds of
each stage are printed with the model's GFLOPs, as a table and as JSON.

Random weights are scaled so that the model outputs its full 100 detections with real masks, so that
postprocessing does its full work.

    python benchmarks/latency.py --model resnet50_fpn --sizes 800x1344 480x640 [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from segmentoly import Predictor
from segmentoly.data.splits import COCO_CLASS_NAMES
from segmentoly.data.transforms import FixedSize
from segmentoly.export.flops import count_gflops
from segmentoly.inference.backends import OpenVINOBackend
from segmentoly.rcnn.model_zoo import resolve_architecture
from segmentoly.weights.checkpoint import save_checkpoint

SHARED_DATA = Path(os.environ.get("SEGMENTOLY_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
COCO_TINY = SHARED_DATA / "coco_tiny"
SAMPLE = COCO_TINY / "val2017" / "000000005001.jpg"


def test_image(height: int, width: int) -> np.ndarray:
    """A real photo resized to the input size when the shared data is there, else noise."""
    if SAMPLE.is_file():
        return cv2.resize(cv2.imread(str(SAMPLE)), (width, height))
    return np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)


def time_stages(predictor: Predictor, image: np.ndarray, repeat: int, warmup: int = 1) -> dict[str, float]:
    for _ in range(warmup):
        predictor(image)
    runs = []
    for _ in range(repeat):
        detections = predictor(image)
        runs.append(dict(predictor.last_timing))
    result = {stage: 1000 * statistics.median(r[stage] for r in runs) for stage in runs[0]}
    result["total"] = 1000 * statistics.median(sum(r.values()) for r in runs)
    result["detections"] = len(detections)
    return result


def quantized_predictor(openvino: Predictor, size: tuple[int, int], path: Path, count: int) -> Predictor | None:
    """The IR of ``openvino`` quantised to INT8, calibrated at ``size`` on the shared COCO sample."""
    from segmentoly.data.coco import CocoDataset
    from segmentoly.export.quantize import quantize_ir

    annotations = COCO_TINY / "annotations" / "instances_val2017.json"
    if not annotations.is_file():
        print(f"no INT8 column: the calibration images ({COCO_TINY}) are not there")
        return None
    dataset = CocoDataset(annotations, COCO_TINY / "val2017")
    quantize_ir(openvino.backend.path, path, dataset, resize=FixedSize(*size), subset_size=count)
    return Predictor.from_openvino(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet50_fpn", help="zoo architecture")
    parser.add_argument("--sizes", nargs="+", default=["800x1344", "480x640"], help="HEIGHTxWIDTH input sizes")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per backend and size (median)")
    parser.add_argument("--json", type=Path, default=None, help="where to write JSON (default benchmarks/results/)")
    parser.add_argument("--skip_pytorch", action="store_true", help="time only OpenVINO")
    parser.add_argument("--int8", action="store_true", help="also time the INT8 IR (calibrated on COCO images)")
    parser.add_argument("--calibration_images", type=int, default=40, help="INT8 calibration images (default 40)")
    args = parser.parse_args()

    torch.manual_seed(0)
    cls = resolve_architecture(args.model)
    model = cls(len(COCO_CLASS_NAMES))
    with torch.no_grad():
        model.mask_predictor.logits.weight.mul_(1000.0)  # masks with contrast, so pasting does real work
    sizes = [tuple(int(v) for v in size.lower().split("x")) for size in args.sizes]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = save_checkpoint(Path(folder) / "model.pth", model, class_names=COCO_CLASS_NAMES)
        openvino = Predictor.from_checkpoint(checkpoint, backend="openvino", cache_dir=Path(folder) / "cache")
        dynamic = Predictor(
            OpenVINOBackend(openvino.backend.path, dynamic=True),
            class_names=COCO_CLASS_NAMES,
            pixel_mean=model.config.pixel_mean,
            size_divisor=32,
        )
        pytorch = None if args.skip_pytorch else Predictor.from_checkpoint(checkpoint)
        int8 = None
        if args.int8:
            int8 = quantized_predictor(openvino, sizes[0], Path(folder) / "int8.xml", args.calibration_images)
        for height, width in sizes:
            image = test_image(height, width)
            gflops = count_gflops(model, height, width)
            backends = (
                ("pytorch", pytorch),
                ("openvino", openvino),
                ("openvino-dynamic", dynamic),
                ("openvino-int8", int8),
            )
            for name, predictor in backends:
                if predictor is None:
                    continue
                predictor.resize = FixedSize(height, width)
                timing = time_stages(predictor, image, args.repeat)
                rows.append({"size": f"{height}x{width}", "backend": name, "gflops": gflops, **timing})

    header = f"{'size':>9}  {'backend':<16} {'GFLOPs':>7} {'pre ms':>7} {'net ms':>8} {'post ms':>8} {'total ms':>9}"
    print(f"{args.model}, {torch.get_num_threads()} threads, median of {args.repeat}")
    print(header)
    for r in rows:
        print(
            f"{r['size']:>9}  {r['backend']:<16} {r['gflops']:>7.1f} {r['preprocess']:>7.1f} {r['network']:>8.1f} "
            f"{r['postprocess']:>8.1f} {r['total']:>9.1f}"
        )
    for size in dict.fromkeys(r["size"] for r in rows):
        by = {r["backend"]: r for r in rows if r["size"] == size}
        ov = by["openvino"]
        notes = [f"postprocess {100 * ov['postprocess'] / ov['network']:.1f}% of OpenVINO network time"]
        if "pytorch" in by:
            notes.insert(0, f"OpenVINO {by['pytorch']['total'] / ov['total']:.2f}x faster than PyTorch")
        notes.append(f"per-shape IR {by['openvino-dynamic']['network'] / ov['network']:.2f}x faster than dynamic")
        if "openvino-int8" in by:
            notes.append(f"INT8 {ov['total'] / by['openvino-int8']['total']:.2f}x faster than FP32")
        print(f"{size}: " + "; ".join(notes))
    out = args.json or Path("benchmarks/results") / f"latency_{args.model}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "model": args.model,
                "machine": platform.processor() or platform.machine(),
                "threads": torch.get_num_threads(),
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
