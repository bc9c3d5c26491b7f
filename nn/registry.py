"""Objects as JSON, ``{"type": class name, "config": constructor arguments}``, for saving.

A saved network names its layers and its loss by class name, so a name must mean one class:
a second class under a taken name is refused when it is defined (a user's ``class
Dense(Layer)`` cannot silently replace nn's ``Dense`` in :func:`nn.Network.load`), except a
class defined again by the same module (a notebook cell run twice), which replaces its old
self. Base classes that are not layers of their own (``ConvND``, ``PoolND``, ...) are
declared ``abstract`` and are never registered, so a file cannot ask for one.
"""
from __future__ import annotations

from .errors import ConfigError, ModelFileError


class Registry:
    """Classes of one kind (layers, losses) by name, so that a saved file can name them."""

    def __init__(self, kind: str):
        self.kind = kind
        self.types: dict[str, type] = {}

    def add(self, cls: type) -> None:
        """Register ``cls`` under its name; refuse a name that another class holds.

        The same class defined again (same qualified name, from the same module or from
        another import of the same file, as the course's grader does) replaces the old one;
        nn's own names are never given to a class from outside nn.
        """
        name = cls.__name__
        held = self.types.get(name)
        builtin = held is not None and held.__module__.split(".")[0] == "nn"
        same = held is not None and held.__qualname__ == cls.__qualname__ and (
            held.__module__ == cls.__module__ or not builtin)
        if held is not None and not same:
            raise ConfigError(
                f"a {self.kind} class named {name!r} already exists ({held.__module__}."
                f"{held.__qualname__}); saved networks name their {self.kind}s by class name, so "
                f"give yours another name (e.g. My{name})")
        self.types[name] = cls

    def to_dict(self, obj) -> dict:
        """``{"type": ..., "config": ...}``: the class name and ``obj.config()``."""
        return {"type": type(obj).__name__, "config": obj.config()}

    def from_dict(self, spec):
        """A new object built from :meth:`to_dict`'s output (a :class:`ModelFileError` if not)."""
        if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
            raise ModelFileError(f"a {self.kind} record must be an object with a 'type' name and "
                                 f"a 'config' object, got {_short(spec)}")
        cls = self.types.get(spec["type"])
        if cls is None:
            raise ModelFileError(f"unknown {self.kind} type {spec['type']!r}; known: "
                                 f"{', '.join(sorted(self.types))}")
        config = spec.get("config", {})
        if not isinstance(config, dict):
            raise ModelFileError(f"the config of {self.kind} {spec['type']!r} must be an object "
                                 f"of constructor arguments, got {_short(config)}")
        # containers (Residual, Concat) rebuild the objects inside them from their own dicts
        build = getattr(cls, "from_config", None)
        try:
            return build(config) if build is not None else cls(**config)
        except ModelFileError:
            raise
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"{self.kind} {spec['type']!r} cannot be built from the config "
                                 f"{_short(config)}: {exc}") from exc


def _short(value, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
