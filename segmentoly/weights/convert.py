"""Converting a downloaded Detectron / maskrcnn-benchmark file into a segmentoly checkpoint or backbone file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from segmentoly.config import ConfigError, merge
from segmentoly.data.splits import COCO_CLASS_NAMES
from segmentoly.rcnn.backbones.resnet import BackboneConfig, ResNet
from segmentoly.rcnn.mask_rcnn import MaskRCNNConfig
from segmentoly.rcnn.model_zoo import ZooModel, resolve_architecture
from segmentoly.weights import detectron, maskrcnn_benchmark
from segmentoly.weights.backbone import full_backbone_config, save_backbone
from segmentoly.weights.checkpoint import save_checkpoint
from segmentoly.weights.mapping import ConversionError, apply_rules
from segmentoly.weights.registry import FORMATS, KINDS, PretrainedModel

#: Raw file suffix -> the format a file with it is taken to be when none is given.
SUFFIX_FORMATS = {".pkl": "detectron_pkl", ".pth": "maskrcnn_benchmark_pth", ".pt": "maskrcnn_benchmark_pth"}


def guess_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIX_FORMATS:
        raise ValueError(f"{path}: cannot tell its format from the suffix; give it ({', '.join(FORMATS)})")
    return SUFFIX_FORMATS[suffix]


def adhoc_entry(
    architecture: str, source_path: str | Path, *, format: str | None = None, kind: str = "mask_rcnn"
) -> PretrainedModel:
    """A registry entry for a file the user already has, described by its architecture alone."""
    source_format = format or guess_format(source_path)
    if source_format not in FORMATS:
        raise ValueError(f"format: expected one of {list(FORMATS)}, got {source_format!r}")
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {list(KINDS)}, got {kind!r}")
    resolve_architecture(architecture)
    return PretrainedModel(
        name=Path(source_path).stem,
        kind=kind,
        format=source_format,
        url=Path(source_path).resolve().as_uri(),
        architecture=architecture,
        dataset="coco" if kind == "mask_rcnn" else "imagenet",
    )


def model_config(entry: PretrainedModel, num_classes: int) -> tuple[type[ZooModel], MaskRCNNConfig]:
    """The architecture class and the config the entry's weights have: the architecture's preset, the entry's
    ``config`` overrides, its pixel mean and std."""
    cls = resolve_architecture(entry.architecture)
    config = cls.default_config(num_classes)
    if entry.config:
        try:
            config = merge(config, dict(entry.config))
        except ConfigError as error:
            raise ConversionError(f"{entry.name}: config overrides: {error}") from error
        if config.num_classes != num_classes:
            raise ConversionError(
                f"{entry.name}: config says num_classes {config.num_classes}, the weights have {num_classes}"
            )
    return cls, replace(config, pixel_mean=tuple(entry.pixel_mean), pixel_std=tuple(entry.pixel_std))


def class_names(entry: PretrainedModel, num_classes: int) -> list[str]:
    """The entry's class names (COCO's for the coco data set), which must number ``num_classes``."""
    if entry.class_names is not None:
        names = list(entry.class_names)
    elif entry.dataset == "coco" and num_classes == len(COCO_CLASS_NAMES):
        names = list(COCO_CLASS_NAMES)
    else:
        names = ["background", *(f"class_{i}" for i in range(1, num_classes))]
    if len(names) != num_classes:
        raise ConversionError(
            f"{entry.name}: the weights classify {num_classes} classes (background included), "
            f"the registry names {len(names)}"
        )
    return names


def read_source(entry: PretrainedModel, path: str | Path) -> dict[str, Any]:
    """The named tensors of a raw file in the entry's format."""
    if entry.format == "detectron_pkl":
        return detectron.read_blobs(path)
    return maskrcnn_benchmark.read_state_dict(path)


@dataclass
class Conversion:
    """Foreign weights under segmentoly's names, checked against the architecture: every parameter and buffer
    present with its shape, nothing left over."""

    kind: str  # "mask_rcnn" or "backbone"
    config: MaskRCNNConfig | BackboneConfig  # a backbone's has all four stages
    state: dict[str, torch.Tensor]  # a backbone's keys are relative to the backbone module
    architecture: type[ZooModel] | None = None

    def model(self) -> ZooModel:
        """The Mask R-CNN holding the weights, to save: built on the meta device (no allocation, no random
        initialisation) and given the converted tensors as they are. Its non-persistent buffers (anchors, the
        pixel mean) are not materialised, so run the saved checkpoint (:func:`build_model`), not this object."""
        if self.architecture is None:
            raise ValueError("a backbone conversion has no Mask R-CNN model")
        with torch.device("meta"):
            model = self.architecture(self.config.num_classes, config=self.config)
        model.load_state_dict(self.state, strict=True, assign=True)
        return model


def convert_weights(entry: PretrainedModel, weights: Mapping[str, Any], *, where: str) -> Conversion:
    """Map foreign ``weights`` onto the entry's architecture (a :class:`ConversionError` names every tensor that
    is missing, left over or of another shape)."""
    if entry.kind == "backbone":
        if entry.format != "detectron_pkl":
            raise ConversionError(f"{where}: ImageNet backbones are converted from Detectron's .pkl format only")
        _, config = model_config(entry, 2)
        backbone = full_backbone_config(config.backbone)
        with torch.device("meta"):  # only the names and shapes are needed
            expected = ResNet(backbone).state_dict()
        rules = detectron.backbone_rules(backbone, channel_order=entry.channel_order)
        state = apply_rules(weights, rules, expected, ignored=detectron.is_ignored, where=where)
        return Conversion("backbone", backbone, state)

    if entry.format == "detectron_pkl":
        count = detectron.num_classes(weights, where)
        cls, config = model_config(entry, count)
        rules = detectron.model_rules(config, channel_order=entry.channel_order)
        ignored = detectron.is_ignored
    else:
        count = maskrcnn_benchmark.num_classes(weights, where)
        cls, config = model_config(entry, count)
        rules = maskrcnn_benchmark.model_rules(config, weights, channel_order=entry.channel_order)
        duplicates = maskrcnn_benchmark.shared_duplicates(config, weights, where)

        def ignored(name: str) -> bool:
            return name in duplicates or maskrcnn_benchmark.is_ignored(name)

    with torch.device("meta"):  # the names and shapes to fill; the weights are the file's
        expected = cls(count, config=config).state_dict()
    state = apply_rules(weights, rules, expected, ignored=ignored, where=where)
    return Conversion("mask_rcnn", config, state, cls)


def source_info(entry: PretrainedModel) -> dict[str, Any]:
    """What a converted file records about its origin (plain values only)."""
    return {
        "name": entry.name,
        "format": entry.format,
        "url": entry.url,
        "architecture": entry.architecture,
        "box_ap": entry.box_ap,
        "mask_ap": entry.mask_ap,
        "reference": entry.reference,
    }


def convert_entry(entry: PretrainedModel, source_path: str | Path, output_path: str | Path) -> Path:
    """Convert the raw file of a registry entry: a checkpoint for a Mask R-CNN, a backbone file for a backbone."""
    source_path = Path(source_path)
    where = f"{source_path} ({entry.name})"
    conversion = convert_weights(entry, read_source(entry, source_path), where=where)
    if conversion.kind == "backbone":
        return save_backbone(output_path, conversion.config, conversion.state, source=source_info(entry))
    names = class_names(entry, conversion.config.num_classes)
    return save_checkpoint(
        output_path,
        conversion.model(),
        class_names=names,
        preprocessing={"resize": list(entry.resize)},
        extra={"source": source_info(entry)},
    )


def convert(
    source_path: str | Path,
    output_path: str | Path,
    entry_or_architecture: PretrainedModel | str,
    format: str | None = None,
    *,
    kind: str = "mask_rcnn",
) -> Path:
    """Convert a Detectron ``.pkl`` or maskrcnn-benchmark ``.pth`` the user already has.

    ``entry_or_architecture`` is a registry entry, or an architecture (zoo name or class path) whose shapes the
    weights have; ``format`` defaults to the entry's, or is guessed from the suffix (``.pkl``: Detectron,
    ``.pth``: maskrcnn-benchmark); ``kind`` (``mask_rcnn`` or ``backbone``) is used with an architecture only.
    """
    if isinstance(entry_or_architecture, PretrainedModel):
        entry = entry_or_architecture
        if format is not None and format != entry.format:
            entry = replace(entry, format=format)
    else:
        entry = adhoc_entry(entry_or_architecture, source_path, format=format, kind=kind)
    return convert_entry(entry, source_path, output_path)
