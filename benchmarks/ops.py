"""Latency of each detection op in PyTorch and as an OpenVINO node, at ResNet-50-FPN Mask R-CNN sizes.

The workload is that of one 800x1344 image: anchors and proposals on the five levels P2..P6 (1,000 boxes
before and after NMS per level), the 1,000 best of the 5,000 proposals, 1,000 ROIs pooled to 7x7 from the
256-channel P2..P5, the detection output over 1,000 ROIs x 81 classes, and 100 ROIs pooled to 14x14 for the
mask head. Inputs are random but shaped like a real network's: log-uniform box sizes, softmax class scores.

Prints a table (median milliseconds of PyTorch, of OpenVINO, and their ratio) and writes it as JSON.

    python benchmarks/ops.py [--repeat 20] [--threads N] [--json benchmarks/results/ops.json]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from segmentoly import ops
from segmentoly.ops.openvino_reference import OpenVINOOp

IMAGE_H, IMAGE_W = 800, 1344
STRIDES = (4, 8, 16, 32, 64)
CHANNELS = 256


def median_ms(fn: Callable[[], object], repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def random_rois(rng: np.random.Generator, count: int) -> np.ndarray:
    size = np.exp(rng.uniform(math.log(16), math.log(800), (count, 2)))
    x0 = rng.uniform(0, IMAGE_W - size[:, 0])
    y0 = rng.uniform(0, IMAGE_H - size[:, 1])
    return np.stack([x0, y0, x0 + size[:, 0], y0 + size[:, 1]], axis=1).astype(np.float32)


def cell_anchors(size: float) -> np.ndarray:
    """Three anchors (ratios 0.5, 1, 2) of the given size centred on the origin."""
    rows = []
    for ratio in (0.5, 1.0, 2.0):
        w = round(math.sqrt(size * size / ratio))
        h = round(w * ratio)
        rows.append([-(w - 1) / 2, -(h - 1) / 2, (w - 1) / 2, (h - 1) / 2])
    return np.array(rows, dtype=np.float32)


def workloads(rng: np.random.Generator) -> list[tuple[str, Callable[[], object], OpenVINOOp, list[np.ndarray]]]:
    """(name, PyTorch call, OpenVINO op, OpenVINO inputs) for each op of one image."""
    image = np.zeros((1, 3, IMAGE_H, IMAGE_W), np.float32)
    maps = [np.zeros((1, 1, math.ceil(IMAGE_H / s), math.ceil(IMAGE_W / s)), np.float32) for s in STRIDES]
    priors = [cell_anchors(32 * 2**i) for i in range(5)]
    result = []

    # Prior grids of all five levels.
    grid_op = OpenVINOOp("ExperimentalDetectronPriorGridGenerator", flatten=1, h=0, w=0, stride_x=0.0, stride_y=0.0)
    t_image = torch.from_numpy(image)
    t_maps = [torch.from_numpy(m) for m in maps]
    t_priors = [torch.from_numpy(p) for p in priors]
    result.append(
        (
            "prior_grid_generator (5 levels)",
            lambda: [ops.prior_grid_generator(p, m, t_image) for p, m in zip(t_priors, t_maps)],
            [(grid_op, [p, m, image]) for p, m in zip(priors, maps)],
        )
    )

    # Proposals on five levels.
    proposal_attrs = dict(min_size=0.0, nms_threshold=0.7, pre_nms_count=1000, post_nms_count=1000)
    proposal_op = OpenVINOOp("ExperimentalDetectronGenerateProposalsSingleImage", **proposal_attrs)
    im_info = np.array([IMAGE_H, IMAGE_W, 1.0], np.float32)
    levels = []
    for p, m in zip(t_priors, t_maps):
        h, w = m.shape[2:]
        anchors = ops.prior_grid_generator(p, m, t_image).numpy()
        deltas = rng.normal(0, 0.3, (12, h, w)).astype(np.float32)
        scores = (1 / (1 + np.exp(-rng.normal(-2, 2, (3, h, w))))).astype(np.float32)
        levels.append((im_info, anchors, deltas, scores))
    t_levels = [tuple(torch.from_numpy(a) for a in level) for level in levels]
    result.append(
        (
            "generate_proposals (5 levels x 1000)",
            lambda: [ops.generate_proposals_single_image(*lv, **proposal_attrs) for lv in t_levels],
            [(proposal_op, list(level)) for level in levels],
        )
    )

    # Top 1000 of 5000 proposals.
    rois5k = random_rois(rng, 5000)
    probs5k = rng.uniform(0, 1, 5000).astype(np.float32)
    topk_op = OpenVINOOp("ExperimentalDetectronTopKROIs", max_rois=1000)
    t_rois5k, t_probs5k = torch.from_numpy(rois5k), torch.from_numpy(probs5k)
    result.append(
        (
            "topk_rois (5000 -> 1000)",
            lambda: ops.topk_rois(t_rois5k, t_probs5k, max_rois=1000),
            [(topk_op, [rois5k, probs5k])],
        )
    )

    # ROI features for the box head and the mask head.
    features = [
        rng.standard_normal((1, CHANNELS, math.ceil(IMAGE_H / s), math.ceil(IMAGE_W / s))).astype(np.float32)
        for s in STRIDES[:4]
    ]
    t_features = [torch.from_numpy(f) for f in features]
    for count, size in ((1000, 7), (100, 14)):
        rois = random_rois(rng, count)
        attrs = dict(output_size=size, sampling_ratio=2, pyramid_scales=[4, 8, 16, 32], aligned=False)
        rfe_op = OpenVINOOp("ExperimentalDetectronROIFeatureExtractor", **attrs)
        t_rois = torch.from_numpy(rois)
        result.append(
            (
                f"roi_feature_extractor ({count} -> {size}x{size})",
                lambda t_rois=t_rois, attrs=attrs: ops.roi_feature_extractor(t_rois, t_features, **attrs),
                [(rfe_op, [rois, *features])],
            )
        )

    # Detection output over 1000 ROIs x 81 classes.
    rois = random_rois(rng, 1000)
    deltas = rng.normal(0, 1, (1000, 81 * 4)).astype(np.float32)
    logits = rng.normal(0, 2.5, (1000, 81))
    scores = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    info = np.array([[IMAGE_H, IMAGE_W, 1.0]], np.float32)
    attrs = dict(
        score_threshold=0.05,
        nms_threshold=0.5,
        max_delta_log_wh=math.log(1000 / 16),
        num_classes=81,
        post_nms_count=100,
        max_detections_per_image=100,
        class_agnostic_box_regression=False,
        deltas_weights=[10.0, 10.0, 5.0, 5.0],
    )
    det_op = OpenVINOOp("ExperimentalDetectronDetectionOutput", **attrs)
    t_det = [torch.from_numpy(a) for a in (rois, deltas, scores, info)]
    result.append(
        (
            "detection_output (1000 x 81 classes)",
            lambda: ops.detection_output(*t_det, **attrs),
            [(det_op, [rois, deltas, scores, info])],
        )
    )
    return result


def openvino_call(calls: list[tuple[OpenVINOOp, list[np.ndarray]]]) -> Callable[[], None]:
    requests = []
    for op, inputs in calls:
        compiled = op.compiled([a.shape for a in inputs])
        requests.append((compiled.create_infer_request(), inputs))

    def run() -> None:
        for request, inputs in requests:
            request.infer(inputs)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per op (median reported)")
    parser.add_argument("--threads", type=int, default=0, help="PyTorch threads (0: PyTorch's default)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/ops.json"), help="where to write JSON")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    rows = []
    with torch.inference_mode():
        for name, torch_call, ov_calls in workloads(rng):
            torch_ms = median_ms(torch_call, args.repeat)
            ov_ms = median_ms(openvino_call(ov_calls), args.repeat)
            rows.append({"op": name, "pytorch_ms": torch_ms, "openvino_ms": ov_ms, "ratio": torch_ms / ov_ms})

    width = max(len(r["op"]) for r in rows)
    print(f"{'op':<{width}}  {'PyTorch ms':>10}  {'OpenVINO ms':>11}  {'ratio':>6}")
    for r in rows:
        print(f"{r['op']:<{width}}  {r['pytorch_ms']:>10.2f}  {r['openvino_ms']:>11.2f}  {r['ratio']:>6.2f}")
    import openvino

    report = {
        "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "openvino": openvino.__version__,
        "image": [IMAGE_H, IMAGE_W],
        "ops": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
