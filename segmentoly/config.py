"""Plain-dataclass configs: to and from dicts and YAML, and ``key.path=value`` overrides.

Configs are nested dataclasses whose fields have defaults reproducing the reference recipes. Loading checks
every key: a misspelt one is an error naming it, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override that does not fit the config's fields."""


def to_dict(config: Any) -> dict[str, Any]:
    """A dataclass as nested plain dicts, lists and scalars (what YAML and ``torch.load`` accept)."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(config)


def from_dict(cls: type[T], data: dict[str, Any], *, where: str = "") -> T:
    """Build the dataclass ``cls`` from nested dicts, converting lists to tuples where the field says so."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where or cls.__name__}: unknown key(s) {unknown}; known keys: {sorted(fields)}")
    values = {}
    for name, value in data.items():
        values[name] = _convert(hints[name], value, f"{where}.{name}" if where else name)
    return cls(**values)


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if errors else f"{where}: cannot convert {value!r}")
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where=where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            inner = args[0] if args else Any
            return tuple(_convert(inner, v, where) for v in value)
        if len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} values, got {list(value)}")
        return tuple(_convert(arg, v, where) for arg, v in zip(args, value))
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_convert(args[0] if args else Any, v, where) for v in value]
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def load_yaml(cls: type[T], path: str | Path) -> T:
    """Load a config of type ``cls`` from a YAML file (keys not given keep their defaults)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config: {error.strerror or error}") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    try:
        return merge(cls(), data)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from error


def save_yaml(config: Any, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


def merge(config: T, data: dict[str, Any], *, where: str = "") -> T:
    """A copy of ``config`` with the (possibly partial, nested) values of ``data`` applied.

    Keys must name fields; a field typed as a plain ``dict`` (free-form overrides) takes any keys.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(type(config))
    names = [f.name for f in dataclasses.fields(config)]
    changes = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        if key not in names:
            raise ConfigError(f"{path}: unknown key; known keys: {sorted(names)}")
        current = getattr(config, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            changes[key] = merge(current, value, where=path)
        elif isinstance(current, dict) and isinstance(value, dict):
            changes[key] = _merge_plain(current, value)
        else:
            changes[key] = _convert(hints[key], value, path)
    return dataclasses.replace(config, **changes)


def _merge_plain(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in update.items():
        if isinstance(result.get(key), dict) and isinstance(value, dict):
            result[key] = _merge_plain(result[key], value)
        else:
            result[key] = value
    return result


def apply_overrides(config: T, overrides: list[str]) -> T:
    """Apply ``a.b.c=value`` strings (values parsed as YAML: ``0.5``, ``[1, 2]``, ``true``)."""
    data: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. rpn.nms_threshold=0.6")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return merge(config, data)
