"""The course machinery: practicals, exercises generated from solutions, a workspace, grading.

- ``solutions/<chapter>/<name>.py`` are the practicals, complete (scripts and jupytext
  notebooks); ``exercises/`` is made from them, as scripts and notebooks, by
  ``python -m nn exercises`` (:mod:`nn.course.stubs`, :mod:`nn.course.notebooks`);
- ``python -m nn start`` copies an exercise into the student's workspace, ``work/``
  (:mod:`nn.course.workspace`);
- :mod:`nn.course.practicals` finds them and imports one (script or notebook) without running
  its experiment;
- :mod:`nn.course.check` runs a practical's tests on a student's file and says, per
  function, what passes, by how much the rest is off, and which wrong function another
  depends on;
- :func:`show` displays a figure in a notebook and saves it from a script; practicals save
  trained networks in :func:`models_dir` for later practicals.
"""
from .figures import figures_dir, models_dir, show
from .notebooks import notebook_imports
from .practicals import Practical, find, load, practicals, work_dir
from .stubs import StubError, make_exercise

__all__ = ["show", "figures_dir", "models_dir", "Practical", "find", "load", "practicals",
           "work_dir", "notebook_imports", "StubError", "make_exercise"]
