"""Where the practicals are, which file of a student is graded, and how to import one
without running its experiment.

A practical is one file ``solutions/<chapter>/<name>.py`` (files starting with ``_`` are
helpers, not practicals). Its exercise is ``exercises/<chapter>/<name>.py`` (and the same as
a notebook, ``.ipynb``), its tests ``tests/course/test_<name>.py``, and the first title of
its first markdown cell (``# # Title``) is the line that ``python -m nn list`` prints. A
practical handed out without its solution (an exam) is found from its exercise alone.

A student works on a copy in the workspace, ``work/<chapter>/<name>.ipynb`` or ``.py``
(``python -m nn start``; ``$NN_WORK`` moves the folder), never in ``exercises/``.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"
COURSE_TESTS = ROOT / "tests" / "course"
CHAPTERS = ("clustering", "perceptron", "mlp", "cnn", "autoencoder", "generative", "detection",
            "gpu")
# the teaching order inside a chapter; a practical not listed comes after, by name
ORDER = ("kmeans", "perceptron", "mlp", "spectra", "wine", "optimizers", "depth",
         "filters", "im2col", "conv_layers", "lenet", "inside", "spectra_cnn", "augmentation",
         "cifar10", "galaxies",
         "autoencoder", "denoiser", "vae", "gan", "diffusion",
         "detection_metrics", "sliding_window", "yolo_loss", "radio_yolo", "voc_yolo")
SUFFIXES = (".py", ".ipynb")


def work_dir() -> Path:
    """The students' workspace: ``$NN_WORK``, else ``work/`` at the root of the course."""
    given = os.environ.get("NN_WORK")
    return Path(given).expanduser().resolve() if given else ROOT / "work"


@dataclass(frozen=True)
class Practical:
    name: str
    chapter: str
    title: str

    @property
    def solution(self) -> Path:
        return SOLUTIONS / self.chapter / f"{self.name}.py"

    @property
    def exercise(self) -> Path:
        return EXERCISES / self.chapter / f"{self.name}.py"

    @property
    def exercise_notebook(self) -> Path:
        return EXERCISES / self.chapter / f"{self.name}.ipynb"

    @property
    def tests(self) -> Path:
        return COURSE_TESTS / f"test_{self.name}.py"

    def workspace(self, suffix: str = ".ipynb") -> Path:
        """The student's copy, ``<work_dir()>/<chapter>/<name><suffix>``."""
        return work_dir() / self.chapter / f"{self.name}{suffix}"

    def workspace_files(self) -> list[Path]:
        """The student's copies that exist (a notebook, a script, or both)."""
        return [p for p in (self.workspace(s) for s in SUFFIXES) if p.is_file()]


def title_of(path: Path) -> str:
    """The first ``# # Title`` line of the file's markdown cells, without the hashes."""
    in_markdown = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# %%"):
            in_markdown = "[markdown]" in line
        elif in_markdown and (match := re.match(r"#\s*#+\s+(.*\S)", line)):
            return match[1]
    return ""


def practicals() -> list[Practical]:
    """Every practical under ``solutions/`` (or only under ``exercises/``, for a practical
    handed out without its solution), in the course's chapter order."""
    files = {}
    for folder in (EXERCISES, SOLUTIONS):  # a solution's title wins over its exercise's
        if folder.is_dir():
            files.update({(p.parent.name, p.stem): p for p in folder.glob("*/*.py")
                          if not p.name.startswith(("_", "."))})
    order = {chapter: i for i, chapter in enumerate(CHAPTERS)}
    found = [Practical(name, chapter, title_of(path)) for (chapter, name), path in files.items()]
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(found, key=lambda p: (order.get(p.chapter, len(order)), p.chapter,
                                        rank.get(p.name, len(rank)), p.name))


def find(name: str) -> Practical:
    """The practical called ``name`` (a file stem, e.g. ``"perceptron"``)."""
    for practical in practicals():
        if practical.name == name:
            return practical
    known = ", ".join(p.name for p in practicals()) or "none"
    raise KeyError(f"there is no practical named {name!r}; the practicals are: {known} "
                   "(python -m nn list)")


def shown(path) -> str:
    """``path`` relative to the current folder when it is below it, else absolute."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def student_file(practical: Practical, file=None) -> tuple[Path, str]:
    """The file to grade or run, and a sentence saying why it was chosen ("" if given).

    ``file`` when given; else the workspace copy (the newer one when there are a notebook and
    a script); else the exercise in ``exercises/``.
    """
    if file is not None:
        return Path(file).expanduser().resolve(), ""
    mine = practical.workspace_files()
    if len(mine) == 2:
        newer, older = sorted(mine, key=lambda p: p.stat().st_mtime, reverse=True)
        return newer, (f"your workspace copy, the newer of your two files ({shown(older)}, "
                       "older, was not used)")
    if mine:
        return mine[0], "your workspace copy"
    return practical.exercise, (f"you have not started {practical.name}: python -m nn start "
                                f"{practical.name} makes your own copy in "
                                f"{shown(practical.workspace().parent)}/")


def student_functions(path) -> list[str]:
    """The functions a student writes in a practical: those holding a ``BEGIN SOLUTION``
    region in its solution file (``"step"``, or ``"Class.method"`` for a method).

    From an exercise (when the solution is not there), the functions holding a stub, a line
    ``raise NotImplementedError(...)``. Regions outside any function (the experiment's
    settings) are not functions to grade.
    """
    source = Path(path).read_text(encoding="utf-8")
    pattern = re.compile(r"^\s*(# BEGIN SOLUTION|raise NotImplementedError\()")
    marked = [n for n, line in enumerate(source.splitlines(), start=1) if pattern.match(line)]
    names: list[str] = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = len(names)
                visit(child, f"{prefix}{child.name}.")
                if len(names) == inner and any(
                        child.lineno <= n <= child.end_lineno for n in marked):
                    names.append(prefix + child.name)  # the innermost function holds it
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, (ast.If, ast.With, ast.Try)):
                visit(child, prefix)

    try:
        visit(ast.parse(source), "")
    except SyntaxError:
        return []
    return names


def graded_functions(practical: Practical) -> list[str]:
    """:func:`student_functions` of the practical's solution (or of its exercise, when the
    solution is not in this copy of the course)."""
    for path in (practical.solution, practical.exercise):
        if path.is_file():
            return student_functions(path)
    return []


# A practical may import a sibling of its folder (``from im2col import col2im``). While a
# file loads, its own folder is searched first, then the exercises of its chapter; in
# each, a script ``<name>.py`` and then a notebook ``<name>.ipynb``.


def _search_folders(path: Path) -> list[Path]:
    folders = [path.parent]
    chapter = EXERCISES / path.parent.name
    if chapter.is_dir() and path.parent not in (chapter, SOLUTIONS / path.parent.name):
        folders.append(chapter)  # a workspace file: the exercise of a practical not started
    return folders


def load(path, name: str | None = None):
    """Import the practical file ``path`` (a script ``.py`` or a notebook ``.ipynb``) as a
    module, without running its experiment.

    The experiment cells start with ``if __name__ == "__main__":``, and the module gets
    another name, so only the functions are defined. From a notebook, the code cells are run
    in order, IPython magics and shell lines (``%``, ``!``) left out; a cell that raises is
    left out too, and said in ``module.__nn_skipped__`` (one line per cell). A practical may
    import a sibling of its own folder (``from mlp import sigmoid``): the folder is searched
    first while it loads, and the siblings it imported are forgotten afterwards, so that a
    solution and an exercise of the same name never share a module.
    """
    from .notebooks import NotebookFinder, load_notebook

    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no practical file at {path}")
    folders = _search_folders(path)
    siblings = {p.stem for folder in folders for s in SUFFIXES for p in folder.glob(f"*{s}")}
    saved = {s: sys.modules.pop(s) for s in siblings if s in sys.modules}
    name = name or f"_practical_{abs(hash(str(path))):x}_{path.stem}"
    finder = NotebookFinder(folders)
    sys.meta_path.insert(0, finder)
    for folder in reversed(folders):
        sys.path.insert(0, str(folder))
    try:
        if path.suffix == ".ipynb":
            module = load_notebook(path, name)
        else:
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(name, None)
                raise
    finally:
        sys.meta_path.remove(finder)
        for folder in folders:
            sys.path.remove(str(folder))
        for sibling in siblings:
            sys.modules.pop(sibling, None)
        sys.modules.update(saved)
    return module


_LOADED: dict = {}


def load_once(path):
    """:func:`load`, once per file and process (the course tests share one import)."""
    path = Path(path).resolve()
    if path not in _LOADED:
        _LOADED[path] = load(path)
    return _LOADED[path]


def forget_loaded() -> None:
    """Forget the files :func:`load_once` imported (``nn check`` grades a file afresh)."""
    _LOADED.clear()
