"""The registry of pretrained models: where each one is published, what it is, and how well it does.

The bundled registry (``pretrained.yaml`` beside this module) lists the models of the original tool: the
Detectron and maskrcnn-benchmark COCO Mask R-CNNs and the ImageNet backbones they were trained from. A user's
own YAML file of the same form extends it (``segmentoly download --model_zoo my_models.yaml``; an entry of the
same name replaces the bundled one). Every entry is checked when the file is read; a mistake is reported with
the file and the entry it is in.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

#: The registry shipped with the package.
DEFAULT_REGISTRY = Path(__file__).with_name("pretrained.yaml")

KINDS = ("mask_rcnn", "backbone")
#: Source format -> (folder of the source project in the output tree, file suffix of the raw download).
FORMATS = {"detectron_pkl": ("detectron", ".pkl"), "maskrcnn_benchmark_pth": ("maskrcnn_benchmark", ".pth")}
CHANNEL_ORDERS = ("bgr", "rgb")
URL_SCHEMES = ("http", "https", "file")
RESIZE_MODES = ("fit_max", "fit_window", "size")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_HEX = {"md5": 32, "sha256": 64}


class RegistryError(ValueError):
    """A registry file that cannot be read or has an invalid entry."""


@dataclass(frozen=True)
class PretrainedModel:
    """One published model and what is needed to download, convert and run it."""

    name: str
    kind: str  # "mask_rcnn" (a whole COCO model) or "backbone" (ImageNet weights for --load_backbone)
    format: str  # "detectron_pkl" or "maskrcnn_benchmark_pth"
    url: str
    architecture: str  # zoo name (or class path) whose shapes the weights have; for a backbone, its backbone
    dataset: str = ""  # "coco" or "imagenet" by default (by kind); names the output folder
    class_names: tuple[str, ...] | None = None  # default: COCO's 81 (background first) for the coco data set
    resize: tuple[Any, ...] = ("fit_max", 800, 1333)  # test-time resize the published AP was measured with
    pixel_mean: tuple[float, float, float] = (102.9801, 115.9465, 122.7717)  # BGR, subtracted in the model
    pixel_std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    channel_order: str = "bgr"  # "rgb": trained on RGB input; the first convolution is flipped to read BGR
    box_ap: float | None = None  # published COCO box AP (minival / val2017)
    mask_ap: float | None = None
    size: int | None = None  # bytes of the download, where known
    md5: str | None = None
    sha256: str | None = None
    default: bool = True  # part of `segmentoly download` with no --models (the original tool's set)
    config: Mapping[str, Any] = field(default_factory=dict)  # overrides of the architecture's config
    description: str = ""
    reference: str = ""  # where the URL and the APs were published

    @property
    def source(self) -> str:
        """The project the weights come from: ``detectron`` or ``maskrcnn_benchmark``."""
        return FORMATS[self.format][0]

    @property
    def suffix(self) -> str:
        return FORMATS[self.format][1]

    @property
    def key(self) -> str:
        """``dataset/source/name``: unique in a registry, and the model's place in the output folders."""
        return f"{self.dataset}/{self.source}/{self.name}"

    @property
    def file_name(self) -> str:
        """Name of the raw download (the URL's last part is often just ``model_final.pkl``)."""
        return self.name + self.suffix


_FIELDS = {f.name: f for f in dataclasses.fields(PretrainedModel)}
_REQUIRED = [
    f.name
    for f in dataclasses.fields(PretrainedModel)
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
]


def load_registry(path: str | Path | None = None) -> dict[str, PretrainedModel]:
    """The models of a registry file (the bundled one by default), by :attr:`PretrainedModel.key`, in file
    order. A name may repeat across sources or data sets (Detectron and maskrcnn-benchmark both published an
    X-101-32x8d-FPN 1x), not within one."""
    path = Path(path) if path is not None else DEFAULT_REGISTRY
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise RegistryError(f"{path}: registry file not found") from None
    except OSError as error:
        raise RegistryError(f"{path}: cannot read the registry: {error.strerror or error}") from error
    except yaml.YAMLError as error:
        raise RegistryError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise RegistryError(f"{path}: expected a mapping with a 'models' list")
    unknown = sorted(set(data) - {"models", "version"})
    if unknown:
        raise RegistryError(f"{path}: unknown top-level key(s) {unknown}; expected 'models' (and 'version')")
    models: dict[str, PretrainedModel] = {}
    for index, item in enumerate(data["models"]):
        label = f"entry {index + 1}" + (f" ({item['name']})" if isinstance(item, dict) and "name" in item else "")
        try:
            model = parse_entry(item)
        except RegistryError as error:
            raise RegistryError(f"{path}: {label}: {error}") from None
        if model.key in models:
            raise RegistryError(f"{path}: {label}: {model.key!r} is listed twice")
        models[model.key] = model
    return models


def parse_entry(item: Any) -> PretrainedModel:
    """One registry entry from its YAML mapping, checked field by field."""
    if not isinstance(item, dict):
        raise RegistryError(f"expected a mapping, got {item!r}")
    unknown = sorted(set(item) - set(_FIELDS))
    if unknown:
        raise RegistryError(f"unknown key(s) {unknown}; known keys: {sorted(_FIELDS)}")
    missing = [name for name in _REQUIRED if item.get(name) in (None, "")]
    if missing:
        raise RegistryError(f"missing required key(s) {missing}")
    values = dict(item)

    def text(key: str) -> str:
        if not isinstance(values[key], str):
            raise RegistryError(f"{key}: expected a string, got {values[key]!r}")
        return values[key]

    def choice(key: str, allowed: Iterable[str]) -> str:
        allowed = tuple(allowed)
        if text(key) not in allowed:
            raise RegistryError(f"{key}: expected one of {list(allowed)}, got {values[key]!r}")
        return values[key]

    def number(key: str, kind: type = float, *, positive: bool = False) -> float | int | None:
        value = values.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and isinstance(value, float)):
            raise RegistryError(f"{key}: expected {'an integer' if kind is int else 'a number'} or null, got {value!r}")
        if positive and value <= 0:
            raise RegistryError(f"{key}: expected a positive number, got {value!r}")
        return kind(value)

    def triple(key: str) -> tuple[float, float, float] | None:
        value = values.get(key)
        if value is None:
            return None
        if (
            not isinstance(value, (list, tuple))
            or len(value) != 3
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            raise RegistryError(f"{key}: expected three numbers (B, G, R), got {value!r}")
        return tuple(float(v) for v in value)

    name = text("name")
    if not _NAME.fullmatch(name):
        raise RegistryError(f"name: {name!r} must be letters, digits, '_', '-' or '.' (it names files)")
    kind = choice("kind", KINDS)
    source_format = choice("format", FORMATS)
    url = text("url")
    if urlparse(url).scheme not in URL_SCHEMES:
        raise RegistryError(f"url: {url!r} is not an {'/'.join(URL_SCHEMES)} URL")
    architecture = text("architecture")
    _check_architecture(architecture)

    fields: dict[str, Any] = dict(name=name, kind=kind, format=source_format, url=url, architecture=architecture)
    fields["dataset"] = text("dataset") if values.get("dataset") else ("coco" if kind == "mask_rcnn" else "imagenet")
    if not _NAME.fullmatch(fields["dataset"]):
        raise RegistryError(f"dataset: {fields['dataset']!r} must be letters, digits, '_', '-' or '.'")
    if values.get("class_names") is not None:
        names = values["class_names"]
        if not isinstance(names, list) or len(names) < 2 or not all(isinstance(n, str) for n in names):
            raise RegistryError("class_names: expected a list of at least two names, the background first")
        fields["class_names"] = tuple(names)
    if values.get("resize") is not None:
        resize = values["resize"]
        if (
            not isinstance(resize, list)
            or len(resize) != 3
            or resize[0] not in RESIZE_MODES
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in resize[1:])
        ):
            raise RegistryError(f"resize: expected [MODE, A, B] with MODE one of {list(RESIZE_MODES)}, got {resize!r}")
        fields["resize"] = tuple(resize)
    for key in ("pixel_mean", "pixel_std"):
        value = triple(key)
        if value is not None:
            fields[key] = value
    if values.get("channel_order") is not None:
        fields["channel_order"] = choice("channel_order", CHANNEL_ORDERS)
    fields["box_ap"] = number("box_ap")
    fields["mask_ap"] = number("mask_ap")
    fields["size"] = number("size", int, positive=True)
    for key, length in _HEX.items():
        value = values.get(key)
        if value is not None:
            if not isinstance(value, str) or not re.fullmatch(f"[0-9a-fA-F]{{{length}}}", value):
                raise RegistryError(f"{key}: expected {length} hexadecimal digits or null, got {value!r}")
            fields[key] = value.lower()
    if values.get("default") is not None:
        if not isinstance(values["default"], bool):
            raise RegistryError(f"default: expected true or false, got {values['default']!r}")
        fields["default"] = values["default"]
    if values.get("config") is not None:
        if not isinstance(values["config"], dict):
            raise RegistryError(f"config: expected a mapping of config overrides, got {values['config']!r}")
        _check_overrides(architecture, values["config"])
        fields["config"] = values["config"]
    for key in ("description", "reference"):
        if values.get(key) is not None:
            fields[key] = text(key)
    return PretrainedModel(**fields)


def _check_architecture(architecture: str) -> None:
    from segmentoly.rcnn.model_zoo import resolve_architecture

    try:
        resolve_architecture(architecture)
    except ValueError as error:
        raise RegistryError(f"architecture: {error}") from None


def _check_overrides(architecture: str, overrides: dict[str, Any]) -> None:
    from segmentoly.config import ConfigError, merge
    from segmentoly.rcnn.model_zoo import resolve_architecture

    try:
        merge(resolve_architecture(architecture).default_config(), overrides)
    except ConfigError as error:
        raise RegistryError(f"config: {error}") from None


def select(
    models: Mapping[str, PretrainedModel], names: Iterable[str] | None, *, everything: bool = False
) -> list[PretrainedModel]:
    """The entries named, in the order given, or without names the default ones (all with ``everything``).

    A name is an entry's name when that is unique, else ``source/name`` or ``dataset/source/name``.
    """
    if not names:
        return [m for m in models.values() if everything or m.default]
    chosen: dict[str, PretrainedModel] = {}
    for name in names:
        matches = [key for key in models if key == name or key.endswith("/" + name)]
        if not matches:
            raise RegistryError(f"unknown model {name!r}; known models: {', '.join(describe_keys(models))}")
        if len(matches) > 1:
            raise RegistryError(f"model name {name!r} is ambiguous: say which of {', '.join(matches)}")
        chosen[matches[0]] = models[matches[0]]
    return list(chosen.values())


def describe_keys(models: Mapping[str, PretrainedModel]) -> list[str]:
    """The shortest unambiguous name of every entry."""
    names = [m.name for m in models.values()]
    result = []
    for key, model in models.items():
        if names.count(model.name) == 1:
            result.append(model.name)
        elif [m.key.split("/", 1)[1] for m in models.values()].count(key.split("/", 1)[1]) == 1:
            result.append(key.split("/", 1)[1])
        else:
            result.append(key)
    return result
