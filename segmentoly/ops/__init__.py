"""Detection operators: PyTorch bodies that run on CPU and CUDA, and OpenVINO nodes at ONNX export.

Each of the five graph ops mirrors an OpenVINO opset-6 operator (same inputs in the same order, same outputs,
its attributes as keyword arguments): while ``torch.onnx.export`` traces a model, the op emits that operator
in the ``org.openvinotoolkit`` domain instead of running its body, so that the PyTorch and OpenVINO backends
run the same computation.
"""

from segmentoly.ops.boxes import BBOX_XFORM_CLIP, box_area, box_iou, clip_boxes, decode_boxes, encode_boxes
from segmentoly.ops.detection_output import detection_output
from segmentoly.ops.nms import batched_nms, nms
from segmentoly.ops.prior_grid import prior_grid_generator
from segmentoly.ops.proposals import generate_proposals_single_image
from segmentoly.ops.roi_align import map_rois_to_levels, multilevel_roi_align, roi_align
from segmentoly.ops.roi_feature_extractor import roi_feature_extractor
from segmentoly.ops.topk import topk_rois

__all__ = [
    "BBOX_XFORM_CLIP",
    "batched_nms",
    "box_area",
    "box_iou",
    "clip_boxes",
    "decode_boxes",
    "detection_output",
    "encode_boxes",
    "generate_proposals_single_image",
    "map_rois_to_levels",
    "multilevel_roi_align",
    "nms",
    "prior_grid_generator",
    "roi_align",
    "roi_feature_extractor",
    "topk_rois",
]
