"""Which of a practical's functions a test called, so that the grader can say "depends on
``add_bias``, which is wrong: fix ``add_bias`` first" instead of marking a correct function
wrong because it calls a wrong one.

:func:`record_calls` replaces, in a practical's module, each function to watch by a thin
wrapper that notes its name in :data:`CALLS` (and whether it raised) before returning what
the function returns. Functions of a module call each other through the module's globals,
and methods through their class, so calls between them are seen too. The grader empties
:data:`CALLS` before each test and reads it after.
"""
from __future__ import annotations

import functools
import types

# name -> "returned" or the name of the exception it raised (the last call that raised wins)
CALLS: dict[str, str] = {}


def _watch(function, name: str):
    @functools.wraps(function)
    def watched(*args, **kwargs):
        try:
            result = function(*args, **kwargs)
        except BaseException as exc:
            CALLS[name] = type(exc).__name__
            raise
        CALLS.setdefault(name, "returned")
        return result

    watched.__nn_watched__ = name
    return watched


def record_calls(module, names) -> list[str]:
    """Watch the functions ``names`` (``"step"``, ``"Layer.forward"``) of ``module``; names
    that are not plain Python functions there are left alone. Returns the names watched. A
    module is watched once; calling it again adds the names not watched yet."""
    watched = []
    for name in names:
        owner, _, attribute = name.rpartition(".")
        holder = module
        for part in filter(None, owner.split(".")):
            holder = getattr(holder, part, None)
        if holder is None:
            continue
        namespace = vars(holder) if isinstance(holder, (type, types.ModuleType)) else {}
        function = namespace.get(attribute)
        if not isinstance(function, types.FunctionType) or hasattr(function, "__nn_watched__"):
            continue
        setattr(holder, attribute, _watch(function, name))
        watched.append(name)
    return watched
