"""Export: ONNX with OpenVINO's detection operators, OpenVINO IR, FLOP counts."""

from segmentoly.export.onnx_export import export_onnx, model_metadata
from segmentoly.export.openvino_ir import convert_to_ir, ir_metadata, onnx_metadata

__all__ = ["convert_to_ir", "export_onnx", "ir_metadata", "model_metadata", "onnx_metadata"]
