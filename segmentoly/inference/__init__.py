"""Inference: the Predictor, its backends, shared pre- and postprocessing, visualisation."""

from segmentoly.inference.detections import Detections

__all__ = ["Detections"]
