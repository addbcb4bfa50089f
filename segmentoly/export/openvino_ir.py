"""Convert an exported ONNX model to OpenVINO IR with OpenVINO's own converter (``openvino.convert_model``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from segmentoly.export.onnx_export import METADATA_KEY

logger = logging.getLogger(__name__)


def onnx_metadata(path: str | Path) -> dict[str, Any]:
    """The segmentoly metadata of an exported ONNX file (empty when it has none)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return json.loads(prop.value)
    return {}


def convert_to_ir(onnx_path: str | Path, xml_path: str | Path, *, compress_to_fp16: bool = False) -> Path:
    """Write ``xml_path`` (and the ``.bin`` beside it) from an ONNX file.

    Weights stay FP32 unless ``compress_to_fp16``. The model's metadata (class names, padding, preprocessing)
    travels in the IR's runtime info, so an IR is self-contained.
    """
    import openvino as ov

    xml_path = Path(xml_path)
    if xml_path.suffix != ".xml":
        raise ValueError(f"{xml_path}: an OpenVINO IR path must end in .xml")
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    model = ov.convert_model(str(onnx_path))
    metadata = onnx_metadata(onnx_path)
    if metadata:
        model.set_rt_info(json.dumps(metadata), [METADATA_KEY])
    ov.save_model(model, str(xml_path), compress_to_fp16=compress_to_fp16)
    logger.debug("wrote %s", xml_path)
    return xml_path


def ir_metadata(model: Any) -> dict[str, Any]:
    """The segmentoly metadata of an ``openvino.Model`` read from an IR (empty when it has none)."""
    if model.has_rt_info([METADATA_KEY]):
        return json.loads(model.get_rt_info([METADATA_KEY]).astype(str))
    return {}
