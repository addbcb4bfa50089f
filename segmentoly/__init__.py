"""segmentoly: Mask R-CNN instance segmentation, trained in PyTorch and deployed on CPU through OpenVINO."""

__version__ = "0.1.0"

from segmentoly.inference.detections import Detections  # noqa: E402
from segmentoly.inference.predictor import Predictor  # noqa: E402

__all__ = ["Detections", "Predictor", "__version__"]
