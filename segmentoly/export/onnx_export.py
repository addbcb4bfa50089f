"""Export a Mask R-CNN to ONNX with OpenVINO's detection operators."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from segmentoly.rcnn.mask_rcnn import OUTPUT_NAMES, MaskRCNN

logger = logging.getLogger(__name__)

#: Key of the metadata (class names, preprocessing) stored in exported ONNX files and OpenVINO IRs.
METADATA_KEY = "segmentoly"

# Input sizes the dynamic export accepts, in multiples of the size divisor: 64 px up to 8192 px.
MIN_BLOCKS, MAX_BLOCKS = 2, 256


def model_metadata(model: MaskRCNN, class_names: list[str], preprocessing: Mapping[str, Any]) -> dict[str, Any]:
    """What a runtime needs besides the graph: class names, the padding value and divisor, the resize mode."""
    return {
        "class_names": list(class_names),
        "pixel_mean": list(model.config.pixel_mean),
        "size_divisor": model.config.size_divisor,
        "preprocessing": dict(preprocessing),
    }


def export_onnx(
    model: MaskRCNN,
    path: str | Path,
    *,
    metadata: Mapping[str, Any],
    input_size: tuple[int, int] | None = None,
    verbose: bool = False,
) -> Path:
    """Write ``model`` as an ONNX file whose input ``image`` is ``[1, 3, H, W]`` and outputs are
    ``boxes, scores, classes, masks``. ``H`` and ``W`` are dynamic (any multiples of the size divisor)
    unless ``input_size`` fixes them.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    divisor = model.config.size_divisor
    if input_size is not None:
        height, width = input_size
        if height % divisor or width % divisor:
            raise ValueError(f"input_size: {height}x{width} is not a multiple of the model's size divisor {divisor}")
        dynamic_shapes = None
    else:
        height, width = 8 * divisor, 10 * divisor
        blocks_h = torch.export.Dim("height_blocks", min=MIN_BLOCKS, max=MAX_BLOCKS)
        blocks_w = torch.export.Dim("width_blocks", min=MIN_BLOCKS, max=MAX_BLOCKS)
        dynamic_shapes = {"images": {2: divisor * blocks_h, 3: divisor * blocks_w}}
    example = torch.zeros(1, 3, height, width)
    # The exporter warns that torchvision's ops are unavailable (we have our own) and reports its optimiser's
    # passes; none of it is actionable for a user unless they ask for it.
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    previous_level = registration.level
    try:
        with warnings.catch_warnings(), torch.no_grad():
            if not verbose:
                warnings.simplefilter("ignore")
                registration.setLevel(logging.ERROR)
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                input_names=["image"],
                output_names=list(OUTPUT_NAMES),
                dynamic_shapes=dynamic_shapes,
                verbose=verbose,
                optimize=True,
            )
    finally:
        registration.setLevel(previous_level)
    program.model.metadata_props[METADATA_KEY] = json.dumps(dict(metadata))
    program.save(str(path))
    logger.debug("wrote %s", path)
    return path
