"""Course tests run on the solutions, on generated stubs, or on a student's file.

Each test module names its practical (``PRACTICAL = "perceptron"``) and takes the fixture
``module``, the practical imported without its experiment. By default every test runs twice:

- ``[solution]`` on ``solutions/``: it must pass;
- ``[stub]`` on the exercise generated from the solution (in a temporary folder, so a
  student's files never matter here): it must raise ``NotImplementedError``, because a test
  that passes on a stub checks nothing.

``pytest --impl exercises`` runs them once, normally, on the student's file (the workspace
copy in ``work/``, else ``exercises/``), and ``--impl-file PATH`` on one file, a script or a
notebook (what ``python -m nn check`` does).

Every test is marked ``@pytest.mark.student("<function>")`` with the function it checks, and
reports its numbers through the ``report`` fixture, so that ``nn check`` can say which
function is wrong, in which case and by how much::

    report(rel_error=e, limit=1e-6)          # a relative error, with its limit
    report(abs_error=e, limit=1e-12)         # an absolute difference, with its limit
    report(accuracy=a, threshold=0.8)        # a score, with the least it must reach
    report(case="stride 2, padding 1")       # the case in words (default: its parameters)
    report(accuracy=a, threshold=0.9, hidden=True)   # never printed (an exam's test set)

``nn check`` prints a hidden number as "hidden" (and whether it reached its threshold), and
leaves out the assertion message of a test that reported one, so a test can keep the exam's
held-out score to itself. Tell which tensor a gradient test found wrong in its assertion
message: ``nn check`` prints assertion messages in full.

Under ``nn check`` the functions of the practical are watched while the tests run
(:mod:`nn.course.calls`), so that a failure caused by another wrong function is reported as
"depends on ...".
"""
from __future__ import annotations

import functools

import pytest

from nn.course import find
from nn.course.calls import record_calls
from nn.course.practicals import SOLUTIONS, graded_functions, load_once, student_file
from nn.course.stubs import exercise_files


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


def _marked_functions(request) -> set:
    return {mark.args[0] for item in request.session.items if item.module is request.module
            for mark in item.iter_markers("student") if mark.args}


@pytest.fixture
def module(request, impl):
    """The practical of this test file, imported from solutions/, a stub or the student's
    file (a script or a notebook)."""
    practical = find(request.module.PRACTICAL)
    if impl in ("solution", "stub") and not practical.solution.is_file():
        pytest.skip(f"the solution of {practical.name} is not in this copy of the course")
    if impl == "solution":
        path = practical.solution
    elif impl == "stub":
        path = request.getfixturevalue("stub_tree") / practical.chapter / f"{practical.name}.py"
    else:
        path, _ = student_file(practical, request.config.getoption("impl_file"))
        if not path.is_file():
            pytest.fail(f"no file at {path}: python -m nn start {practical.name} makes your "
                        "copy of the exercise", pytrace=False)
    loaded = load_once(path)
    if impl == "exercise":  # watch who calls whom, for "depends on ..." (nn check)
        record_calls(loaded, {*graded_functions(practical), *_marked_functions(request)})
    return loaded


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
    """``report(rel_error=e, limit=1e-6)``, ``report(abs_error=e, limit=1e-12)`` or
    ``report(accuracy=a, threshold=0.8)``: numbers that ``python -m nn check`` prints next to
    the function (call it before asserting). ``case="..."`` names the case in words;
    ``hidden=True`` keeps the numbers of this call out of every printout (``nn check`` says
    only whether they reached their threshold)."""
    def record(*, case=None, hidden=False, **numbers):
        if case is not None:
            request.node.user_properties.append(("case", str(case)))
        for key, value in numbers.items():
            request.node.user_properties.append((key, float(value)))
            if hidden and key not in ("limit", "threshold"):
                request.node.user_properties.append(("hidden", key))
    return record
