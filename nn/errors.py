"""The exceptions nn raises, one family per kind of mistake.

Every error a user can cause (a wrong shape or dtype, NaN data, a bad option, a damaged
file, CuPy without a GPU) is an :class:`NNError` whose message says what happened and what
to do. Each class also derives from the built-in exception a Python user would expect
(``ValueError`` for a bad value, ``TypeError`` for a bad argument type, ``OSError`` for a
file), so ``except ValueError`` keeps working::

    try:
        net.fit(x, y)
    except nn.NNError as exc:      # anything nn refused, with its reason
        print(exc)

=======================  ==========================================  =====================
class                    raised for                                  also a
=======================  ==========================================  =====================
ConfigError              a bad argument or option (constructor,      ValueError, TypeError
                         ``fit``, ``use``), a layer class misused
ShapeError               an array of the wrong shape                 ValueError
DataError                bad values: NaN/inf, wrong dtype, empty,    ValueError, TypeError
                         ragged, labels out of range, strings
StateError               a call in the wrong order (``backward``     RuntimeError
                         before ``forward``), a backend switched
                         during ``fit``
ModelFileError           a model file that is damaged, inconsistent  ValueError
                         or too large to be trusted
FileAccessError          a file or folder that cannot be read or     OSError
                         written (permissions, disk full)
=======================  ==========================================  =====================

Others live beside the code that raises them and derive from :class:`NNError` too:
``nn.backends.BackendUnavailableError``, ``nn.NonFiniteLossError``,
``nn.gradcheck.GradientCheckError``, ``nn.data.DownloadError``, ``nn.data.ChecksumError``,
``nn.course.StubError``.
"""
from __future__ import annotations


class NNError(Exception):
    """Base class of every exception nn raises on purpose."""


class ConfigError(NNError, ValueError, TypeError):
    """A bad argument or option: a value out of range, an unknown name, a wrong type."""


class ShapeError(NNError, ValueError):
    """An array of the wrong shape (the message gives the expected and the received one)."""


class DataError(NNError, ValueError, TypeError):
    """Bad data values: NaN or inf, a dtype nn cannot compute with, no example, a ragged list."""


class StateError(NNError, RuntimeError):
    """A call in the wrong order, or a change of global state where it is not allowed."""


class BackwardBeforeForwardError(StateError, AttributeError):
    """``backward`` called before ``forward`` (nothing to differentiate yet)."""


class ModelFileError(NNError, ValueError):
    """A model file that is not an nn model, is damaged, or disagrees with itself."""


class FileAccessError(NNError, OSError):
    """A file or folder that cannot be read or written; the message names the user's path."""


class MissingFileError(FileAccessError, FileNotFoundError):
    """A file that does not exist."""


__all__ = ["NNError", "ConfigError", "ShapeError", "DataError", "StateError",
           "BackwardBeforeForwardError",
           "ModelFileError", "FileAccessError", "MissingFileError"]
