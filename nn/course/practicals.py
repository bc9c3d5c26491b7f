"""Where the practicals are, and how to import one without running its experiment.

A practical is one file ``solutions/<chapter>/<name>.py`` (files starting with ``_`` are
helpers, not practicals). Its exercise is ``exercises/<chapter>/<name>.py``, its tests
``tests/course/test_<name>.py``, and the first title of its first markdown cell
(``# # Title``) is the line that ``python -m nn list`` prints.
"""
from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"
COURSE_TESTS = ROOT / "tests" / "course"
CHAPTERS = ("perceptron", "mlp", "cnn", "autoencoder", "detection", "gpu")
# the teaching order inside a chapter; a practical not listed comes after, by name
ORDER = ("perceptron", "mlp", "spectra", "wine",
         "filters", "im2col", "conv_layers", "lenet", "inside", "spectra_cnn", "augmentation",
         "autoencoder", "denoiser",
         "detection_metrics", "sliding_window", "yolo_loss", "radio_yolo")


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
    def tests(self) -> Path:
        return COURSE_TESTS / f"test_{self.name}.py"


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
    """Every practical under ``solutions/``, in the course's chapter order."""
    if not SOLUTIONS.is_dir():
        return []
    order = {chapter: i for i, chapter in enumerate(CHAPTERS)}
    found = [Practical(path.stem, path.parent.name, title_of(path))
             for path in SOLUTIONS.glob("*/*.py") if not path.name.startswith("_")]
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


def load(path, name: str | None = None):
    """Import the practical file ``path`` as a module, without running its experiment.

    The experiment cells start with ``if __name__ == "__main__":``, and the module gets
    another name, so only the functions are defined. A practical may import a sibling of
    its own folder (``from mlp import sigmoid``): the folder is searched first while it
    loads, and the siblings it imported are forgotten afterwards, so that a solution and an
    exercise of the same name never share a module.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no practical file at {path}")
    folder = path.parent
    siblings = {p.stem for p in folder.glob("*.py")}
    saved = {s: sys.modules.pop(s) for s in siblings if s in sys.modules}
    name = name or f"_practical_{abs(hash(str(path))):x}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(folder))
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        sys.path.remove(str(folder))
        for sibling in siblings:
            sys.modules.pop(sibling, None)
        sys.modules.update(saved)
    return module
