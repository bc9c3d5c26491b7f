"""Objects as JSON, ``{"type": class name, "config": constructor arguments}``, for saving."""
from __future__ import annotations


class Registry:
    """Classes of one kind (layers, losses) by name, so that a saved file can name them."""

    def __init__(self, kind: str):
        self.kind = kind
        self.types: dict[str, type] = {}

    def add(self, cls: type) -> None:
        self.types[cls.__name__] = cls

    def to_dict(self, obj) -> dict:
        """``{"type": ..., "config": ...}``: the class name and ``obj.config()``."""
        return {"type": type(obj).__name__, "config": obj.config()}

    def from_dict(self, spec: dict):
        """A new object built from :meth:`to_dict`'s output."""
        try:
            cls = self.types[spec["type"]]
        except KeyError:
            raise ValueError(f"unknown {self.kind} type {spec.get('type')!r}; known: "
                             f"{', '.join(sorted(self.types))}") from None
        config = spec.get("config", {})
        # containers (Residual, Concat) rebuild the objects inside them from their own dicts
        build = getattr(cls, "from_config", None)
        return build(config) if build is not None else cls(**config)
