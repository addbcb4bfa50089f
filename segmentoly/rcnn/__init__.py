"""The Mask R-CNN family: backbones, FPN, RPN, ROI heads, their assembly and the named architectures."""

from segmentoly.rcnn.mask_rcnn import OUTPUT_NAMES, MaskRCNN, MaskRCNNConfig

__all__ = ["OUTPUT_NAMES", "MaskRCNN", "MaskRCNNConfig"]
