"""The Predictor: one entry point from a BGR image to :class:`Detections`, for every backend."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from segmentoly import __version__
from segmentoly.data.transforms import FitMax, ResizeMode, padded_size, parse_resize
from segmentoly.inference.backends import Backend, OpenVINOBackend, PyTorchBackend
from segmentoly.inference.detections import Detections
from segmentoly.inference.postprocess import postprocess
from segmentoly.inference.preprocess import Prepared, preprocess

logger = logging.getLogger(__name__)

#: Detectron's test-time resize, the default when neither the caller nor the model says otherwise.
DEFAULT_RESIZE = FitMax(800, 1333)
BACKENDS = ("pytorch", "openvino")


def resize_mode(value: ResizeMode | Sequence[Any] | None, preprocessing: Mapping[str, Any] | None = None) -> ResizeMode:
    """A resize mode from an object, a ``("fit_max", 800, 1333)`` sequence, or the model's preprocessing."""
    if value is None:
        saved = (preprocessing or {}).get("resize")
        return parse_resize(saved[0], saved[1:]) if saved else DEFAULT_RESIZE
    if isinstance(value, (list, tuple)):
        return parse_resize(value[0], value[1:])
    return value


def resize_spec(mode: ResizeMode) -> list[Any]:
    """The ``[name, a, b]`` form of a resize mode, as checkpoints and exported models store it."""
    return [mode.name, *mode.values]


class Predictor:
    """Instance segmentation of BGR uint8 images (as ``cv2.imread`` gives them) with a backend.

    Build one with :meth:`from_checkpoint` (PyTorch, or OpenVINO through an IR exported and cached on the fly)
    or :meth:`from_openvino` (an IR or ONNX file). Calling it returns :class:`Detections` in the original
    image's coordinates with full-size boolean masks. Preprocessing (resize, padding) and postprocessing
    (rescaling, mask pasting) are the same code for every backend.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        class_names: Sequence[str],
        pixel_mean: Sequence[float],
        size_divisor: int,
        resize: ResizeMode | Sequence[Any] | None = None,
        score_threshold: float = 0.0,
        mask_threshold: float = 0.5,
    ) -> None:
        self.backend = backend
        self.class_names = tuple(class_names)
        self.pixel_mean = tuple(pixel_mean)
        self.size_divisor = size_divisor
        self.resize = resize_mode(resize)
        self.score_threshold = score_threshold
        self.mask_threshold = mask_threshold
        #: Seconds spent in each stage by the last call.
        self.last_timing: dict[str, float] = {}

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: str | Path,
        *,
        model: str | None = None,
        backend: str = "pytorch",
        resize: ResizeMode | Sequence[Any] | None = None,
        device: str | None = None,
        cache_dir: str | Path | None = None,
        **kwargs: Any,
    ) -> Predictor:
        """A predictor for a segmentoly checkpoint; ``model`` (an architecture name or class path) is checked
        against the checkpoint's. ``backend="openvino"`` exports the model to an IR first (cached by the
        checkpoint's content)."""
        from segmentoly.weights.checkpoint import build_model, read_checkpoint

        if backend not in BACKENDS:
            raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
        state = read_checkpoint(checkpoint)
        network = build_model(state, architecture=model, source=str(checkpoint))
        class_names = state.get("class_names") or [str(i) for i in range(network.config.num_classes)]
        preprocessing = state.get("preprocessing") or {}
        mode = resize_mode(resize, preprocessing)
        if backend == "pytorch":
            runner: Backend = PyTorchBackend(network, device or "cpu")
        else:
            xml = exported_ir(checkpoint, network, class_names, preprocessing, cache_dir=cache_dir)
            runner = OpenVINOBackend(xml, device=device or "CPU")
        return cls(
            runner,
            class_names=class_names,
            pixel_mean=network.config.pixel_mean,
            size_divisor=network.config.size_divisor,
            resize=mode,
            **kwargs,
        )

    @classmethod
    def from_openvino(
        cls,
        path: str | Path,
        *,
        resize: ResizeMode | Sequence[Any] | None = None,
        device: str = "CPU",
        class_names: Sequence[str] | None = None,
        precision: str = "f32",
        **kwargs: Any,
    ) -> Predictor:
        """A predictor for an exported model (``.xml`` IR or ``.onnx``) run by OpenVINO."""
        runner = OpenVINOBackend(path, device=device, precision=precision)
        metadata = runner.metadata
        names = class_names or metadata.get("class_names")
        if not names:
            raise ValueError(f"{path}: the model carries no class names; pass class_names (or --dataset)")
        return cls(
            runner,
            class_names=names,
            pixel_mean=metadata.get("pixel_mean", (0.0, 0.0, 0.0)),
            size_divisor=int(metadata.get("size_divisor", 32)),
            resize=resize_mode(resize, metadata.get("preprocessing")),
            **kwargs,
        )

    def input_shape(self, height: int, width: int) -> tuple[int, int]:
        """The padded network input size for an image of ``height x width``."""
        return padded_size(*self.resize.output_size(height, width), self.size_divisor)

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detections of several images. Backends that can (PyTorch) run images of the same padded input size
        as one batch: padding an image further would change the features near its border, so batching never
        changes a result."""
        if len(images) == 1 or not hasattr(self.backend, "run_batch"):
            return [self(image) for image in images]
        start = time.perf_counter()
        prepared = [self._preprocess(image) for image in images]
        after_pre = time.perf_counter()
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, p in enumerate(prepared):
            groups.setdefault(p.blob.shape, []).append(index)
        raws: list[dict[str, np.ndarray]] = [{} for _ in prepared]
        for shape, members in groups.items():
            blob = np.concatenate([prepared[i].blob for i in members])
            for i, raw in zip(members, self.backend.run_batch(blob, [shape[2:]] * len(members))):
                raws[i] = raw
        after_net = time.perf_counter()
        results = [self._postprocess(raw, p) for raw, p in zip(raws, prepared)]
        self._record_timing(start, after_pre, after_net)
        return results

    def __call__(self, image: np.ndarray) -> Detections:
        start = time.perf_counter()
        prepared = self._preprocess(image)
        after_pre = time.perf_counter()
        raw = self.backend(prepared.blob)
        after_net = time.perf_counter()
        detections = self._postprocess(raw, prepared)
        self._record_timing(start, after_pre, after_net)
        return detections

    def _preprocess(self, image: np.ndarray) -> Prepared:
        return preprocess(image, self.resize, pixel_mean=self.pixel_mean, size_divisor=self.size_divisor)

    def _postprocess(self, raw: dict[str, np.ndarray], prepared: Prepared) -> Detections:
        return postprocess(
            raw,
            prepared,
            class_names=self.class_names,
            score_threshold=self.score_threshold,
            mask_threshold=self.mask_threshold,
        )

    def _record_timing(self, start: float, after_pre: float, after_net: float) -> None:
        self.last_timing = {
            "preprocess": after_pre - start,
            "network": after_net - after_pre,
            "postprocess": time.perf_counter() - after_net,
        }


def cache_root(cache_dir: str | Path | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    base = os.environ.get("SEGMENTOLY_CACHE") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "segmentoly"


def exported_ir(
    checkpoint: str | Path,
    network: Any,
    class_names: Sequence[str],
    preprocessing: Mapping[str, Any],
    *,
    cache_dir: str | Path | None = None,
) -> Path:
    """The OpenVINO IR of a checkpoint's model, exported once and cached by the checkpoint's content."""
    from segmentoly.export import convert_to_ir, export_onnx, model_metadata

    digest = hashlib.sha256()
    with open(checkpoint, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    digest.update(__version__.encode())
    folder = cache_root(cache_dir) / "openvino" / digest.hexdigest()[:20]
    xml = folder / "model.xml"
    if xml.is_file() and xml.with_suffix(".bin").is_file():
        return xml
    logger.info("exporting %s to OpenVINO IR in %s (once)", checkpoint, folder)
    onnx_path = export_onnx(
        network, folder / "model.onnx", metadata=model_metadata(network, list(class_names), preprocessing)
    )
    convert_to_ir(onnx_path, folder / "model.partial.xml")
    os.replace(folder / "model.partial.bin", xml.with_suffix(".bin"))
    os.replace(folder / "model.partial.xml", xml)
    onnx_path.unlink(missing_ok=True)
    return xml
