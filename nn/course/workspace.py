"""``python -m nn start <practical>``: the student's own copy of an exercise.

The copy goes to the workspace, ``work/<chapter>/<name>.ipynb`` (a notebook, the default)
or ``.py`` (a script, ``--script``); ``work/`` is git-ignored and ``$NN_WORK`` moves it
(:func:`nn.course.practicals.work_dir`). ``exercises/`` stays as generated, so that neither a
``git pull`` nor ``python -m nn exercises`` can touch a student's work.

``start`` never overwrites: when the practical was started already (as a notebook or as a
script), it says where the file is and fails. ``--force`` first renames each existing copy to
a timestamped backup beside it (``perceptron.backup-20250131-142501.ipynb``), then starts
afresh.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..errors import FileAccessError, MissingFileError, StateError
from .practicals import Practical, shown


def _exercise_bytes(practical: Practical, suffix: str) -> bytes:
    """The exercise as it is in ``exercises/`` (the notebook made from the script when the
    repository has none)."""
    if suffix == ".py" or practical.exercise_notebook.is_file():
        path = practical.exercise if suffix == ".py" else practical.exercise_notebook
        if path.is_file():
            return path.read_bytes()
    if not practical.exercise.is_file():
        raise MissingFileError(f"the exercise {shown(practical.exercise)} is missing: a "
                               "teacher makes it with python -m nn exercises")
    from .notebooks import exercise_notebook
    return exercise_notebook(practical.exercise.read_text(encoding="utf-8"))


def backup_name(path: Path, stamp: str | None = None) -> Path:
    """A free name for a backup of ``path``: ``<stem>.backup-<date>-<time><suffix>``."""
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    candidate = path.with_name(f"{path.stem}.backup-{stamp}{path.suffix}")
    n = 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}.backup-{stamp}-{n}{path.suffix}")
        n += 1
    return candidate


def start(practical: Practical, script: bool = False, force: bool = False) -> tuple[Path, list]:
    """Copy the exercise of ``practical`` into the workspace; return the new file and the
    backups made (``[(old path, backup path)]``).

    Raises :class:`~nn.errors.StateError` when the practical was started already (without
    ``force``), naming the file(s); nothing is changed then.
    """
    suffix = ".py" if script else ".ipynb"
    target = practical.workspace(suffix)
    existing = practical.workspace_files()
    if existing and not force:
        files = " and ".join(shown(p) for p in existing)
        raise StateError(
            f"you already started {practical.name}: your work is in {files}, and it was left "
            f"as it is. Open it and go on, or start again from the exercise with python -m nn "
            f"start {practical.name}{' --script' if script else ''} --force (your file is "
            "then kept as a backup beside it)")
    data = _exercise_bytes(practical, suffix)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        backups = []
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for old in existing:
            backup = backup_name(old, stamp)
            old.rename(backup)
            backups.append((old, backup))
        with open(target, "xb") as stream:  # "x": never replaces a file, even one just made
            stream.write(data)
    except FileExistsError:
        raise StateError(f"{shown(target)} appeared while starting {practical.name}; it was "
                         "left as it is") from None
    except OSError as exc:
        raise FileAccessError(f"cannot write {shown(target)}: {exc.strerror or exc}") from exc
    return target, backups
