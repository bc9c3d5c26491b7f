"""The course machinery: practicals, exercises generated from solutions, and grading.

- ``solutions/<chapter>/<name>.py`` are the practicals, complete (scripts and jupytext
  notebooks); ``exercises/`` is made from them by ``python -m nn exercises``
  (:mod:`nn.course.stubs`);
- :mod:`nn.course.practicals` finds them and imports one without running its experiment;
- :mod:`nn.course.check` runs a practical's tests on a student's file and says, per
  function, what passes and by how much the rest is off;
- :func:`show` displays a figure in a notebook and saves it from a script; practicals save
  trained networks in :func:`models_dir` for later practicals.
"""
from .figures import figures_dir, models_dir, show
from .practicals import Practical, find, load, practicals
from .stubs import StubError, make_exercise

__all__ = ["show", "figures_dir", "models_dir", "Practical", "find", "load", "practicals", "StubError", "make_exercise"]
