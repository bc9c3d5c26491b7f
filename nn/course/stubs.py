"""Exercises from solutions: every marked region becomes a stub.

In a solution file, what the student writes sits between two marker lines::

    def step(h, threshold=0.0):
        \"\"\"The perceptron's binary neuron.\"\"\"
        # BEGIN SOLUTION return 1.0 where h exceeds the threshold, 0.0 elsewhere
        y = (h > threshold).astype(h.dtype)
        # END SOLUTION
        return y

and the exercise keeps everything around the region (signature, docstring, return line)
and replaces the region by one line at the marker's indentation::

        raise NotImplementedError("return 1.0 where h exceeds the threshold, 0.0 elsewhere")

The text after ``BEGIN SOLUTION`` is the hint, and it is required: a stub must say what to
write. Markers stand on their own line, do not nest, and every ``BEGIN`` has its ``END`` at
the same indentation; anything else is a :class:`StubError` naming the file and line.

Each practical's exercise is written twice, as the script ``<name>.py`` and as the notebook
``<name>.ipynb`` (:func:`nn.course.notebooks.exercise_notebook`). ``exercises/MANIFEST.sha256``
(the format of ``sha256sum``) holds the hash of every file as it was generated, so that
:func:`generate` can tell a file it wrote from a file someone edited since, and refuses to
overwrite the latter (a student's or a teacher's work) unless forced. It is committed with
the exercises; ``sha256sum -c MANIFEST.sha256`` in ``exercises/`` checks the tree by hand.
(A manifest rather than a comparison with what the committed solutions would give: it needs
no git, and a teacher may regenerate several times before committing.)

The tree is written all or nothing (:func:`write_tree`): every new file is first written
beside its target under a temporary name, which proves each folder writable, and only then
renamed over it; a failure undoes what was done.
"""
from __future__ import annotations

import errno
import hashlib
import os
import re
from pathlib import Path

from ..errors import FileAccessError, NNError

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
_BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION(?P<hint>.*)$")
_END = re.compile(r"^(?P<indent>[ \t]*)# END SOLUTION\s*$")


class StubError(NNError, ValueError):
    """A solution file whose markers cannot be turned into an exercise."""


class EditedFilesError(NNError, RuntimeError):
    """``exercises/`` holds files changed since they were generated; ``files`` lists them."""

    def __init__(self, message, files):
        super().__init__(message)
        self.files = files


def _quote(hint: str) -> str:
    if '"' not in hint and "\\" not in hint:
        return f'"{hint}"'
    return repr(hint)


def make_exercise(source: str, filename: str = "<solution>") -> str:
    """The exercise text of one solution file: each marked region replaced by a stub.

    Raises :class:`StubError` for a marker that is not alone on its line, a region without
    a hint, a nested, unopened or unterminated region, an ``END`` indented differently from
    its ``BEGIN``, or an exercise that is not valid Python.
    """
    out: list[str] = []
    opened = None  # (line number, indentation) of the BEGIN of the open region
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        where = f"{filename}:{number}"
        text = line.rstrip("\r\n")
        begin, end = _BEGIN.match(text), _END.match(text)
        if begin is None and end is None:
            if BEGIN in text or END in text:
                raise StubError(f"{where}: a solution marker must stand alone on its line, "
                                f"after the indentation only: {text.strip()!r}")
            if opened is None:
                out.append(line)
            continue
        if begin is not None:
            if opened is not None:
                raise StubError(f"{where}: BEGIN SOLUTION inside the region opened at line "
                                f"{opened[0]}; regions cannot nest, close it with END SOLUTION "
                                "first")
            hint = begin["hint"].strip()
            if not begin["hint"].startswith((" ", "\t")) and hint:
                raise StubError(f"{where}: put a space between BEGIN SOLUTION and the hint")
            if not hint:
                raise StubError(f"{where}: BEGIN SOLUTION needs a hint, one sentence saying "
                                "what to write, e.g. '# BEGIN SOLUTION compute h = x @ w'")
            opened = (number, begin["indent"])
            newline = line[len(text):] or "\n"
            out.append(f"{begin['indent']}raise NotImplementedError({_quote(hint)}){newline}")
            continue
        if opened is None:
            raise StubError(f"{where}: END SOLUTION without a BEGIN SOLUTION before it")
        if end["indent"] != opened[1]:
            raise StubError(f"{where}: END SOLUTION is indented differently from the "
                            f"BEGIN SOLUTION of line {opened[0]}")
        opened = None
    if opened is not None:
        raise StubError(f"{filename}:{opened[0]}: BEGIN SOLUTION is never closed; add "
                        "'# END SOLUTION' after the solution code")
    exercise = "".join(out)
    try:
        compile(exercise, filename, "exec")
    except SyntaxError as exc:
        raise StubError(f"{filename}: the exercise made from it is not valid Python "
                        f"(line {exc.lineno}: {exc.msg}); a region must hold whole "
                        "statements of one block") from None
    return exercise


MANIFEST = "MANIFEST.sha256"
_SKIPPED_PARTS = ("__pycache__", "figures", "models", ".ipynb_checkpoints")


def _sources(solutions: Path):
    """Every file under ``solutions`` that belongs in the exercises, as relative paths."""
    for path in sorted(solutions.rglob("*")):
        rel = path.relative_to(solutions)
        if path.is_file() and not any(part in _SKIPPED_PARTS or part.startswith(".")
                                      for part in rel.parts):
            if path.suffix not in (".pyc", ".png", ".npz") and rel.as_posix() != MANIFEST:
                yield rel


def cell_marker_problems(source: str, filename: str = "<solution>") -> list[str]:
    """The ``# %%`` cell markers that do not start at column 0, one line each.

    jupytext only starts a cell at a marker in column 0; an indented one (inside an ``if``
    block) stays a comment in the middle of a cell, so the notebook's cells do not follow the
    script's. Close the block and open the next cell with its own ``if __name__ ==
    "__main__":``.
    """
    return [f"{filename}:{number}: the cell marker {line.strip()!r} is indented; a cell "
            "marker must start at column 0 (end the block above and open the cell with its "
            "own 'if __name__ == \"__main__\":')"
            for number, line in enumerate(source.splitlines(), start=1)
            if re.match(r"^[ \t]+# %%", line)]


def is_practical(rel: Path) -> bool:
    """A practical's file (``<chapter>/<name>.py``), not a helper module (``_name.py``)."""
    return rel.suffix == ".py" and len(rel.parts) == 2 and not rel.name.startswith("_")


def exercise_files(solutions: Path, notebooks: bool = False) -> dict[Path, bytes]:
    """``relative path -> content`` of the exercise tree made from ``solutions``.

    Python files go through :func:`make_exercise`; other files (data, notes) are copied.
    With ``notebooks``, each practical also gets its notebook (needs jupytext) and the tree
    its manifest (:data:`MANIFEST`): the whole of what ``python -m nn exercises`` writes.
    """
    files = {}
    for rel in _sources(solutions):
        data = (solutions / rel).read_bytes()
        if rel.suffix == ".py":
            text = make_exercise(data.decode("utf-8"), f"solutions/{rel.as_posix()}")
            data = text.encode()
            if notebooks and is_practical(rel):
                from .notebooks import exercise_notebook
                files[rel.with_suffix(".ipynb")] = exercise_notebook(text)
        files[rel] = data
    if notebooks:
        files[Path(MANIFEST)] = _manifest_text(files).encode()
    return dict(sorted(files.items()))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest_text(files: dict[Path, bytes]) -> str:
    return "".join(f"{_sha256(data)}  {rel.as_posix()}\n" for rel, data in sorted(files.items())
                   if rel.as_posix() != MANIFEST)


def read_manifest(exercises: Path) -> dict[str, str]:
    """``relative path -> sha256`` of the files the last generation wrote (empty if none)."""
    path = exercises / MANIFEST
    if not path.is_file():
        return {}
    hashes = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        digest, _, rel = line.partition("  ")
        if rel:
            hashes[rel] = digest
    return hashes


def differences(solutions: Path, exercises: Path) -> list[str]:
    """What differs between ``exercises`` and the exercises made from ``solutions``.

    One line per file: ``"missing ..."``, ``"out of date ..."`` or ``"not generated ..."`` (a
    script or notebook under ``exercises`` with no solution behind it).
    """
    expected = exercise_files(solutions, notebooks=True)
    found = set(_sources(exercises)) if exercises.exists() else set()
    lines = []
    for rel, data in expected.items():
        path = exercises / rel
        if not path.exists():
            lines.append(f"missing      exercises/{rel.as_posix()}")
        elif path.read_bytes() != data:
            lines.append(f"out of date  exercises/{rel.as_posix()}")
    for rel in sorted(found - set(expected)):
        if rel.suffix in (".py", ".ipynb"):
            source = rel.with_suffix(".py").as_posix()
            lines.append(f"not generated exercises/{rel.as_posix()} (no solutions/{source}; "
                         "remove it)")
    return lines


def edited_files(exercises: Path, expected: dict[Path, bytes]) -> list[Path]:
    """The files of ``exercises`` that would change and that the last generation did not
    write as they are now: someone edited them (or they predate the manifest)."""
    manifest = read_manifest(exercises)
    edited = []
    for rel, data in expected.items():
        path = exercises / rel
        if rel.as_posix() == MANIFEST or not path.is_file():
            continue
        current = path.read_bytes()
        if current != data and manifest.get(rel.as_posix()) != _sha256(current):
            edited.append(rel)
    return edited


def generate(solutions: Path, exercises: Path, force: bool = False,
             backup: Path | None = None) -> list[Path]:
    """Write the exercise tree made from ``solutions`` into ``exercises``; return what changed.

    Everything is generated in memory first, so a marker error leaves ``exercises`` untouched.
    A file someone edited since it was generated is not overwritten: :class:`EditedFilesError`
    lists them and nothing is written, unless ``force`` (then each is first copied under
    ``backup``, when given). The files are written all or none (:func:`write_tree`); files in
    ``exercises`` with no solution are left alone (``differences`` lists them).
    """
    expected = exercise_files(solutions, notebooks=True)
    edited = edited_files(exercises, expected)
    if edited and not force:
        listed = "\n".join(f"  exercises/{rel.as_posix()}" for rel in edited)
        raise EditedFilesError(
            f"{len(edited)} file(s) in exercises/ changed since they were generated; nothing "
            f"was written:\n{listed}\nexercises/ is generated: students work on their own "
            "copy (python -m nn start <practical>). Keep what you need from these files, "
            "then run python -m nn exercises --force to overwrite them.", edited)
    if edited and backup is not None:
        write_tree(backup, {Path("exercises") / rel: (exercises / rel).read_bytes()
                            for rel in edited})
    changed = {rel: data for rel, data in expected.items()
               if not (exercises / rel).is_file() or (exercises / rel).read_bytes() != data}
    write_tree(exercises, changed)
    return [exercises / rel for rel in changed]


def write_tree(root: Path, files: dict[Path, bytes]) -> None:
    """Write ``files`` (``relative path -> content``) under ``root``: all of them, or none.

    Every file is first written beside its target under a temporary name, which proves that
    each folder can be written; only then are they renamed over their targets, one rename
    each. Any failure removes the temporary files and the folders made for them, and puts
    back the files already renamed, so that the tree is left as it was. A read-only target
    file is refused. Raises :class:`~nn.errors.FileAccessError` naming the target.
    """
    made: list[Path] = []          # folders created, parents first
    staged: list[tuple[Path, Path, bytes | None]] = []   # (temporary, target, old content)
    committed: list[tuple[Path, bytes | None]] = []
    target = root
    try:
        for rel, data in files.items():
            target = root / rel
            for folder in reversed(target.parents):
                if not folder.exists():
                    folder.mkdir()
                    made.append(folder)
            old = None
            if target.exists():
                if not os.access(target, os.W_OK):
                    raise PermissionError(errno.EACCES, "the file is read-only", str(target))
                old = target.read_bytes()
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            with open(tmp, "xb") as stream:
                staged.append((tmp, target, old))
                stream.write(data)
        for tmp, target, old in staged:
            os.replace(tmp, target)
            committed.append((target, old))
    except BaseException as exc:
        for done, old in reversed(committed):
            try:
                if old is None:
                    done.unlink()
                else:
                    done.write_bytes(old)
            except OSError:
                pass
        for tmp, _, _ in staged:
            tmp.unlink(missing_ok=True)
        for folder in reversed(made):
            try:
                folder.rmdir()
            except OSError:
                pass
        if isinstance(exc, OSError):
            reason = exc.strerror or str(exc)
            raise FileAccessError(f"cannot write {target}: {reason}; nothing was changed "
                                  f"under {root}") from exc
        raise
