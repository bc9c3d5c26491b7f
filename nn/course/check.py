"""``python -m nn check <practical>``: run a practical's tests on a student's file, in words.

The tests are the teacher's (``tests/course/test_<name>.py``), run by pytest on the
student's exercise. The printout groups them by the student function they check::

    perceptron: exercises/perceptron/perceptron.py

      step            correct
      update          wrong       relative error 0.32 (must be below 1e-06)
                        test_update_matches_finite_differences: AssertionError: ...
      train           not written yet: "loop over the epochs, shuffle, ..."

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


class _Collector:
    """A pytest plugin that keeps one :class:`Result` per test, grouped by student function."""

    def __init__(self):
        self.functions: dict[str, list[Result]] = {}

    def pytest_runtest_logreport(self, report):
        if report.when != "call" and report.passed:
            return  # setup and teardown that went well say nothing
        props = dict(report.user_properties)
        function = props.pop("student", "(unmarked test)")
        name = report.nodeid.split("::")[-1].split("[")[0]
        if report.skipped:
            outcome, message = "skipped", _skip_reason(report)
        elif report.passed:
            outcome, message = "passed", ""
        else:
            message = _crash_message(report)
            outcome = "missing" if message.startswith("NotImplementedError") else "failed"
        self.functions.setdefault(function, []).append(Result(name, outcome, message, props))


def _crash_message(report) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return " ".join(text.split())


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def _format_numbers(numbers: dict) -> str:
    """``{"rel_error": 0.3, "limit": 1e-6}`` -> ``relative error 0.3 (must be below 1e-06)``."""
    limit, threshold = numbers.get("limit"), numbers.get("threshold")
    parts = []
    for key, value in numbers.items():
        if key in ("limit", "threshold"):
            continue
        percent = key in _PERCENT
        shown = f"{100 * value:.1f} %" if percent else f"{value:.2g}"
        text = f"{_WORDS.get(key, key.replace('_', ' '))} {shown}"
        if limit is not None:
            text += f" (must be below {limit:.0e})"
        if threshold is not None:
            text += f" (needs at least {100 * threshold:.0f} %)" if percent else \
                f" (needs at least {threshold:g})"
        parts.append(text)
    return "; ".join(parts)


def _verdict(results: list[Result]) -> str:
    outcomes = {r.outcome for r in results}
    if "missing" in outcomes:
        return "not written yet"
    if "failed" in outcomes:
        return "wrong"
    if outcomes == {"skipped"}:
        return "not checked"
    return "correct"


def summary(title: str, functions: dict[str, list[Result]]) -> tuple[str, int]:
    """The printout, and how many functions are correct."""
    lines = [title, ""]
    width = max((len(f) for f in functions), default=8) + 2
    correct = 0
    for function, results in functions.items():
        verdict = _verdict(results)
        correct += verdict == "correct"
        hint = next((r.message for r in results if r.outcome == "missing"), "")
        first = f"  {function:<{width}}{verdict}"
        if hint:
            first += ": " + hint.removeprefix("NotImplementedError: ")
        lines.append(first)
        if verdict == "not written yet":
            continue
        for r in results:
            numbers = _format_numbers(r.numbers)
            if r.outcome == "passed" and numbers:
                lines.append(f"  {'':<{width}}  {r.test}: {numbers}")
            elif r.outcome == "failed":
                lines.append(f"  {'':<{width}}  {r.test}: {numbers + '; ' if numbers else ''}"
                             f"{r.message}")
            elif r.outcome == "skipped":
                lines.append(f"  {'':<{width}}  {r.test}: skipped ({r.message})")
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
