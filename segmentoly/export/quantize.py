"""INT8 post-training quantisation of an OpenVINO IR with NNCF, calibrated on COCO-format images.

The calibration images go through the very preprocessing of inference (resize, padding with the model's mean),
so the statistics are those the deployed model sees. The detection operators themselves are not quantised
(NNCF quantises convolutions and matrix products). Layers whose outputs are read as precise numbers rather
than ranked can be kept in floating point: the box regression (its deltas become coordinates) and the mask
logits (thresholded at 0.5 after pasting); :func:`precise_layers` finds them in the graph.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from segmentoly.data.coco import CocoDataset
from segmentoly.data.transforms import ResizeMode
from segmentoly.export.openvino_ir import METADATA_KEY, ir_metadata
from segmentoly.inference.preprocess import preprocess

logger = logging.getLogger(__name__)

DETECTION_OUTPUT = "ExperimentalDetectronDetectionOutput"
#: Operations that pass values through unchanged in meaning, walked over when looking for the layer that
#: produced a value.
PASS_THROUGH = {
    "Add",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Convert",
    "Transpose",
    "Concat",
    "Gather",
    "GatherElements",
    "Sigmoid",
    "Multiply",
    "Subtract",
}


class CalibrationError(ValueError):
    """A calibration set that is empty or does not fit the model."""


def _weighted_producer(value: Any, kinds: set[str]) -> Any | None:
    """The nearest operation of ``kinds`` that ``value`` comes from, walking back through pass-through ops."""
    frontier, seen = [value.get_node()], set()
    while frontier:
        node = frontier.pop(0)
        if node.get_friendly_name() in seen:
            continue
        seen.add(node.get_friendly_name())
        if node.get_type_name() in kinds:
            return node
        if node.get_type_name() in PASS_THROUGH:
            frontier.extend(v.get_node() for v in node.input_values())
    return None


def precise_layers(model: Any) -> list[str]:
    """Names of the box-regression and mask-logit layers of an exported model (to keep in floating point)."""
    found = []
    for op in model.get_ordered_ops():
        if op.get_type_name() == DETECTION_OUTPUT:
            found.append(_weighted_producer(op.input_value(1), {"MatMul"}))  # input 1: the box deltas
    for output in model.outputs:
        if "masks" in output.get_names():
            found.append(_weighted_producer(output.get_node().input_value(0), {"Convolution"}))
    return [node.get_friendly_name() for node in found if node is not None]


def calibration_images(dataset: CocoDataset, count: int, seed: int = 0) -> list[int]:
    """``count`` image indices drawn without replacement (all of them for a smaller dataset)."""
    if len(dataset) == 0:
        raise CalibrationError(f"{dataset.annotation_file}: the calibration set has no images")
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(len(dataset), size=min(count, len(dataset)), replace=False).tolist())


def quantize_ir(
    model_path: str | Path,
    output_path: str | Path,
    dataset: CocoDataset,
    *,
    resize: ResizeMode,
    subset_size: int = 300,
    keep_precise_layers: bool = True,
    seed: int = 0,
) -> Path:
    """Quantise the IR (or ONNX file) at ``model_path`` to INT8 and save it at ``output_path``.

    The model's metadata (class names, padding, preprocessing) is kept. With ``keep_precise_layers`` the layers
    :func:`precise_layers` names stay in floating point.
    """
    import nncf
    import openvino as ov

    output_path = Path(output_path)
    if output_path.suffix != ".xml":
        raise ValueError(f"{output_path}: an OpenVINO IR path must end in .xml")
    core = ov.Core()
    model = core.read_model(str(model_path))
    metadata = ir_metadata(model)
    class_names = metadata.get("class_names")
    if class_names and len(class_names) != dataset.num_classes + 1:
        raise CalibrationError(
            f"{dataset.annotation_file}: has {dataset.num_classes} classes, but {model_path} detects "
            f"{len(class_names) - 1}: calibrate on data of the model's own kind"
        )
    pixel_mean = metadata.get("pixel_mean", (0.0, 0.0, 0.0))
    divisor = int(metadata.get("size_divisor", 32))
    indices = calibration_images(dataset, subset_size, seed)

    def blob(index: int) -> np.ndarray:
        return preprocess(dataset.read_image(index), resize, pixel_mean=pixel_mean, size_divisor=divisor).blob

    ignored = None
    if keep_precise_layers:
        names = precise_layers(model)
        logger.info("kept in floating point: %s", ", ".join(names) or "nothing found")
        ignored = nncf.IgnoredScope(names=names, validate=False) if names else None
    quantized = nncf.quantize(
        model,
        nncf.Dataset(indices, blob),
        subset_size=len(indices),
        preset=nncf.QuantizationPreset.PERFORMANCE,
        ignored_scope=ignored,
    )
    if metadata:
        quantized.set_rt_info(json.dumps(metadata), [METADATA_KEY])
    output_path.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(output_path), compress_to_fp16=False)
    return output_path
