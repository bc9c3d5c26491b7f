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
"""
from __future__ import annotations

import re
from pathlib import Path

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
_BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION(?P<hint>.*)$")
_END = re.compile(r"^(?P<indent>[ \t]*)# END SOLUTION\s*$")


class StubError(ValueError):
    """A solution file whose markers cannot be turned into an exercise."""


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


def _sources(solutions: Path):
    """Every file under ``solutions`` that belongs in the exercises, as relative paths."""
    for path in sorted(solutions.rglob("*")):
        rel = path.relative_to(solutions)
        if path.is_file() and not any(part in ("__pycache__", "figures", ".ipynb_checkpoints")
                                      or part.startswith(".") for part in rel.parts):
            if path.suffix not in (".pyc", ".png", ".npz"):
                yield rel


def exercise_files(solutions: Path) -> dict[Path, bytes]:
    """``relative path -> content`` of the whole exercise tree made from ``solutions``.

    Python files go through :func:`make_exercise`; other files (data, notes) are copied.
    """
    files = {}
    for rel in _sources(solutions):
        data = (solutions / rel).read_bytes()
        if rel.suffix == ".py":
            data = make_exercise(data.decode("utf-8"), f"solutions/{rel.as_posix()}").encode()
        files[rel] = data
    return files


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def differences(solutions: Path, exercises: Path) -> list[str]:
    """What differs between ``exercises`` and the exercises made from ``solutions``.

    One line per file: ``"missing ..."``, ``"out of date ..."`` or ``"not generated ..."`` (a
    Python file under ``exercises`` with no solution behind it).
    """
    expected = exercise_files(solutions)
    found = set(_sources(exercises)) if exercises.exists() else set()
    lines = []
    for rel, data in expected.items():
        path = exercises / rel
        if not path.exists():
            lines.append(f"missing      exercises/{rel.as_posix()}")
        elif path.read_bytes() != data:
            lines.append(f"out of date  exercises/{rel.as_posix()}")
    for rel in sorted(found - set(expected)):
        if rel.suffix == ".py":
            lines.append(f"not generated exercises/{rel.as_posix()} (no solutions/"
                         f"{rel.as_posix()}; remove it)")
    return lines


def generate(solutions: Path, exercises: Path) -> list[Path]:
    """Write the exercise tree made from ``solutions`` into ``exercises``; return what changed.

    Everything is generated in memory first, so a marker error leaves ``exercises`` untouched.
    Files are replaced atomically; files in ``exercises`` with no solution are left alone
    (``differences`` lists them).
    """
    changed = []
    for rel, data in exercise_files(solutions).items():
        path = exercises / rel
        if not path.exists() or path.read_bytes() != data:
            _write_atomic(path, data)
            changed.append(path)
    return changed
