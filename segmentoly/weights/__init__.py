"""Checkpoints: the project's own format, and converters of Detectron and maskrcnn-benchmark weights."""

from segmentoly.weights.checkpoint import CheckpointError, build_model, read_checkpoint, save_checkpoint

__all__ = ["CheckpointError", "build_model", "read_checkpoint", "save_checkpoint"]
