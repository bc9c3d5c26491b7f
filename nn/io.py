"""Model files: a network's architecture (JSON) and weights in one ``.npz``, never a pickle.

The file is a plain NumPy archive (a zip of ``.npy`` files):

* ``__architecture__``: the JSON text ``{"format": "nn-model", "version": 2, "layers": [...],
  "loss": ...}``, each layer as ``{"type": class name, "config": constructor arguments}``;
* one array per parameter and per buffer, under the layer's dotted position and the name,
  e.g. ``"0.W"``, ``"3.1.b"`` (layer 1 inside block 3), ``"2.running_mean"``.

Reading never trusts the file. :func:`read` checks, in this order and before drawing or
allocating any weight: the zip and each array's header (shape, dtype; no object arrays, so
no pickle), that the sizes the headers announce agree with the bytes stored (a 3 KB file
cannot make nn allocate gigabytes), the JSON record (size, nesting, format, version), then
builds the layers *without* weights (:func:`nn.layers.base.deferred_init`) and compares the
shapes they expect with the stored ones; only then are the arrays read, checked for NaN and
inf, and put in place. Every problem is a :class:`~nn.errors.ModelFileError` naming the file,
the array or the layer, and what to do.

This module takes the network (or its layers) as an argument and never imports
:mod:`nn.network`: ``Network.save``, ``Network.load`` and ``Network.load_weights`` call it.
"""
from __future__ import annotations

import json
import math
import os
import secrets
import zipfile
from pathlib import Path

import numpy as np

from . import backends
from . import losses as _losses
from .errors import FileAccessError, MissingFileError, ModelFileError
from .layers.base import deferred_init, from_dict, named_layers, to_dict

FORMAT = "nn-model"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
ARCH_KEY = "__architecture__"
#: the JSON record may not be larger than this, nor nested deeper
MAX_RECORD_BYTES = 16 * 2**20
MAX_DEPTH = 64
#: the arrays may announce at most this many times the file's size (nn writes uncompressed
#: archives; a compressed member that expands a thousandfold is a zip bomb, not a model)
MAX_EXPANSION = 50


# -- writing ------------------------------------------------------------------------------------
def architecture(layers, loss) -> dict:
    """The JSON-ready record of a network's layers and loss (no weights)."""
    return {"format": FORMAT, "version": FORMAT_VERSION,
            "layers": [to_dict(layer) for layer in layers],
            "loss": None if loss is None else _losses.to_dict(loss)}


def state_arrays(layers) -> dict:
    """``{key: host array}`` of every parameter and buffer, keyed by dotted position."""
    arrays = {}
    for i, top in enumerate(layers):
        for prefix, layer in named_layers(top, f"{i}."):
            for store in (layer.params, layer.buffers):
                for name, value in store.items():
                    arrays[prefix + name] = backends.to_host(value)
    return arrays


def save(net, path) -> Path:
    """Write ``net``'s architecture and weights to one ``.npz`` file, atomically.

    ``.npz`` is appended when ``path`` has no suffix. The file is written beside its final
    name and renamed into place, so an interrupted save never leaves half a model, and a
    model already at ``path`` survives a failed save. Returns the path.
    """
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".npz")
    arrays = state_arrays(net.layers)
    arrays[ARCH_KEY] = np.array(json.dumps(architecture(net.layers, net.loss)))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileAccessError(f"cannot create the folder {path.parent} to save {path.name} "
                              f"({exc.strerror or exc}); choose a folder you can write to") from exc
    # a plain exclusive open, not tempfile.mkstemp: mkstemp makes the file private (mode
    # 0600), and os.replace would give the saved model those permissions
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    try:
        f = open(tmp, "xb")
    except OSError as exc:
        raise FileAccessError(f"cannot save the model to {path}: {exc.strerror or exc} (is the "
                              "folder read-only?); choose a folder you can write to") from exc
    try:
        with f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise FileAccessError(f"could not save the model to {path} ({exc.strerror or exc}); "
                              "any model already there is unchanged") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# -- reading ------------------------------------------------------------------------------------
class _Archive:
    """An opened model file: the record and the array headers, checked; arrays read on demand."""

    def __init__(self, path):
        self.path = path = Path(path)
        if not path.exists():
            raise MissingFileError(f"no model file at {path}")
        if not path.is_file():
            raise ModelFileError(f"{path} is a folder, not a model file")
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise self.error(f"is not a readable nn model file ({type(exc).__name__}: {exc}); "
                             "it may be truncated or corrupt, or a single .npy array rather "
                             "than an .npz archive: save the network again") from exc
        try:
            self.headers = self._headers()
            self.record = self._record()
        except BaseException:
            self.zip.close()
            raise

    def error(self, text: str) -> ModelFileError:
        """``"<path> is ..."`` or ``"<path>: ..."``, naming the user's file first."""
        return ModelFileError(f"{self.path}{'' if text.startswith(':') else ' '}{text}")

    def close(self):
        self.zip.close()

    def _headers(self) -> dict:
        """``{key: (shape, dtype)}`` from each ``.npy`` header, without reading the data."""
        headers, announced = {}, 0
        for info in self.zip.infolist():
            if not info.filename.endswith(".npy"):
                raise self.error(f"holds {info.filename!r}, which is not a NumPy array; it is not "
                                 "a file written by Network.save")
            try:
                with self.zip.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                    else:
                        raise ValueError(f".npy format version {version} is not one NumPy "
                                         "writes for numbers")
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
                raise self.error(f"has a damaged array {info.filename!r} ({exc}); it is truncated "
                                 "or corrupt: save the network again") from exc
            if dtype.hasobject:
                raise self.error(f"holds Python objects in {info.filename!r}; nn model files hold "
                                 "numbers only (it refuses anything that would need a pickle)")
            nbytes = math.prod(shape) * dtype.itemsize
            if nbytes > info.file_size:
                raise self.error(f"announces {nbytes:,} bytes for {info.filename!r} but stores "
                                 f"{info.file_size:,}; the file is truncated or corrupt")
            announced += info.file_size
            headers[info.filename[:-4]] = (tuple(shape), dtype)
        size = self.path.stat().st_size
        if announced > max(MAX_RECORD_BYTES, MAX_EXPANSION * size):
            raise self.error(f"announces {announced:,} bytes of arrays in a {size:,}-byte file; it "
                             "is not a model nn wrote (a compressed archive that would expand "
                             "this much is refused)")
        return headers

    def _record(self) -> dict:
        if ARCH_KEY not in self.headers:
            raise self.error(f"has no '{ARCH_KEY}' entry: it is a NumPy archive but not one "
                             "written by Network.save")
        shape, dtype = self.headers[ARCH_KEY]
        if shape != () or dtype.kind != "U" or dtype.itemsize > 4 * MAX_RECORD_BYTES:
            raise self.error(f"has an architecture record of shape {shape} and dtype {dtype}; "
                             "expected one JSON string (at most 16 MiB)")
        text = str(self.array(ARCH_KEY))
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise self.error(f": the architecture record is not valid JSON ({exc})") from exc
        except RecursionError:
            raise self.error(": the architecture record is nested too deeply to be a network")
        if _depth(record) > MAX_DEPTH:
            raise self.error(f": the architecture record is nested more than {MAX_DEPTH} levels "
                             "deep; it is not a network nn wrote")
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise self.error(f": the architecture record is not an {FORMAT} record")
        version = record.get("version", 1)
        if isinstance(version, bool) or not isinstance(version, int):
            raise self.error(f": the format version must be an integer, got {version!r}")
        if version > FORMAT_VERSION:
            raise self.error(f"was written by a newer nn (format version {version} > "
                             f"{FORMAT_VERSION}); update nn to read it")
        if version not in READABLE_VERSIONS:
            raise self.error(f"has an unknown format version {version!r}")
        if not isinstance(record.get("layers"), list) or not record["layers"]:
            raise self.error(": the architecture record cannot be rebuilt: it has no list of "
                             "layers")
        return record

    def array(self, key) -> np.ndarray:
        with self.zip.open(key + ".npy") as f:
            return np.lib.format.read_array(f, allow_pickle=False)

    def build(self):
        """The saved layers and loss, built without weights (``params`` still empty)."""
        try:
            with deferred_init():
                layers = [from_dict(spec) for spec in self.record["layers"]]
            loss = self.record.get("loss")
            loss = None if loss is None else _losses.from_dict(loss)
        except (ModelFileError, TypeError, ValueError, KeyError) as exc:
            raise self.error(f": the architecture record cannot be rebuilt ({exc}); it is damaged "
                             "or was written by another version of nn") from exc
        return layers, loss

    def expected(self, layers, start: int = 0) -> dict:
        """``{key: (layer, name, shape, store)}`` of every parameter and buffer of ``layers``."""
        out = {}
        for i, top in enumerate(layers, start):
            for prefix, layer in named_layers(top, f"{i}."):
                params = layer.param_shapes() or {k: v.shape for k, v in layer.params.items()}
                for name, shape in params.items():
                    out[prefix + name] = (layer, name, tuple(shape), "params")
                for name, shape in layer.buffer_shapes().items():
                    out[prefix + name] = (layer, name, tuple(shape), "buffers")
        return out

    def check(self, expected: dict, exact: bool = True) -> None:
        """Compare ``expected`` with the stored headers: names, shapes, dtypes."""
        stored = {k: v for k, v in self.headers.items() if k != ARCH_KEY}
        for key, (layer, name, shape, store) in expected.items():
            if key not in stored:
                raise self.error(f": missing array '{key}' ({name} of {layer!r}); the file is "
                                 "incomplete or was saved from another architecture")
            got, dtype = stored[key]
            if got != shape:
                raise self.error(f": array '{key}' ({name} of {layer!r}) has shape {got}, "
                                 f"expected {shape}")
            if dtype.kind != "f" and (store == "params" or dtype.kind not in "iu"):
                raise self.error(f": array '{key}' ({name} of {layer!r}) has dtype {dtype}, "
                                 "expected floating point")
        extra = sorted(set(stored) - set(expected))
        if exact and extra:
            raise self.error(f": unexpected arrays {extra} that no layer of the saved "
                             "architecture uses; the file is inconsistent")

    def fill(self, expected: dict) -> None:
        """Read the arrays and put them in the layers (on the current backend)."""
        B = backends.current()
        for key, (layer, name, _, store) in expected.items():
            value = self.array(key)
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                where = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
                raise self.error(f": array '{key}' ({name} of {layer!r}) holds {value[where]} at "
                                 f"index {where}; a model with NaN or inf weights cannot be "
                                 "used (it was saved after training diverged)")
            if store == "params":
                layer.params[name] = B.param(value)
            else:
                dtype = B.param_dtype if value.dtype.kind == "f" else value.dtype
                layer.buffers[name] = B.xp.asarray(value, dtype=dtype)
            layer.grads = {}


def _depth(value, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def read(path):
    """``(layers, loss)`` rebuilt from a file written by :func:`save` (see the module text).

    Raises
    ------
    MissingFileError
        No file at ``path``.
    ModelFileError
        Anything wrong with the file, named (the array, the layer, the record).
    """
    archive = _Archive(path)
    try:
        layers, loss = archive.build()
        expected = archive.expected(layers)
        archive.check(expected)
        archive.fill(expected)
    finally:
        archive.close()
    return layers, loss


def load_weights(layers, path, n_layers: int | None = None) -> None:
    """Copy the weights and buffers of the first ``n_layers`` top-level layers of the model
    saved at ``path`` into ``layers`` (all of them when None), in place.

    The saved layers must be the same kind of layer, with parameters of the same names and
    shapes, position by position; the errors name the layer that differs.
    """
    if n_layers is None:
        n_layers = len(layers)
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or not 0 <= n_layers <= len(layers):
        raise ModelFileError(f"load_weights: n_layers must be an int in [0, {len(layers)}] (the "
                             f"network's layer count), got {n_layers!r}")
    archive = _Archive(path)
    try:
        saved, _ = archive.build()
        if n_layers > len(saved):
            raise archive.error(f"holds {len(saved)} layers; cannot copy the first {n_layers}")
        for i in range(n_layers):
            mine, theirs = layers[i], saved[i]
            if type(mine).__name__ != type(theirs).__name__ or \
                    _shapes(mine) != _shapes(theirs):
                raise archive.error(f": layer {i} is {theirs!r} in the file but {mine!r} in this "
                                    "network; load_weights copies layer by layer, so the first "
                                    "n_layers must be the same kinds of layer with the same shapes")
        expected = archive.expected(layers[:n_layers])
        archive.check(expected, exact=False)
        archive.fill(expected)
    finally:
        archive.close()


def _shapes(layer) -> list:
    return [(prefix, type(sub).__name__,
             sorted((k, tuple(s)) for k, s in (sub.param_shapes() or
                                              {k: v.shape for k, v in sub.params.items()}).items()),
             sorted((k, tuple(s)) for k, s in sub.buffer_shapes().items()))
            for prefix, sub in named_layers(layer)]


__all__ = ["save", "read", "load_weights", "architecture", "state_arrays", "FORMAT",
           "FORMAT_VERSION", "ARCH_KEY"]
