"""Course tests run on the solutions, on generated stubs, or on a student's exercise.

Each test module names its practical (``PRACTICAL = "perceptron"``) and takes the fixture
``module``, the practical imported without its experiment. By default every test runs twice:

- ``[solution]`` on ``solutions/``: it must pass;
- ``[stub]`` on the exercise generated from the solution (in a temporary folder, so a
  student's edits in ``exercises/`` never matter here): it must raise
  ``NotImplementedError``, because a test that passes on a stub checks nothing.

``pytest --impl exercises`` runs them once, normally, on the student's files in
``exercises/``, and ``--impl-file PATH`` on one file (what ``python -m nn check`` does).
Every test is marked ``@pytest.mark.student("<function>")`` with the student function it
checks, and reports its numbers through the ``report`` fixture, so that ``nn check`` can say
which function is wrong and by how much.
"""
from __future__ import annotations

import functools
from pathlib import Path

import pytest

from nn.course import find, load
from nn.course.practicals import SOLUTIONS
from nn.course.stubs import exercise_files

_loaded: dict[Path, object] = {}


def pytest_generate_tests(metafunc):
    if "module" not in metafunc.fixturenames:
        return
    config = metafunc.config
    student = config.getoption("impl") == "exercises" or config.getoption("impl_file")
    metafunc.parametrize("impl", ["exercise"] if student else ["solution", "stub"])


def _expect_not_implemented(test):
    @functools.wraps(test)
    def run(*args, **kwargs):
        try:
            test(*args, **kwargs)
        except NotImplementedError:
            return
        pytest.fail("this test passes on the exercise stub, so it checks nothing: make it call "
                    "the student function it is marked with", pytrace=False)
    return run


def pytest_collection_modifyitems(items):
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("impl") == "stub":
            item.obj = _expect_not_implemented(item.obj)


@pytest.fixture(scope="session")
def stub_tree(tmp_path_factory):
    """The exercises generated from solutions/, in a temporary folder."""
    root = tmp_path_factory.mktemp("stubs")
    for rel, data in exercise_files(SOLUTIONS).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


@pytest.fixture
def module(request, impl):
    """The practical of this test file, imported from solutions/, a stub or exercises/."""
    practical = find(request.module.PRACTICAL)
    if impl == "solution":
        path = practical.solution
    elif impl == "stub":
        path = request.getfixturevalue("stub_tree") / practical.chapter / f"{practical.name}.py"
    else:
        given = request.config.getoption("impl_file")
        path = Path(given).resolve() if given else practical.exercise
        if not path.is_file():
            pytest.fail(f"no exercise file at {path}; python -m nn exercises makes one from "
                        "the solution", pytrace=False)
    if path not in _loaded:
        _loaded[path] = load(path)
    return _loaded[path]


@pytest.fixture(autouse=True)
def _student_function(request):
    """Record which student function the test checks (``nn check`` groups by it)."""
    marker = request.node.get_closest_marker("student")
    if marker is None or not marker.args:
        pytest.fail("mark every course test with @pytest.mark.student('<function>')",
                    pytrace=False)
    request.node.user_properties.append(("student", marker.args[0]))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Name the function whose stub raised, so ``nn check`` can tell "not written yet" from
    "calls a function that is not written yet"."""
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(NotImplementedError):
        report.user_properties = [*report.user_properties,
                                  ("stub", call.excinfo.traceback[-1].name)]
    return report


@pytest.fixture
def report(request):
    """``report(rel_error=e, limit=1e-6)`` or ``report(accuracy=a, threshold=0.8)``: numbers
    that ``python -m nn check`` prints next to the function (call it before asserting)."""
    def record(**numbers):
        for key, value in numbers.items():
            request.node.user_properties.append((key, float(value)))
    return record
