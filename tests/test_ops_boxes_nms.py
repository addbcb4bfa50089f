"""Box coding, IoU and NMS against hand-computed values and a plain-Python greedy reference."""

import math

import numpy as np
import pytest
import torch

from segmentoly import ops

from helpers import random_boxes, t


def test_iou_hand_computed_plus_one_convention():
    a = torch.tensor([[0.0, 0.0, 9.0, 9.0]])  # 10 x 10 pixels
    b = torch.tensor([[5.0, 5.0, 14.0, 14.0], [10.0, 0.0, 19.0, 9.0], [9.5, 0.0, 19.0, 9.0]])
    iou = ops.box_iou(a, b, offset=1.0)
    # 5x5 overlap of two 100-pixel boxes; touching boxes are disjoint; a sub-pixel gap is still disjoint.
    torch.testing.assert_close(iou, torch.tensor([[25.0 / 175.0, 0.0, 0.0]]))
    iou0 = ops.box_iou(a, b, offset=0.0)
    torch.testing.assert_close(iou0, torch.tensor([[16.0 / 146.0, 0.0, 0.0]]))


def test_decode_hand_computed_and_clamped():
    box = torch.tensor([[10.0, 20.0, 29.0, 59.0]])  # w 20, h 40, centre (20, 40)
    deltas = torch.tensor([[1.0, -0.5, math.log(2.0), 100.0]])
    out = ops.decode_boxes(box, deltas, offset=1.0)
    # centre (40, 20); width 40; height clamped to 40 * 1000 / 16 = 2500.
    torch.testing.assert_close(out, torch.tensor([[20.0, -1230.0, 59.0, 1269.0]]))
    weighted = ops.decode_boxes(box, deltas * torch.tensor([10.0, 10.0, 5.0, 5.0]), weights=(10, 10, 5, 5))
    torch.testing.assert_close(weighted, out)


@pytest.mark.parametrize("offset", [0.0, 1.0])
def test_encode_decode_round_trip(offset):
    rng = np.random.default_rng(0)
    boxes = t(random_boxes(rng, 200, 500, 400)).double()
    targets = t(random_boxes(rng, 200, 500, 400)).double()
    weights = (10.0, 10.0, 5.0, 5.0)
    deltas = ops.encode_boxes(boxes, targets, weights=weights, offset=offset)
    decoded = ops.decode_boxes(boxes, deltas, weights=weights, max_delta_log_wh=1e9, offset=offset)
    torch.testing.assert_close(decoded, targets, rtol=0, atol=1e-9)


def greedy_reference(boxes: np.ndarray, scores: np.ndarray, threshold: float, offset: float) -> list[int]:
    """Textbook greedy NMS, one pair at a time."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept: list[int] = []
    for i in order:
        ok = True
        for j in kept:
            a, b = boxes[i], boxes[j]
            if b[0] > a[2] or b[2] < a[0] or b[1] > a[3] or b[3] < a[1]:
                continue
            iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + offset)
            ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + offset)
            inter = iw * ih
            area_a = (a[2] - a[0] + offset) * (a[3] - a[1] + offset)
            area_b = (b[2] - b[0] + offset) * (b[3] - b[1] + offset)
            if inter / (area_a + area_b - inter) > threshold:
                ok = False
                break
        if ok:
            kept.append(i)
    return kept


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("offset", [0.0, 1.0])
def test_nms_matches_greedy_reference(seed, offset):
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, 300, 200, 200, min_size=10, max_size=80).astype(np.float64)
    scores = rng.uniform(0, 1, 300)
    scores[::7] = 0.5  # ties are broken by index
    keep = ops.nms(t(boxes), t(scores), 0.5, offset=offset)
    assert keep.tolist() == greedy_reference(boxes, scores, 0.5, offset)
    capped = ops.nms(t(boxes), t(scores), 0.5, offset=offset, max_output=10)
    assert capped.tolist() == keep[:10].tolist()


def test_batched_nms_is_nms_per_group():
    rng = np.random.default_rng(1)
    boxes = random_boxes(rng, 400, 150, 150, min_size=20, max_size=60).astype(np.float64)
    scores = rng.uniform(0, 1, 400)
    groups = rng.integers(0, 5, 400)
    keep = ops.batched_nms(t(boxes), t(scores), t(groups), 0.3, offset=1.0).tolist()
    expected = []
    for g in range(5):
        members = np.flatnonzero(groups == g)
        expected += [int(members[i]) for i in greedy_reference(boxes[members], scores[members], 0.3, 1.0)]
    assert keep == expected


def test_nms_rejects_bad_input():
    with pytest.raises(ValueError, match=r"boxes: expected a \[N, 4\]"):
        ops.nms(torch.zeros(5, 3), torch.zeros(5), 0.5)
    with pytest.raises(ValueError, match="scores"):
        ops.nms(torch.zeros(5, 4), torch.zeros(4), 0.5)
    with pytest.raises(ValueError, match="boxes: contains non-finite"):
        ops.nms(torch.tensor([[0.0, 0.0, float("nan"), 1.0]]), torch.ones(1), 0.5)
