"""Backends run the network only: a padded ``[1, 3, H, W]`` blob in, the raw outputs out.

Pre- and postprocessing live elsewhere and are shared, so two backends given the same blob must give the
same outputs (to float rounding); that is the parity the tests check.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from segmentoly.export.openvino_ir import ir_metadata, onnx_metadata
from segmentoly.rcnn.mask_rcnn import OUTPUT_NAMES, MaskRCNN


class ModelContractError(ValueError):
    """A model file whose inputs or outputs are not those of an exported segmentoly model."""


class Backend(Protocol):
    name: str

    def __call__(self, blob: np.ndarray) -> dict[str, np.ndarray]: ...


class PyTorchBackend:
    """Runs a :class:`MaskRCNN` in eval mode on a torch device."""

    name = "pytorch"

    def __init__(self, model: MaskRCNN, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)

    def __call__(self, blob: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            outputs = self.model(torch.from_numpy(blob).to(self.device))
        return {name: value.cpu().numpy() for name, value in zip(OUTPUT_NAMES, outputs)}

    def run_batch(self, blob: np.ndarray, sizes: list[tuple[int, int]]) -> list[dict[str, np.ndarray]]:
        """Raw outputs of every image of a padded batch (see :meth:`MaskRCNN.detect_batch`)."""
        with torch.inference_mode():
            batch = self.model.detect_batch(torch.from_numpy(blob).to(self.device), sizes)
        return [{name: value.cpu().numpy() for name, value in zip(OUTPUT_NAMES, outputs)} for outputs in batch]


class OpenVINOBackend:
    """Runs an exported model (OpenVINO IR ``.xml`` or ``.onnx``) with OpenVINO.

    An exported model has a dynamic input size. OpenVINO runs it faster when it is reshaped to the actual size
    (about 30 % at 800x1344 on a 2-core CPU, see ``benchmarks/latency.py``), and compiling a shape costs about
    a tenth of one inference; so by default each input size gets its own compiled model, the last
    ``cache_size`` of them kept. ``dynamic=True`` compiles the dynamic model once instead.

    Inference runs in FP32 (``precision``): some CPUs default OpenVINO to bf16, which would break parity.
    """

    name = "openvino"

    def __init__(
        self,
        path: str | Path,
        *,
        device: str = "CPU",
        precision: str = "f32",
        dynamic: bool = False,
        cache_size: int = 8,
        num_threads: int | None = None,
    ) -> None:
        import openvino as ov

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: model file not found")
        if self.path.suffix == ".bin":
            raise ModelContractError(f"{self.path}: give the IR's .xml file (the .bin beside it holds the weights)")
        self.core = ov.Core()
        try:
            self.model = self.core.read_model(str(self.path))
        except Exception as error:  # OpenVINO raises RuntimeError subclasses with long C++ traces
            raise ModelContractError(f"{self.path}: OpenVINO cannot read it: {str(error).splitlines()[0]}") from error
        self.metadata = ir_metadata(self.model) or (onnx_metadata(self.path) if self.path.suffix == ".onnx" else {})
        self._check_contract()
        self.device = device
        self.config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
        if num_threads:
            self.config["INFERENCE_NUM_THREADS"] = num_threads
        self.static = self.model.inputs[0].get_partial_shape().is_static
        self.dynamic = dynamic or self.static
        self.cache_size = cache_size
        self._compiled: OrderedDict[tuple[int, ...], Any] = OrderedDict()

    def _check_contract(self) -> None:
        inputs = self.model.inputs
        if len(inputs) != 1:
            raise ModelContractError(f"{self.path}: expected one input (the image), found {len(inputs)}")
        shape = inputs[0].get_partial_shape()
        if shape.rank.is_dynamic or shape.rank.get_length() != 4 or shape[1].is_dynamic or shape[1].get_length() != 3:
            raise ModelContractError(f"{self.path}: expected a [1, 3, H, W] image input, found {shape}")
        names = {name for output in self.model.outputs for name in output.get_names()}
        missing = [name for name in OUTPUT_NAMES if name not in names]
        if missing:
            raise ModelContractError(
                f"{self.path}: missing output(s) {missing}; a segmentoly model has {list(OUTPUT_NAMES)}, "
                f"this one has {sorted(names)}"
            )

    def input_shape(self) -> tuple[int, ...] | None:
        """The fixed input shape of a static model, or None."""
        if not self.static:
            return None
        return tuple(self.model.inputs[0].get_shape())

    def compiled_for(self, shape: tuple[int, ...]) -> Any:
        key = () if self.dynamic else shape
        if key in self._compiled:
            self._compiled.move_to_end(key)
            return self._compiled[key]
        model = self.model
        if not self.dynamic:
            model = self.model.clone()
            model.reshape({model.inputs[0]: list(shape)})
        compiled = self.core.compile_model(model, self.device, self.config)
        self._compiled[key] = compiled
        while len(self._compiled) > self.cache_size:
            self._compiled.popitem(last=False)
        return compiled

    def __call__(self, blob: np.ndarray) -> dict[str, np.ndarray]:
        fixed = self.input_shape()
        if fixed is not None and tuple(blob.shape) != fixed:
            raise ModelContractError(
                f"{self.path}: this model was exported for inputs of shape {list(fixed)}, got {list(blob.shape)}; "
                "export it without --input_size for a dynamic size, or resize to that size (--size H W)"
            )
        compiled = self.compiled_for(tuple(blob.shape))
        result = compiled(blob)
        return {name: np.asarray(result[name]) for name in OUTPUT_NAMES}
