"""Final detections: per-class box refinement, score threshold and NMS, best detections per image."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from segmentoly.ops._checks import check_finite, check_positive_int, check_size, check_tensor
from segmentoly.ops._openvino import exporting, openvino_multi_node
from segmentoly.ops.boxes import decode_boxes
from segmentoly.ops.nms import group_by_score, grouped_nms_sorted


def detection_output(
    rois: Tensor,
    deltas: Tensor,
    scores: Tensor,
    im_info: Tensor,
    *,
    score_threshold: float,
    nms_threshold: float,
    max_delta_log_wh: float,
    num_classes: int,
    post_nms_count: int,
    max_detections_per_image: int,
    class_agnostic_box_regression: bool = False,
    deltas_weights: Sequence[float],
) -> tuple[Tensor, Tensor, Tensor]:
    """Refine ``rois`` ``[N, 4]`` per class and select the final detections; mirrors OpenVINO's
    ``ExperimentalDetectronDetectionOutput``.

    For every class but the background 0, ``deltas`` ``[N, 4 * num_classes]`` (divided by ``deltas_weights``,
    +1 box convention, log-size deltas clamped at ``max_delta_log_wh``) refine the ROIs, which are clipped at
    0 only; ROIs of zero width or height are dropped. Detections with ``scores`` ``[N, num_classes]`` above
    ``score_threshold`` go through greedy NMS per class (+1 areas, IoU greater than ``nms_threshold``
    suppresses), at most ``post_nms_count`` per class, and the ``max_detections_per_image`` best of all
    classes are kept.

    Returns ``boxes [M, 4]``, ``classes [M]`` (int32, 0 marks padding) and ``scores [M]`` with
    ``M = max_detections_per_image``. Like OpenVINO, the rows are in class order (best first within a class)
    when all detections fit, and by descending score (ties by ROI) when some had to be dropped.

    ``im_info`` ``[1, 3]`` is part of the operator's signature but the boxes are not clipped to it.
    ``class_agnostic_box_regression`` is carried into the exported node; OpenVINO's CPU plugin ignores it and
    so does this function: a class-agnostic model passes its deltas repeated for every class.
    """
    check_tensor("rois", rois, 2, "[N, 4]")
    check_size("rois", rois, 1, 4, "[N, 4]")
    num_rois = rois.shape[0]
    check_positive_int("num_classes", num_classes)
    check_positive_int("post_nms_count", post_nms_count)
    check_positive_int("max_detections_per_image", max_detections_per_image)
    check_tensor("deltas", deltas, 2, "[N, 4 * num_classes]")
    check_size("deltas", deltas, 0, num_rois, "[N, 4 * num_classes] (N from rois)")
    check_size("deltas", deltas, 1, 4 * num_classes, "[N, 4 * num_classes]")
    check_tensor("scores", scores, 2, "[N, num_classes]")
    check_size("scores", scores, 0, num_rois, "[N, num_classes] (N from rois)")
    check_size("scores", scores, 1, num_classes, "[N, num_classes]")
    check_tensor("im_info", im_info, 2, "[1, 3]")
    if tuple(im_info.shape) != (1, 3):
        raise ValueError(f"im_info: expected a [1, 3] tensor, got shape {tuple(im_info.shape)}")
    if len(deltas_weights) != 4:
        raise ValueError(f"deltas_weights: expected 4 values, got {list(deltas_weights)}")
    check_finite("rois", rois)

    max_detections = max_detections_per_image
    if exporting():
        attrs = dict(
            score_threshold=float(score_threshold),
            nms_threshold=float(nms_threshold),
            max_delta_log_wh=float(max_delta_log_wh),
            num_classes=num_classes,
            post_nms_count=post_nms_count,
            max_detections_per_image=max_detections,
            class_agnostic_box_regression=class_agnostic_box_regression,
            deltas_weights=[float(w) for w in deltas_weights],
        )
        boxes, classes, out_scores = openvino_multi_node(
            "ExperimentalDetectronDetectionOutput",
            (rois, deltas, scores, im_info),
            attrs,
            dtypes=(rois.dtype, torch.int32, scores.dtype),
            shapes=((max_detections, 4), (max_detections,), (max_detections,)),
        )
        return boxes, classes, out_scores

    device = rois.device
    refined = decode_boxes(
        rois[:, None, :],
        deltas.reshape(num_rois, num_classes, 4),
        weights=deltas_weights,
        max_delta_log_wh=max_delta_log_wh,
        offset=1.0,
    )
    refined = torch.clamp(refined, min=0.0)

    # Candidates (roi, class) of the foreground classes above the threshold, from non-degenerate ROIs.
    valid_roi = ((rois[:, 2] - rois[:, 0]) > 0) & ((rois[:, 3] - rois[:, 1]) > 0)
    candidate = (scores > score_threshold) & valid_roi[:, None]
    candidate[:, 0] = False
    roi_index, class_index = torch.nonzero(candidate, as_tuple=True)
    cand_scores = scores[roi_index, class_index]
    cand_boxes = refined[roi_index, class_index]

    order, starts, sizes = group_by_score(cand_scores, class_index)
    kept = order[
        grouped_nms_sorted(cand_boxes[order], starts, sizes, nms_threshold, offset=1.0, max_output=post_nms_count)
    ]
    if kept.shape[0] > max_detections:
        # Best scores overall, ties broken by ROI index.
        by_roi = kept[torch.sort(roi_index[kept], stable=True).indices]
        kept = by_roi[torch.sort(cand_scores[by_roi], descending=True, stable=True).indices][:max_detections]

    count = kept.shape[0]
    out_boxes = rois.new_zeros((max_detections, 4))
    out_classes = torch.zeros((max_detections,), dtype=torch.int32, device=device)
    out_scores = scores.new_zeros((max_detections,))
    out_boxes[:count] = cand_boxes[kept]
    out_classes[:count] = class_index[kept].to(torch.int32)
    out_scores[:count] = cand_scores[kept]
    return out_boxes, out_classes, out_scores
