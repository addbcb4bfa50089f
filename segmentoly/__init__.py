"""segmentoly: Mask R-CNN instance segmentation, trained in PyTorch and deployed on CPU through OpenVINO."""

__version__ = "0.1.0"
