"""Region proposals of one feature level of one image."""

from __future__ import annotations

import torch
from torch import Tensor

from segmentoly.ops._checks import check_finite, check_positive_int, check_size, check_tensor
from segmentoly.ops._openvino import exporting, openvino_multi_node
from segmentoly.ops.boxes import BBOX_XFORM_CLIP, clip_boxes, decode_boxes
from segmentoly.ops.nms import nms_sorted


def generate_proposals_single_image(
    im_info: Tensor,
    anchors: Tensor,
    deltas: Tensor,
    scores: Tensor,
    *,
    min_size: float,
    nms_threshold: float,
    pre_nms_count: int,
    post_nms_count: int,
) -> tuple[Tensor, Tensor]:
    """Decode, filter and suppress the RPN's boxes; mirrors OpenVINO's
    ``ExperimentalDetectronGenerateProposalsSingleImage``.

    Args:
        im_info: ``[3]``, the network input's height, width and scale; boxes are clipped to
            ``[0, W - 1] x [0, H - 1]``.
        anchors: ``[H * W * A, 4]`` in (row, column, anchor) order, as :func:`prior_grid_generator` makes them.
        deltas: ``[A * 4, H, W]``, the regression of anchor ``a`` in channels ``4a..4a+3``.
        scores: ``[A, H, W]`` objectness.

    The ``pre_nms_count`` best-scoring anchors are decoded (+1 box convention, log-size deltas clamped at
    ``log(1000 / 16)``) and clipped; a box narrower or shorter than ``min_size`` gets score 0 (it is kept, not
    dropped). Greedy NMS (IoU without +1, IoU greater than ``nms_threshold`` suppresses) keeps at most
    ``post_nms_count`` boxes, best first; the rest of the ``[post_nms_count, 4]`` boxes and
    ``[post_nms_count]`` scores are zero.
    """
    check_tensor("im_info", im_info, 1, "[3]")
    check_size("im_info", im_info, 0, 3, "[3]")
    check_tensor("scores", scores, 3, "[A, H, W]")
    check_tensor("deltas", deltas, 3, "[A * 4, H, W]")
    num_anchors, height, width = scores.shape
    check_size("deltas", deltas, 0, 4 * num_anchors, "[A * 4, H, W] (A from scores)")
    check_size("deltas", deltas, 1, height, "[A * 4, H, W] (H from scores)")
    check_size("deltas", deltas, 2, width, "[A * 4, H, W] (W from scores)")
    check_tensor("anchors", anchors, 2, "[H * W * A, 4]")
    check_size("anchors", anchors, 1, 4, "[H * W * A, 4]")
    check_size("anchors", anchors, 0, height * width * num_anchors, "[H * W * A, 4] (H, W, A from scores)")
    check_positive_int("pre_nms_count", pre_nms_count)
    check_positive_int("post_nms_count", post_nms_count)
    check_finite("anchors", anchors)
    check_finite("im_info", im_info)

    if exporting():
        attrs = dict(
            min_size=float(min_size),
            nms_threshold=float(nms_threshold),
            pre_nms_count=pre_nms_count,
            post_nms_count=post_nms_count,
        )
        rois, roi_scores = openvino_multi_node(
            "ExperimentalDetectronGenerateProposalsSingleImage",
            (im_info, anchors, deltas, scores),
            attrs,
            dtypes=(anchors.dtype, anchors.dtype),
            shapes=((post_nms_count, 4), (post_nms_count,)),
        )
        return rois, roi_scores

    # Bring everything to the anchors' (row, column, anchor) order.
    deltas = deltas.reshape(num_anchors, 4, height, width).permute(2, 3, 0, 1).reshape(-1, 4)
    scores = scores.permute(1, 2, 0).reshape(-1)
    boxes = decode_boxes(anchors, deltas, max_delta_log_wh=BBOX_XFORM_CLIP, offset=1.0)
    boxes = clip_boxes(boxes, im_info[0], im_info[1], offset=1.0)
    widths = boxes[:, 2] - boxes[:, 0] + 1.0
    heights = boxes[:, 3] - boxes[:, 1] + 1.0
    large_enough = (widths >= min_size) & (heights >= min_size)
    scores = scores * large_enough.to(scores.dtype)

    top_scores, top = torch.topk(scores, min(pre_nms_count, scores.shape[0]), sorted=True)
    top_boxes = boxes[top]
    keep = nms_sorted(top_boxes, nms_threshold, offset=0.0, max_output=post_nms_count)

    rois = anchors.new_zeros((post_nms_count, 4))
    roi_scores = scores.new_zeros((post_nms_count,))
    rois[: keep.shape[0]] = top_boxes[keep]
    roi_scores[: keep.shape[0]] = top_scores[keep]
    return rois, roi_scores
