"""Run a single OpenVINO detection operator on numpy inputs.

Builds a one-node ONNX graph by hand (``onnx.helper``, independent of this package's export code) and runs it
with OpenVINO on the CPU. The tests use it as the independent reference for the PyTorch ops, the benchmarks to
time OpenVINO's kernels.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

DOMAIN = "org.openvinotoolkit"

#: Output count of each operator as OpenVINO's ONNX frontend defines it.
NUM_OUTPUTS = {
    "ExperimentalDetectronPriorGridGenerator": 1,
    "ExperimentalDetectronGenerateProposalsSingleImage": 2,
    "ExperimentalDetectronTopKROIs": 1,
    "ExperimentalDetectronROIFeatureExtractor": 2,
    "ExperimentalDetectronDetectionOutput": 3,
}


@lru_cache(maxsize=1)
def _core() -> Any:
    import openvino as ov

    return ov.Core()


class OpenVINOOp:
    """One operator with fixed attributes, compiled for the input shapes it is called with (cached)."""

    def __init__(self, op_type: str, **attrs: Any) -> None:
        self.op_type = op_type
        self.attrs = {k: int(v) if isinstance(v, bool) else v for k, v in attrs.items()}
        self._compiled: dict[tuple, Any] = {}

    def _model_bytes(self, shapes: Sequence[tuple[int, ...]]) -> bytes:
        from onnx import TensorProto, helper

        inputs = [f"input{i}" for i in range(len(shapes))]
        outputs = [f"output{i}" for i in range(NUM_OUTPUTS[self.op_type])]
        node = helper.make_node(self.op_type, inputs, outputs, domain=DOMAIN, **self.attrs)
        graph = helper.make_graph(
            [node],
            self.op_type,
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in zip(inputs, shapes)],
            [helper.make_tensor_value_info(n, TensorProto.UNDEFINED, None) for n in outputs],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, 1)])
        return model.SerializeToString()

    def compiled(self, shapes: Sequence[tuple[int, ...]]) -> Any:
        key = tuple(tuple(s) for s in shapes)
        if key not in self._compiled:
            core = _core()
            model = core.read_model(self._model_bytes(key), b"")
            self._compiled[key] = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        return self._compiled[key]

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        arrays = [np.ascontiguousarray(np.asarray(a, dtype=np.float32)) for a in inputs]
        compiled = self.compiled([a.shape for a in arrays])
        request = compiled.create_infer_request()
        request.infer(arrays)
        return [np.array(request.get_output_tensor(i).data) for i in range(len(compiled.outputs))]
