"""``python -m nn check <practical>``: run a practical's tests on a student's file, in words.

The tests are the teacher's (``tests/course/test_<name>.py``), run by pytest on the
student's exercise. The printout groups them by the student function they check::

    perceptron: exercises/perceptron/perceptron.py

      step            correct
      update          wrong
                          test_update_matches_finite_differences: relative error 0.32 (must
                          be below 1e-06); AssertionError: ...
      train           not written yet: it calls update, which is not written yet

    1 of 3 functions correct.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from pathlib import Path

from .practicals import ROOT, find

_WORDS = {"rel_error": "relative error", "accuracy": "accuracy", "recall": "recall"}
_PERCENT = ("accuracy", "recall", "precision")


@dataclass
class Result:
    test: str
    outcome: str  # "passed", "failed", "skipped", "missing" (NotImplementedError)
    message: str = ""
    numbers: dict = field(default_factory=dict)
    stub: str = ""  # for "missing": the function whose stub raised


class _Collector:
    """A pytest plugin that keeps one :class:`Result` per test, grouped by student function."""

    def __init__(self):
        self.functions: dict[str, list[Result]] = {}

    def pytest_runtest_logreport(self, report):
        if report.when != "call" and report.passed:
            return  # setup and teardown that went well say nothing
        props = dict(report.user_properties)
        function = props.pop("student", "(unmarked test)")
        stub = props.pop("stub", "")
        name = report.nodeid.split("::")[-1].split("[")[0]
        if report.skipped:
            outcome, message = "skipped", _skip_reason(report)
        elif report.passed:
            outcome, message = "passed", ""
        else:
            message = _crash_message(report)
            outcome = "missing" if message.startswith("NotImplementedError") else "failed"
        self.functions.setdefault(function, []).append(
            Result(name, outcome, message, props, stub))


def _crash_message(report) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return " ".join(text.split())


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def _shown(key, value) -> str:
    return f"{100 * value:.1f} %" if key in _PERCENT else f"{value:.2g}"


def _format_numbers(numbers: dict) -> str:
    """``{"rel_error": [0.3], "limit": [1e-6]}`` -> ``relative error 0.3 (must be below 1e-06)``.

    Each key holds the values of one test over its parametrized cases: the worst relative
    error is shown, and every other value in order.
    """
    limit, threshold = numbers.get("limit"), numbers.get("threshold")
    parts = []
    for key, values in numbers.items():
        if key in ("limit", "threshold"):
            continue
        label = _WORDS.get(key, key.replace("_", " "))
        if key == "rel_error":
            text = f"{label} {_shown(key, max(values))}"
            if len(values) > 1:
                text = f"{label} at most {_shown(key, max(values))} over {len(values)} cases"
        elif threshold is not None and len(set(threshold)) > 1 and \
                len(threshold) == len(values):  # cases with their own thresholds
            parts.append(f"{label} " + ", ".join(
                f"{_shown(key, v)} (needs at least {_shown(key, t)})"
                for v, t in zip(values, threshold)))
            continue
        else:
            text = f"{label} " + ", ".join(_shown(key, v) for v in values)
        if limit is not None:
            text += f" (must be below {max(limit):.0e})"
        if threshold is not None:
            t = min(threshold)
            text += f" (needs at least {100 * t:.0f} %)" if key in _PERCENT else \
                f" (needs at least {t:g})"
        parts.append(text)
    return "; ".join(parts)


def _merged(results: list[Result]) -> dict:
    numbers: dict[str, list] = {}
    for r in results:
        for key, value in r.numbers.items():
            numbers.setdefault(key, []).append(value)
    return numbers


def _verdict(results: list[Result]) -> str:
    outcomes = {r.outcome for r in results}
    if "missing" in outcomes:
        return "not written yet"
    if "failed" in outcomes:
        return "wrong"
    if outcomes == {"skipped"}:
        return "not checked"
    return "correct"


def _not_written(function: str, results: list[Result]) -> str:
    """The hint of the stub that stopped the tests, or which other function it belongs to."""
    missing = next(r for r in results if r.outcome == "missing")
    hint = missing.message.removeprefix("NotImplementedError: ")
    if missing.stub and missing.stub != function:
        return f"it calls {missing.stub}, which is not written yet"
    return hint


def summary(title: str, functions: dict[str, list[Result]]) -> tuple[str, int]:
    """The printout, and how many functions are correct."""
    lines = [title, ""]
    width = max((len(f) for f in functions), default=8) + 2
    pad = " " * (width + 4)
    correct = 0
    for function, results in functions.items():
        verdict = _verdict(results)
        correct += verdict == "correct"
        if verdict == "not written yet":
            lines.append(f"  {function:<{width}}{verdict}: {_not_written(function, results)}")
            continue
        lines.append(f"  {function:<{width}}{verdict}")
        by_test: dict[str, list[Result]] = {}
        for r in results:
            by_test.setdefault(r.test, []).append(r)
        for test, runs in by_test.items():
            passed = [r for r in runs if r.outcome == "passed"]
            numbers = _format_numbers(_merged(passed))
            if passed and numbers:
                lines.append(f"{pad}{test}: {numbers}")
            for r in runs:
                if r.outcome == "failed":
                    numbers = _format_numbers(_merged([r]))
                    lines.append(f"{pad}{test}: {numbers + '; ' if numbers else ''}{r.message}")
                elif r.outcome == "skipped":
                    lines.append(f"{pad}{test}: skipped ({r.message})")
    lines += ["", f"{correct} of {len(functions)} functions correct."]
    return "\n".join(lines), correct


def check(name: str, file=None, verbose: bool = False) -> int:
    """Run practical ``name``'s tests on ``file`` (default: its exercise) and print the verdict.

    Returns 0 when every function is correct, 1 otherwise, 2 when nothing could be checked.
    """
    import pytest

    try:
        practical = find(name)
    except KeyError as exc:
        print(f"error: {exc.args[0]}")
        return 2
    path = Path(file).resolve() if file else practical.exercise
    if not path.is_file():
        print(f"error: no file at {path}; give the path of your file with --file, or make the "
              "exercises with: python -m nn exercises")
        return 2
    if not practical.tests.is_file():
        print(f"error: practical {name!r} has no tests yet ({practical.tests} is missing)")
        return 2
    collector = _Collector()
    args = [str(practical.tests), "-q", "-p", "no:cacheprovider", f"--impl-file={path}",
            f"--rootdir={ROOT}"]
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        code = pytest.main(args, plugins=[collector])
    if verbose or not collector.functions:
        print(output.getvalue())
    if not collector.functions:
        print(f"error: pytest ran no test of {practical.tests} (exit code {int(code)})")
        return 2
    try:
        shown = path.relative_to(Path.cwd())
    except ValueError:
        shown = path
    text, correct = summary(f"{name}: {shown}", collector.functions)
    print(text)
    return 0 if correct == len(collector.functions) else 1
