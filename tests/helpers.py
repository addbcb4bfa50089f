"""Shared helpers for the tests: comparisons and realistic random inputs."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

# Float outputs of the PyTorch ops agree with OpenVINO's to 1e-4 relative; the absolute part covers values
# near zero (coordinates, features), where a relative bound alone means nothing.
RTOL = 1e-4
ATOL = 1e-4


def assert_close(actual: torch.Tensor | np.ndarray, expected: np.ndarray, *, atol: float = ATOL) -> None:
    actual = actual.detach().cpu().numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual)
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=atol)


def rows_as_set(rows: np.ndarray, decimals: int = 3) -> list[tuple]:
    """Rows rounded and sorted, to compare outputs whose order is unspecified."""
    return sorted(tuple(np.round(r, decimals)) for r in np.asarray(rows).reshape(rows.shape[0], -1))


def cell_anchors(sizes=(32,), ratios=(0.5, 1.0, 2.0)) -> np.ndarray:
    """Detectron-style anchors centred on the origin, ``[A, 4]``."""
    rows = []
    for size in sizes:
        for ratio in ratios:
            w = round(math.sqrt(size * size / ratio))
            h = round(w * ratio)
            rows.append([-(w - 1) / 2, -(h - 1) / 2, (w - 1) / 2, (h - 1) / 2])
    return np.array(rows, dtype=np.float32)


def random_boxes(rng: np.random.Generator, count: int, width: float, height: float, min_size=4.0, max_size=None):
    """Boxes with log-uniform sizes, mostly inside a ``width x height`` image, ``[count, 4]`` float32."""
    max_size = max_size or max(width, height)
    size = np.exp(rng.uniform(math.log(min_size), math.log(max_size), (count, 2)))
    x0 = rng.uniform(-0.1 * width, width, count)
    y0 = rng.uniform(-0.1 * height, height, count)
    return np.stack([x0, y0, x0 + size[:, 0], y0 + size[:, 1]], axis=1).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


#: The shared data folder beside the repository (``../shared/data``); SEGMENTOLY_SHARED_DATA points elsewhere.
SHARED_DATA = Path(os.environ.get("SEGMENTOLY_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
COCO_TINY = SHARED_DATA / "coco_tiny"


def coco_tiny_root() -> Path:
    """The coco_tiny data set of the shared data folder; skips the test, saying where it looked, if absent."""
    import pytest

    if not (COCO_TINY / "annotations" / "instances_val2017.json").is_file():
        pytest.skip(f"coco_tiny is not at {COCO_TINY} (the shared data folder beside the repository, or set "
                    "SEGMENTOLY_SHARED_DATA)")
    return COCO_TINY


def landscape_and_portrait_images() -> list[tuple[str, np.ndarray]]:
    """A landscape and a portrait photo from the shared COCO sample, or, without it, two synthetic images."""
    import cv2

    names = ("000000005001.jpg", "000000125952.jpg")  # 640x480 and 358x640
    paths = [COCO_TINY / "val2017" / name for name in names]
    if all(p.is_file() for p in paths):
        return [(p.name, cv2.imread(str(p))) for p in paths]
    rng = np.random.default_rng(0)
    images = []
    for height, width in ((480, 640), (640, 358)):
        image = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
        for _ in range(12):
            x, y = int(rng.integers(0, width - 40)), int(rng.integers(0, height - 40))
            colour = tuple(int(c) for c in rng.integers(80, 255, 3))
            cv2.rectangle(image, (x, y), (x + int(rng.integers(20, 120)), y + int(rng.integers(20, 120))), colour, -1)
        # Smooth shading everywhere, as in a photo. On flat regions the random-weight test models' mask logits
        # are flat too, near the threshold, where float rounding flips whole regions; pixel noise, on the other
        # hand, gives speckled masks that change wholesale when a box rounds to one pixel more.
        shading = cv2.GaussianBlur(rng.standard_normal((height, width, 3)), (0, 0), 12)
        image = np.clip(image + shading * (30.0 / shading.std()), 0, 255).astype(np.uint8)
        images.append((f"synthetic_{height}x{width}", image))
    return images


def assert_same_detections(a, b, *, box_tol=0.5, score_tol=1e-3, mask_iou=0.99):
    """Two backends' Detections of one image agree: labels, boxes, scores and masks, detection by detection.

    One difference float rounding legitimately makes: where the output is cut (the best N detections, or the
    score threshold), a candidate whose score is within ``score_tol`` of the cut may fall on either side of it
    in each backend. Detections are therefore paired by label and box; only detections at the cut may go
    unpaired.
    """
    assert len(a) == len(b), (len(a), len(b))
    unpaired_b = list(range(len(b)))
    pairs, unpaired_a = [], []
    for i in range(len(a)):
        match = next(
            (j for j in unpaired_b if a.labels[i] == b.labels[j] and np.abs(a.boxes[i] - b.boxes[j]).max() <= box_tol),
            None,
        )
        if match is None:
            unpaired_a.append(i)
        else:
            unpaired_b.remove(match)
            pairs.append((i, match))
    for detections, unpaired in ((a, unpaired_a), (b, unpaired_b)):
        if unpaired:
            cut = detections.scores.min()
            assert (detections.scores[unpaired] <= cut + score_tol).all(), "detections differ away from the cut"
    assert len(pairs) >= len(a) - 2
    ia, ib = (np.array(side, dtype=int) for side in zip(*pairs))
    np.testing.assert_allclose(a.scores[ia], b.scores[ib], rtol=0, atol=score_tol)
    inter = (a.masks[ia] & b.masks[ib]).sum(axis=(1, 2))
    union = (a.masks[ia] | b.masks[ib]).sum(axis=(1, 2))
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)  # two empty masks agree
    assert iou.min() >= mask_iou, iou.min()
