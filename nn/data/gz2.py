"""Galaxy Zoo 2: the decision tree's answers, and the real catalogue and images when you have them.

Galaxy Zoo 2 (Willett et al. 2013, MNRAS 435, 2835) asked volunteers a tree of questions
about 304 122 SDSS galaxies; each galaxy was seen by 44 volunteers (the median) and the
catalogue gives, for every answer, the fraction of the volunteers who reached that
question and chose it. Hart et al. (2016, MNRAS 461, 3663) corrected those fractions for
the bias against features in small, faint galaxies (the ``_debiased`` columns), and give
each galaxy a class string (``gz2_class``: ``"Ei"``, ``"Sc+t"``, ``"SBb2m"``, ``"A"``...)
whose first letters are the course's three classes E, S and SB.

The tree (task, question, answers; where it is asked from)::

    t01 smooth, or features/disk, or star/artifact?     everyone
    t02 edge-on disk?                       (yes/no)    features
    t03 bar?                                (yes/no)    features, not edge-on
    t04 spiral arms?                        (yes/no)    features, not edge-on
    t05 bulge: none, noticeable, obvious, dominant      features, not edge-on
    t06 anything odd?                       (yes/no)    smooth or features
    t07 how round: completely, in between, cigar        smooth
    t08 odd feature: ring, lens/arc, disturbed, irregular, other, merger, dust lane
                                                        odd
    t09 bulge shape: rounded, boxy, none                edge-on
    t10 arms winding: tight, medium, loose              spiral
    t11 arms number: 1, 2, 3, 4, more than 4, can't tell
                                                        spiral

:data:`GZ2_COLUMNS` names the 37 answers as the Hart et al. table does, without its
suffix (``t01_smooth_or_features_a01_smooth`` is ``..._debiased`` there); the Kaggle
challenge "Galaxy Zoo - The Galaxy Challenge" numbers the same 37 answers ``Class1.1``
to ``Class11.6`` in the same order. In both nn returns the fractions **per question**:
the answers of one task sum to 1 where some volunteer reached it, and are all 0 where
nobody did. (Kaggle's file multiplies them down the tree; nn divides that back out.)

:func:`load_galaxy_zoo2` reads the real data; :func:`nn.data.make_galaxies` makes
synthetic galaxies with the same answers, to work without them.
"""
from __future__ import annotations

import csv
import gzip
import io
import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError, MissingFileError
from . import messages
from ._args import as_path, check_memory, number, seed as check_seed, whole
from .download import file_error
from .images import _pillow, check_dtype, image_size
from .paths import cache_dir

GALAXY_CLASSES = ("E", "S", "SB")
GZ2_TASKS = (
    ("t01_smooth_or_features", ("a01_smooth", "a02_features_or_disk", "a03_star_or_artifact")),
    ("t02_edgeon", ("a04_yes", "a05_no")),
    ("t03_bar", ("a06_bar", "a07_no_bar")),
    ("t04_spiral", ("a08_spiral", "a09_no_spiral")),
    ("t05_bulge_prominence", ("a10_no_bulge", "a11_just_noticeable", "a12_obvious",
                              "a13_dominant")),
    ("t06_odd", ("a14_yes", "a15_no")),
    ("t07_rounded", ("a16_completely_round", "a17_in_between", "a18_cigar_shaped")),
    ("t08_odd_feature", ("a19_ring", "a20_lens_or_arc", "a21_disturbed", "a22_irregular",
                         "a23_other", "a24_merger", "a38_dust_lane")),
    ("t09_bulge_shape", ("a25_rounded", "a26_boxy", "a27_no_bulge")),
    ("t10_arms_winding", ("a28_tight", "a29_medium", "a30_loose")),
    ("t11_arms_number", ("a31_1", "a32_2", "a33_3", "a34_4", "a36_more_than_4",
                         "a37_cant_tell")),
)
#: the 37 answers, in the order of the catalogue (and of Kaggle's Class1.1 ... Class11.6)
GZ2_COLUMNS = tuple(f"{task}_{answer}" for task, answers in GZ2_TASKS for answer in answers)


def task_slices() -> dict:
    """``{task: slice}`` of its answers in :data:`GZ2_COLUMNS` (``votes[:, s]`` sums to 1)."""
    out, start = {}, 0
    for task, answers in GZ2_TASKS:
        out[task] = slice(start, start + len(answers))
        start += len(answers)
    return out


def classes_from_votes(votes: np.ndarray) -> np.ndarray:
    """E / S / SB class ids (:data:`GALAXY_CLASSES`) that the volunteers' majority gives.

    The rule of the GZ2 class strings, in short: the larger of "smooth" and "features or
    disk" decides E or a disk (star/artifact votes left aside); a disk is SB when more than
    half of those asked saw a bar, S otherwise (edge-on disks, whose bar nobody is asked
    about, are S).
    """
    s = task_slices()
    t01, t02, t03 = votes[:, s["t01_smooth_or_features"]], votes[:, s["t02_edgeon"]], \
        votes[:, s["t03_bar"]]
    disk = t01[:, 1] > t01[:, 0]
    barred = disk & (t02[:, 0] <= 0.5) & (t03[:, 0] > 0.5)
    return np.where(barred, 2, np.where(disk, 1, 0)).astype(np.int64)


# -- the real data -------------------------------------------------------------------------------
HART16_FILES = ("gz2_hart16.csv.gz", "gz2_hart16.csv")
MAPPING_FILE = "gz2_filename_mapping.csv"
HART16_IMAGE_DIRS = ("images", "images_gz2/images", "images_gz2")
KAGGLE_FILE = "training_solutions_rev1.csv"
KAGGLE_IMAGE_DIRS = ("images_training_rev1",)
KAGGLE_COLUMNS = tuple(f"Class{t + 1}.{a + 1}" for t, (_, answers) in enumerate(GZ2_TASKS)
                       for a in range(len(answers)))
WHERE_TO_GET = (
    "either the Hart et al. (2016) catalogue gz2_hart16.csv.gz "
    "(https://gz2hart.s3.amazonaws.com/gz2_hart16.csv.gz, from data.galaxyzoo.org) with "
    "gz2_filename_mapping.csv and the images/ folder of images_gz2.zip (3.4 GB; both from "
    "https://zenodo.org/records/3565489), or the Kaggle 'Galaxy Zoo - The Galaxy Challenge' "
    "files training_solutions_rev1.csv and images_training_rev1/ (unzipped); without them, "
    "nn.data.make_galaxies(n) makes synthetic galaxies with the same answers")


def _find(root: Path, names) -> Path | None:
    for name in names:
        path = root / name
        try:
            if path.exists():
                return path
        except OSError as exc:
            raise file_error(root, exc, "look into") from exc
    return None


def _read_text(path: Path) -> str:
    """The whole text of a CSV file, ``.gz`` or not."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
                return f.read()
        return path.read_text(encoding="utf-8")
    except (EOFError, gzip.BadGzipFile, UnicodeDecodeError) as exc:
        raise DataError(f"{path} cannot be read ({type(exc).__name__}: {exc}); it is truncated "
                        "or not the catalogue: download it again") from exc
    except OSError as exc:
        raise file_error(path, exc) from exc


def _columns(text: str, path: Path, names, dtype, width=None) -> np.ndarray:
    """The columns ``names`` of a CSV text with a header line, as one array ``(rows, k)``.

    NumPy's C parser reads the columns asked for (a few seconds for the 240 000 rows of the
    GZ2 catalogue); a file with empty or quoted cells falls back to the csv module.
    """
    header = next(csv.reader(io.StringIO(text[:text.find("\n") + 1])), [])
    header = [h.strip() for h in header]
    missing = [n for n in names if n not in header]
    if missing:
        raise DataError(f"{path} has no column {missing[0]!r} ({len(missing)} of the "
                        f"{len(names)} columns nn reads are missing); it is not the expected "
                        "file, or another version of it: download it again")
    index = [header.index(n) for n in names]
    try:
        out = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1, usecols=index,
                         dtype=dtype, ndmin=2)
    except ValueError:
        rows = list(csv.reader(io.StringIO(text)))[1:]
        try:
            out = np.array([[_cell(r[i], dtype) for i in index] for r in rows if r],
                           dtype=dtype).reshape(-1, len(index))
        except (ValueError, IndexError) as exc:
            raise DataError(f"{path}: a row cannot be read ({type(exc).__name__}: {exc}); the "
                            "file is damaged: download it again") from exc
    return out


def _cell(text: str, dtype):
    text = text.strip()
    if np.dtype(dtype).kind == "f":
        return float(text) if text else np.nan
    return text if np.dtype(dtype).kind == "U" else int(text)


def _fractions(raw: np.ndarray, path: Path) -> np.ndarray:
    """Vote fractions checked and cleaned: NaN (a question nobody reached) becomes 0; values
    a hair outside [0, 1] (the debiasing) are clipped; anything further out is refused."""
    raw = np.where(np.isnan(raw), 0.0, raw)
    bad = np.argwhere((raw < -0.01) | (raw > 1.01) | ~np.isfinite(raw))
    if len(bad):
        row, column = (int(i) for i in bad[0])
        raise DataError(f"{path}: row {row + 2} holds {raw[row, column]} for {GZ2_COLUMNS[column]}"
                        ", not a vote fraction in [0, 1]; the file is damaged: download it again")
    return np.clip(raw, 0.0, 1.0)


def _per_question(raw: np.ndarray) -> np.ndarray:
    """Kaggle's fractions, multiplied down the tree, divided back to fractions per question."""
    out = np.zeros_like(raw)
    for s in task_slices().values():
        total = raw[:, s].sum(axis=1, keepdims=True)
        np.divide(raw[:, s], total, out=out[:, s], where=total > 1e-9)
    return out


def _read_catalogue(root: Path, answers: str):
    """``(ids, image_stems, votes, classes, kind)`` from the catalogue found in ``root``."""
    hart = _find(root, HART16_FILES)
    if hart is not None:
        text = _read_text(hart)
        columns = [f"{c}_{answers}" for c in GZ2_COLUMNS]
        votes = _fractions(_columns(text, hart, columns, np.float64), hart)
        ids = _columns(text, hart, ["dr7objid"], np.int64)[:, 0]
        labels = _columns(text, hart, ["gz2_class"], "U16")[:, 0]
        classes = np.full(len(labels), -1, dtype=np.int64)
        classes[np.char.startswith(labels, "E")] = 0
        classes[np.char.startswith(labels, "S")] = 1
        classes[np.char.startswith(labels, "SB")] = 2
        mapping = _find(root, (MAPPING_FILE,))
        stems = None
        if mapping is not None:
            table = _columns(_read_text(mapping), mapping, ["objid", "asset_id"], np.int64)
            asset = dict(zip(table[:, 0].tolist(), table[:, 1].tolist()))
            stems = np.array([asset.get(i, -1) for i in ids.tolist()], dtype=np.int64)
        return ids, stems, votes, classes, labels, "hart16", hart
    kaggle = _find(root, (KAGGLE_FILE,))
    if kaggle is not None:
        text = _read_text(kaggle)
        raw = _columns(text, kaggle, list(KAGGLE_COLUMNS), np.float64)
        votes = _per_question(_fractions(raw, kaggle))
        ids = _columns(text, kaggle, ["GalaxyID"], np.int64)[:, 0]
        return ids, ids, votes, classes_from_votes(votes), None, "kaggle", kaggle
    raise MissingFileError(f"load_galaxy_zoo2: no Galaxy Zoo 2 catalogue in {root}; put there "
                           + WHERE_TO_GET)


def _read_cutout(path: Path, size, crop: float) -> np.ndarray:
    """One JPEG as uint8 ``(3, H, W)``: the central ``crop`` of its side, resized to ``size``.

    ``Image.draft`` lets the JPEG decoder skip detail that the resize would throw away (the
    GZ2 images are 424x424; a 64x64 cut-out needs an eighth of it).
    """
    Image = _pillow()
    height, width = size
    try:
        with Image.open(path) as image:
            side = min(image.size)
            image.draft("RGB", (int(image.size[0] * max(height, width) / (crop * side)) + 1,
                                int(image.size[1] * max(height, width) / (crop * side)) + 1))
            image = image.convert("RGB")
            w, h = image.size
            keep = crop * min(w, h)
            box = ((w - keep) / 2, (h - keep) / 2, (w + keep) / 2, (h + keep) / 2)
            image = image.resize((width, height), Image.Resampling.BILINEAR, box=box)
            pixels = np.asarray(image, dtype=np.uint8)
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        raise file_error(path, exc) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot read the image {path} ({type(exc).__name__}: {exc}); it is "
                        "damaged: delete it (the galaxy is then left out) or copy it "
                        "again") from exc
    return pixels.transpose(2, 0, 1)


def load_galaxy_zoo2(root=None, size=64, n=None, seed: int = 0, crop: float = 0.5,
                     images: bool = True, dtype=np.float32, answers: str = "debiased"):
    """The Galaxy Zoo 2 catalogue, and the images of its galaxies, from files you have.

    nn does not download them (3.4 GB of images); put in ``root`` either

    - **Hart et al. 2016**: ``gz2_hart16.csv.gz`` (or ``.csv``) from data.galaxyzoo.org,
      ``gz2_filename_mapping.csv`` and the images of ``images_gz2.zip``, unzipped into
      ``images/`` (named ``<asset_id>.jpg``), both from Zenodo record 3565489; classes E /
      S / SB from the first letters of ``gz2_class`` (stars and artifacts, class ``"A"``,
      are left out), votes from the ``_debiased`` columns (or ``answers=
      "weighted_fraction"``);
    - or **Kaggle's challenge**: ``training_solutions_rev1.csv`` and
      ``images_training_rev1/`` (``<GalaxyID>.jpg``, 61 578 images); classes from the
      votes (:func:`classes_from_votes`).

    Only galaxies whose image is there are returned (the message says how many are not).

    Parameters
    ----------
    root : str or Path, optional
        The folder of the files; default ``cache_dir("galaxy_zoo2")``.
    size : int or (int, int)
        Images are resized to ``size x size`` (the course uses 64 or 128).
    n : int, optional
        Take ``n`` galaxies drawn at random (``seed``) instead of all of them: 240 000 images
        of 64x64 take 12 GB as float32, and minutes to decode.
    crop : float in (0, 1]
        The central fraction of the side kept before resizing: 0.5, as the course does,
        zooms on the galaxy (the 424x424 images show much sky around it).
    images : bool
        False reads the catalogue only (``images`` is then None): fast, for statistics.
    dtype : float type or np.uint8
    answers : "debiased" or "weighted_fraction"
        Which fractions of the Hart et al. table (Kaggle's file has one kind).

    Returns
    -------
    images : (N, 3, size, size) float in [0, 1] (or uint8), the SDSS colour composites
        (channels red, green, blue = the i, r, g bands), or None
    info : dict
        ``"classes"`` (N,) int64 into :data:`GALAXY_CLASSES`; ``"votes"`` (N, 37) float32
        fractions per question, columns ``"vote_columns"`` = :data:`GZ2_COLUMNS`; ``"ids"``
        (N,) int64 (SDSS DR7 objid, or Kaggle's GalaxyID); ``"gz2_class"`` (N,) str (Hart
        et al.; None for Kaggle); ``"files"`` the N image paths (empty with ``images=False``);
        ``"source"``: ``"hart16"`` or ``"kaggle"``.

    Raises
    ------
    nn.errors.MissingFileError
        No catalogue in ``root``, or no image folder: the message says where to get them.
    nn.DataError
        A file that is not the expected one (a missing column, a value that is not a
        fraction, an image that cannot be decoded).
    """
    owner = "load_galaxy_zoo2"
    root = as_path(root, "root", owner) if root is not None else cache_dir("galaxy_zoo2")
    height, width = image_size(size, owner)
    if n is not None:
        n = whole(n, "n", owner, minimum=1)
    seed = check_seed(seed, owner)
    crop = number(crop, "crop", owner, low=0, high=1, low_open=True)
    if not isinstance(images, (bool, np.bool_)):
        raise ConfigError(f"{owner}: images must be True or False, got {images!r}")
    dtype = check_dtype(owner, dtype)
    if not isinstance(answers, str) or answers not in ("debiased", "weighted_fraction"):
        raise ConfigError(f"{owner}: answers must be 'debiased' or 'weighted_fraction', got "
                          f"{answers!r}")
    try:
        is_dir = root.is_dir()
    except OSError as exc:
        raise file_error(root, exc, "look into") from exc
    if not is_dir:
        raise MissingFileError(f"{owner}: no folder {root}; make it and put there "
                               + WHERE_TO_GET)

    ids, stems, votes, classes, labels, kind, catalogue = _read_catalogue(root, answers)
    keep = classes >= 0
    folder = None
    if images:
        candidates = HART16_IMAGE_DIRS if kind == "hart16" else KAGGLE_IMAGE_DIRS
        folder = _find(root, candidates)
        if folder is None or stems is None:
            what = f"no image folder ({' or '.join(candidates)})" if folder is None \
                else f"no {MAPPING_FILE} (image names are asset ids)"
            raise MissingFileError(f"{owner}: {catalogue} is there but {what} in {root}; put "
                                   f"there {WHERE_TO_GET} (or images=False for the catalogue "
                                   "alone)")
        try:
            present = {int(e.name[:-4]) for e in os.scandir(folder)
                       if e.name.endswith(".jpg") and e.name[:-4].isdigit()}
        except OSError as exc:
            raise file_error(folder, exc, "list") from exc
        keep &= np.isin(stems, np.fromiter(present, dtype=np.int64, count=len(present)))
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        raise DataError(f"{owner}: none of the {len(ids)} galaxies of {catalogue} has an image "
                        f"in {folder} (named <asset_id>.jpg); check that the images belong to "
                        "this catalogue")
    if n is not None and n < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(rows, n, replace=False))
    left_out = len(ids) - int(keep.sum())
    info = {"classes": classes[rows], "votes": votes[rows].astype(np.float32),
            "vote_columns": GZ2_COLUMNS, "ids": ids[rows],
            "gz2_class": None if labels is None else labels[rows], "files": [],
            "source": kind}
    messages.found("Galaxy Zoo 2", f"{catalogue} ({len(rows)} galaxies"
                   + (f"; {left_out} left out: star/artifact or no image)" if left_out else ")"))
    if not images:
        return None, info
    info["files"] = [folder / f"{stem}.jpg" for stem in stems[rows].tolist()]
    check_memory(len(rows) * 3 * height * width * (1 + dtype.itemsize), owner,
                 f"take fewer galaxies with n= (there are {len(rows)}) or a smaller size")
    pixels = np.empty((len(rows), 3, height, width), dtype=np.uint8)
    for i, path in enumerate(info["files"]):
        pixels[i] = _read_cutout(path, (height, width), crop)
    if dtype == np.uint8:
        return pixels, info
    out = pixels.astype(dtype)
    out /= dtype.type(255)
    return out, info


__all__ = ["GALAXY_CLASSES", "GZ2_TASKS", "GZ2_COLUMNS", "task_slices", "classes_from_votes",
           "load_galaxy_zoo2"]
