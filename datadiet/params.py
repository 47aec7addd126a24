"""The component base: constructor parameters are the config.

Constructors only store their arguments. ``validate_params()`` checks them against the
constructor's type annotations and the class's ``_constraints`` before any compute, with
messages in the scikit-learn style::

    The 'max_length' parameter of ProxyLoss must be an int >= 1. Got 0 instead.
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

from .errors import ConfigError


@dataclass(frozen=True)
class Interval:
    """A numeric range constraint; ``kind`` is int or float, bounds inclusive unless said."""

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            return False
        return True

    def describe(self) -> str:
        name = "an int" if self.kind is int else "a float"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high}")
        return f"{name} {' and '.join(parts)}".strip()


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "None"
    origin = get_origin(tp)
    if origin is Literal:
        return " or ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is not None:
        return getattr(origin, "__name__", str(origin))
    return getattr(tp, "__name__", str(tp))


def type_matches(value: Any, tp: Any) -> bool:
    """Whether ``value`` fits annotation ``tp`` (shallow for containers)."""
    if tp is Any or tp is inspect.Parameter.empty:
        return True
    if tp is type(None):
        return value is None
    origin = get_origin(tp)
    if origin is Literal:
        return value in get_args(tp)
    if origin in (Union, types.UnionType):
        return any(type_matches(value, a) for a in get_args(tp))
    if origin in (list, tuple, typing.Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        args = [a for a in get_args(tp) if a is not Ellipsis]
        return not args or all(type_matches(v, args[0]) for v in value)
    if origin in (dict, typing.Mapping):
        return isinstance(value, dict)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


class Component:
    """Base of scorers, selectors and readers: parameters in, validated, round-trippable.

    Subclasses declare parameters as keyword arguments of ``__init__`` with annotations and
    store each under the same attribute name. ``_constraints`` maps a parameter to an
    :class:`Interval` or a callable returning an error fragment (or None when fine).
    """

    registry_name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    _constraints: ClassVar[dict[str, Any]] = {}

    @classmethod
    def _signature(cls) -> dict[str, inspect.Parameter]:
        params = inspect.signature(cls.__init__).parameters
        return {
            name: p
            for name, p in params.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }

    @classmethod
    def param_names(cls) -> list[str]:
        return list(cls._signature())

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._signature()}

    def non_default_params(self) -> dict[str, Any]:
        out = {}
        for name, p in self._signature().items():
            value = getattr(self, name)
            if p.default is inspect.Parameter.empty or value != p.default:
                out[name] = value
        return out

    @classmethod
    def from_config(cls, config: dict[str, Any], where: str = ""):
        """Build from a dict, naming unknown keys before calling the constructor."""
        known = cls._signature()
        label = where or cls.__name__
        unknown = sorted(set(config) - set(known))
        if unknown:
            raise ConfigError(
                f"{label}: unknown key {unknown[0]!r} for {cls.registry_name or cls.__name__}; "
                f"expected one of: {', '.join(known) or '(no parameters)'}"
            )
        missing = [n for n, p in known.items() if p.default is inspect.Parameter.empty and n not in config]
        if missing:
            raise ConfigError(f"{label}: missing required key {missing[0]!r}")
        obj = cls(**config)
        obj.validate_params(where=label)
        return obj

    def validate_params(self, where: str = "") -> None:
        hints = typing.get_type_hints(type(self).__init__)
        label = type(self).__name__
        prefix = f"{where}: " if where and where != label else ""
        for name in self._signature():
            value = getattr(self, name)
            tp = hints.get(name, Any)
            if not type_matches(value, tp):
                raise ConfigError(
                    f"{prefix}The {name!r} parameter of {label} must be {_type_name(tp)}. "
                    f"Got {value!r} instead."
                )
            rule = self._constraints.get(name)
            if rule is None or value is None:
                continue
            if isinstance(rule, Interval):
                if not rule.accepts(value):
                    raise ConfigError(
                        f"{prefix}The {name!r} parameter of {label} must be {rule.describe()}. "
                        f"Got {value!r} instead."
                    )
            else:
                problem = rule(value)
                if problem:
                    raise ConfigError(
                        f"{prefix}The {name!r} parameter of {label} {problem}. Got {value!r} instead."
                    )

    def to_config(self) -> dict[str, Any]:
        out = {"type": self.registry_name} if self.registry_name else {}
        out.update(self.non_default_params())
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.non_default_params().items())
        return f"{type(self).__name__}({args})"
