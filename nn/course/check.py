"""``python -m nn check <practical>``: run a practical's tests on a student's file, in words.

The tests are the teacher's (``tests/course/test_<name>.py``), run by pytest on the
student's file: ``--file F`` (a script or a notebook), else the workspace copy, else the
exercise. The printout groups them by the function they check, lists only what fails, case
by case, and says when a function fails because another one it calls is wrong::

    perceptron: graded work/perceptron/perceptron.ipynb (your workspace copy)

      add_bias  wrong: 3 of 4 cases wrong
                  appends a column of minus one: 3 of 3 cases wrong
                    shape=(1, 1): 1 of 1 values differ, e.g. at [0, 0]: 1.0 instead of -1.0
                      (largest absolute difference 2, relative 2)
                    ...
      step      wrong: 1 of 3 cases wrong
                  fires strictly above the threshold: ValueError: ...
                    at work/perceptron/perceptron.ipynb, cell 3, line 35, in step:
                        a = int(h > threshold)
      forward   not written yet: weigh the inputs (a matrix product) and pass the sums ...
      predict   depends on add_bias, which is wrong: fix add_bias first

    0 of 4 functions correct.

Which function a test called is recorded while it runs (:mod:`nn.course.calls`): a function
whose every failing case called another wrong one "depends on" it. Numbers come from the
tests' ``report`` fixture; a number reported ``hidden`` is never printed.

Only the functions the student writes are graded (those holding a ``BEGIN SOLUTION`` region
in the solution); a test of another function is listed apart, under "given".
"""
from __future__ import annotations

import contextlib
import io
import math
import re
import textwrap
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .calls import CALLS
from .practicals import (EXERCISES, ROOT, _search_folders, find, forget_loaded,
                         graded_functions, load_once, shown, student_file)

WIDTH = 100
CASES_SHOWN = 3  # failing cases listed per test, without --verbose
_WORDS = {"rel_error": "relative error", "abs_error": "absolute difference",
          "error": "error"}
_PERCENT = ("accuracy", "recall", "precision")

# The optional dependencies of the course, by module name: the extra of pyproject.toml that
# installs each (tests/test_workspace.py checks this against pyproject.toml).
EXTRAS = {"albumentations": "augment", "cupy": "gpu", "cupyx": "gpu", "jupytext": "notebooks",
          "nbclient": "notebooks", "ipykernel": "notebooks"}


def install_hint(module: str) -> str | None:
    """``pip install -e ".[augment]"`` for a module of an extra, else ``None``."""
    extra = EXTRAS.get(module.split(".")[0])
    return f'pip install -e ".[{extra}]"' if extra else None


def _missing_module(text: str) -> str | None:
    match = re.search(r"No module named '([\w.]+)'|could not import '([\w.]+)'", text)
    return (match[1] or match[2]) if match else None


def _missing_words(module: str) -> str:
    hint = install_hint(module)
    return (f"needs {module}, which is not installed here: {hint}" if hint else
            f"needs the module {module}, which is not installed here")


@dataclass
class Result:
    """One run of one test (one case of a parametrized test)."""

    test: str
    outcome: str  # "passed", "failed", "skipped", "missing" (NotImplementedError)
    message: str = ""
    numbers: dict = field(default_factory=dict)
    stub: str = ""  # for "missing": the function whose stub raised
    stub_of: str = ""  # the other practical it belongs to (from im2col import col2im)
    case: str = ""
    where: str = ""  # the student's line an exception came from
    detail: str = ""  # what --verbose adds
    hidden: set = field(default_factory=set)
    calls: dict = field(default_factory=dict)  # function -> "returned" or an exception name


# messages, compact


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


def _array_text(text: str) -> str:
    """``array([[1., 2.],\\n  [3., 4.]])`` -> ``[[1., 2.], [3., 4.]]``, on one line."""
    text = " ".join(text.split())
    if text.startswith("array("):
        text = re.sub(r"(, dtype=\w+)?\)$", "", text[len("array("):])
    return _one_line(text.replace("[ ", "["), 200)


def _short_number(text: str) -> str:
    """``1.2514604421867865`` -> ``1.251``; anything else as it is."""
    try:
        value = float(text)
    except ValueError:
        return text.strip()
    if not math.isfinite(value) or (value == int(value) and "e" not in text):
        return text.strip().rstrip(".")
    return f"{value:.4g}"


def _numpy_message(text: str, verbose: bool) -> str | None:
    """A numpy.testing assertion in words, or ``None`` if ``text`` is not one::

        the test's message: 3 of 6 values differ, e.g. at [0, 1]: 1 instead of 1.1
        (largest absolute difference 0.5, relative 0.09)
    """
    lines = text.strip("\n").splitlines()
    if not lines or not re.match(r"(Not equal to tolerance|Arrays are not|Items are not equal)",
                                 lines[0]):
        return None
    context, shape, count, mismatches = [], "", "", []
    absolute = relative = actual = desired = ""
    mode = "text"
    for line in lines[1:]:
        stripped = line.strip()
        if not stripped:
            continue
        if match := re.match(r"\(shapes (.*?), (\(.*?\)) mismatch\)", stripped):
            shape = f"shape {match[1]} instead of {match[2]}"
        elif match := re.match(r"Mismatched elements: (\d+) / (\d+)", stripped):
            count = f"{match[1]} of {match[2]} values differ"
        elif re.match(r"(Mismatch at ind|First \d+ mismatches)", stripped):
            mode = "indices"
        elif match := re.match(r"(\[[\d, ]*\]): (.*) \(ACTUAL\), (.*) \(DESIRED\)", stripped):
            mismatches.append(f"at {match[1]}: {_short_number(match[2])} instead of "
                              f"{_short_number(match[3])}")
        elif match := re.match(r"Max absolute difference(?: among violations)?: (\S+)",
                               stripped):
            absolute = _short_number(match[1])
        elif match := re.match(r"Max relative difference(?: among violations)?: (\S+)",
                               stripped):
            relative = _short_number(match[1])
        elif match := re.match(r"(ACTUAL|x): (.*)", stripped):
            mode, actual = "actual", match[2]
        elif match := re.match(r"(DESIRED|y): (.*)", stripped):
            mode, desired = "desired", match[2]
        elif mode == "actual":
            actual += " " + stripped
        elif mode == "desired":
            desired += " " + stripped
        elif mode == "text":
            context.append(stripped)  # the test's own message (err_msg), or item=...
    facts = shape or count
    if mismatches:
        shown_ = mismatches if verbose else mismatches[:1]
        facts += (", e.g. " if facts else "") + "; ".join(shown_)
    if absolute:
        facts += f" (largest absolute difference {absolute}" + \
            (f", relative {relative})" if relative else ")")
    if (not facts or verbose) and actual:
        facts += ("; " if facts else "") + \
            f"got {_array_text(actual)}, expected {_array_text(desired)}"
    context = " ".join(context).rstrip(":")
    return (f"{context}: " if context else "") + facts


def _assertion_message(text: str, verbose: bool, numbers: bool = False) -> str:
    """A failed assertion of a test in words: its message in full, numpy's and
    ``pytest.approx``'s in short. A bare ``assert x < y`` is left out when the test reported
    its numbers (``numbers``), which say the same in words."""
    text = text.replace("Use -v to get more diff", "--verbose shows more")
    numpy_text = _numpy_message(text, verbose)
    if numpy_text is not None:
        return numpy_text
    # pytest's rewritten assert: "message\nassert a == b\n +  where ..."
    message, _, explanation = text.partition("\nassert ")
    if message.startswith("assert "):
        message, explanation = "", message[len("assert "):]
    approx = re.search(r"comparison failed\s+Obtained: (.*?)\s+Expected: (.*?)\s*$",
                       explanation, flags=re.S)
    said = f"got {_one_line(approx[1], 80)}, expected {_one_line(approx[2], 80)}" \
        if approx else ""
    if message.strip():
        inner = _numpy_message(message, verbose)  # assert_allclose's err_msg in a message
        text = inner if inner is not None else " ".join(message.split())
        if said:
            text += f": {said}"
        elif verbose and explanation:
            text += f" (assert {' '.join(explanation.split())})"
        return text
    if said:
        return said
    if numbers and not verbose:
        return ""
    return _one_line(f"assert {explanation}" if explanation else text, 300)


# the student's code in a traceback


def _student_frame(tb, folders) -> traceback.FrameSummary | None:
    """The innermost frame of ``tb`` in one of the student's files (a script of the
    folders, or a cell of one of their notebooks)."""
    found = None
    for frame in traceback.extract_tb(tb):
        base = frame.filename.split(", cell ")[0]
        if Path(base).parent in folders:
            found = frame
    return found


def _where(frame: traceback.FrameSummary) -> str:
    base, _, cell = frame.filename.partition(", cell ")
    place = f"{shown(base)}, cell {cell}" if cell else shown(base)
    code = (frame.line or "").strip()
    return f"{place}, line {frame.lineno}, in {frame.name}: {code}"


# the grader, a pytest plugin


def _case_words(item) -> str:
    """The parameters of a parametrized test's case: the ids its author gave, else
    ``name=value`` pairs."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return ""
    parts = []
    for mark in item.iter_markers("parametrize"):
        if not mark.args:
            continue
        names = mark.args[0]
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        names = [n for n in names if n in callspec.params]
        if not names:
            continue
        index = callspec.indices.get(names[0])
        values, ids = list(mark.args[1]) if len(mark.args) > 1 else [], mark.kwargs.get("ids")
        value = values[index] if index is not None and index < len(values) else None
        given = getattr(value, "id", None)
        if given is None and isinstance(ids, (list, tuple)) and index < len(ids):
            given = ids[index]
        if given is not None:
            parts.append(str(given))
        else:
            parts.append(", ".join(f"{n}={_value_words(callspec.params[n])}" for n in names))
    return ", ".join(reversed(parts))  # the decorator written first, first


def _value_words(value) -> str:
    if isinstance(value, type):               # a class (np.float32): its shape is a descriptor
        return value.__name__
    shape = getattr(value, "shape", None)
    if shape is not None and not isinstance(value, (int, float)):
        return f"array{tuple(shape)}"
    if callable(value) and hasattr(value, "__name__"):
        return value.__name__
    if isinstance(value, float):
        return f"{value:g}"
    return _one_line(repr(value) if not isinstance(value, str) else value, 40)


class Grader:
    """A pytest plugin that keeps one :class:`Result` per test run, grouped by the function
    it checks."""

    def __init__(self, graded: Path, test_file: Path, only=None, verbose=False):
        self.functions: dict[str, list[Result]] = {}
        self.graded = graded
        self.folders = set(_search_folders(graded))
        self.test_file = test_file
        self.only = set(only or ())
        self.verbose = verbose
        self.collect_problems: list[str] = []
        self._case, self._excinfo = "", None

    def pytest_collectreport(self, report):
        if report.failed:
            self.collect_problems.append(str(report.longrepr))
        elif report.skipped:
            longrepr = report.longrepr
            reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            self.collect_problems.append(reason.removeprefix("Skipped: "))

    def pytest_collection_modifyitems(self, config, items):
        if not self.only:
            return
        keep, drop = [], []
        for item in items:
            mark = item.get_closest_marker("student")
            (keep if mark and mark.args and mark.args[0] in self.only else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep

    def pytest_runtest_setup(self, item):
        CALLS.clear()
        self._case = _case_words(item)
        self._excinfo = None

    def pytest_runtest_makereport(self, item, call):
        if call.when == "call" or call.excinfo is not None:
            self._excinfo = call.excinfo

    def pytest_runtest_logreport(self, report):
        if report.when != "call" and report.passed:
            return  # setup and teardown that went well say nothing
        props = dict(report.user_properties)
        function = props.pop("student", "(unmarked test)")
        props.pop("stub", None)
        case = props.pop("case", "")
        hidden = {value for key, value in report.user_properties if key == "hidden"}
        props.pop("hidden", None)
        numbers = {k: v for k, v in props.items() if isinstance(v, (int, float))}
        name = report.nodeid.split("::")[-1].split("[")[0]
        result = Result(name, "passed", numbers=numbers, case=case or self._case, hidden=hidden,
                        calls=dict(CALLS))
        excinfo = self._excinfo
        if report.skipped:
            result.outcome, result.message = "skipped", _skip_reason(report)
        elif report.failed:
            try:
                self._describe_failure(result, report, excinfo)
            except Exception as exc:  # never lose a failure to a bug of the printer
                result.outcome = "failed"
                result.message = _one_line(f"{_crash_text(report)} (nn check could not "
                                           f"describe it: {type(exc).__name__}: {exc})", 400)
        self.functions.setdefault(function, []).append(result)
        self._excinfo = None

    def _describe_failure(self, result: Result, report, excinfo) -> None:
        result.outcome = "failed"
        exc = excinfo.value if excinfo is not None else None
        if exc is None:
            result.message = _one_line(_crash_text(report), 300)
            return
        frames = traceback.extract_tb(excinfo.tb)
        stub = _student_frame(excinfo.tb, self.folders)
        if isinstance(exc, NotImplementedError) and stub is not None and \
                (stub.filename, stub.lineno) == (frames[-1].filename, frames[-1].lineno):
            result.outcome = "missing"   # a stub: the student's or an earlier practical's
            result.message = str(exc)
            result.stub = stub.name
            other = Path(stub.filename.split(", cell ")[0])
            if other.stem != self.graded.stem:
                result.stub_of = other.stem
            return
        if isinstance(exc, AttributeError) and \
                getattr(getattr(exc, "obj", None), "__file__", None) == str(self.graded):
            result.message = (f"your file has no {exc.name}: the tests need it under this "
                              "name (in a notebook, is its cell there?)")
            return
        frame = _student_frame(excinfo.tb, self.folders)
        in_test = traceback.extract_tb(excinfo.tb)[-1].filename == str(self.test_file)
        if isinstance(exc, AssertionError) and (frame is None or in_test):
            result.message = _assertion_message(str(exc), self.verbose, bool(result.numbers))
        else:
            kind = type(exc).__name__
            text = _one_line(f"{kind}: {exc}", 300)
            module = _missing_module(str(exc)) if isinstance(exc, ImportError) else None
            if module:
                text = f"{kind}: {_missing_words(module)}"
            elif exc.__class__.__module__ == "_pytest.outcomes":  # pytest.fail(...)
                text = _one_line(str(exc), 300)
            result.message = text
            if frame is not None:
                result.where = _where(frame)
            elif not module:
                result.message += " (raised in the test, on what your function returned)"
        if self.verbose and not result.hidden:
            result.detail = report.longreprtext


def _crash_text(report) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    return crash.message if crash is not None else str(report.longrepr)


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    reason = reason.removeprefix("Skipped: ")
    module = _missing_module(reason)
    return _missing_words(module) if module else reason


# the verdicts


def _shown_number(key, value) -> str:
    return f"{100 * value:.1f} %" if key.endswith(_PERCENT) else f"{value:.2g}"


def _format_numbers(numbers: dict, hidden=()) -> str:
    """``{"rel_error": [0.3], "limit": [1e-6]}`` -> ``relative error 0.3 (must be below
    1e-06)``. Each key holds the values of one test over its cases: the worst error is shown,
    and every other value in order. A hidden key says only whether it reached its threshold.
    """
    limit, threshold = numbers.get("limit"), numbers.get("threshold")
    parts = []
    for key, values in numbers.items():
        if key in ("limit", "threshold"):
            continue
        label = _WORDS.get(key, key.replace("_", " "))
        if key in hidden:
            if threshold is not None:
                reached = all(v >= t for v, t in zip(values, threshold))
                needed = ", ".join(_shown_number(key, t) for t in dict.fromkeys(threshold))
                parts.append(f"{label} hidden ({'reached' if reached else 'below'} the "
                             f"required {needed})")
            elif limit is not None:
                below = all(v < t for v, t in zip(values, limit))
                parts.append(f"{label} hidden ({'below' if below else 'above'} the limit "
                             f"{max(limit):.0e})")
            else:
                parts.append(f"{label} hidden")
            continue
        if key.endswith("error") or key.endswith("difference"):
            text = f"{label} {_shown_number(key, max(values))}"
            if len(values) > 1:
                text = f"{label} at most {_shown_number(key, max(values))} over {len(values)} cases"
        elif threshold is not None and len(set(threshold)) > 1 and \
                len(threshold) == len(values):  # cases with their own thresholds
            parts.append(f"{label} " + ", ".join(
                f"{_shown_number(key, v)} (needs at least {_shown_number(key, t)})"
                for v, t in zip(values, threshold)))
            continue
        else:
            text = f"{label} " + ", ".join(_shown_number(key, v) for v in values)
        if limit is not None:
            text += f" (must be below {max(limit):.0e})"
        if threshold is not None:
            t = min(threshold)
            text += f" (needs at least {100 * t:.0f} %)" if key.endswith(_PERCENT) else \
                f" (needs at least {t:g})"
        parts.append(text)
    return "; ".join(parts)


def _merged(results: list[Result]) -> dict:
    numbers: dict[str, list] = {}
    for r in results:
        for key, value in r.numbers.items():
            numbers.setdefault(key, []).append(value)
    return numbers


def _raw_verdict(function: str, results: list[Result]) -> str:
    outcomes = {r.outcome for r in results}
    if "missing" in outcomes:
        own = any(r.outcome == "missing" and r.stub in (function, function.split(".")[-1])
                  for r in results)
        return "not written yet" if own else "waits"
    if "failed" in outcomes:
        return "wrong"
    if outcomes == {"skipped"}:
        return "not checked"
    return "correct"


def _name_in(name: str, names) -> str | None:
    """``name`` as spelled in ``names`` (a method may be marked by its bare name)."""
    for other in names:
        if other == name or other.split(".")[-1] == name or name.split(".")[-1] == other:
            return other
    return None


def _dependencies(functions: dict[str, list[Result]], raw: dict[str, str]) -> dict[str, list]:
    """``function -> [the wrong functions it depends on]`` for each function whose every
    failing case called another function that is wrong (or not written) itself; those it
    depends on are the ones to fix first."""
    bad = {f for f, v in raw.items() if v in ("wrong", "not written yet")}
    culprits: dict[str, set] = {}
    for function, results in functions.items():
        if raw[function] != "wrong":
            continue
        failing = [r for r in results if r.outcome == "failed"]
        sets = []
        for r in failing:
            called = {_name_in(c, functions) for c in r.calls}
            sets.append({c for c in called if c and c != function and c in bad})
        if failing and all(sets):
            culprits[function] = set().union(*sets)
    # a function counts as the cause when it is wrong by itself (not explained by others);
    # in a cycle of mutual calls, each is reported wrong
    roots = bad - set(culprits)
    result = {}
    for function, causes in culprits.items():
        reached, todo = set(), list(causes)
        while todo:
            other = todo.pop()
            if other in reached:
                continue
            reached.add(other)
            todo.extend(culprits.get(other, ()))
        first = sorted(reached & roots, key=list(functions).index)
        if first:
            result[function] = first
    return result


def _and(names) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _describe_test(test: str, function: str) -> str:
    words = test.removeprefix("test_")
    bare = function.split(".")[-1]
    words = words.removeprefix(f"{bare}_") if words != bare else words
    return words.replace("_", " ")


def _wrap(text: str, indent: str, then: str | None = None) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent,
                         subsequent_indent=then if then is not None else indent + "  ",
                         break_on_hyphens=False, break_long_words=False) or [indent]


def _run_lines(r: Result, indent: str, lead: str = "") -> list[str]:
    """One failing run: its numbers and message, then where in the student's code it
    raised, and that line."""
    numbers = _format_numbers(_merged([r]), r.hidden)
    # the assertion message of a test with a hidden number may hold that number: left out
    message = "" if r.hidden and not r.where else r.message
    text = "; ".join(t for t in (numbers, message) if t) or "failed"
    lines = _wrap(lead + text, indent)
    if r.where:
        place, _, code = r.where.partition(": ")
        lines += _wrap(f"at {place}:", indent + "  ") + [f"{indent}      {code}"]
    return lines


def _function_lines(function: str, results: list[Result], verdict: str, pad: str,
                    verbose: bool) -> list[str]:
    """The lines under a function: each test with failing cases and each failing case (the
    cases that fail the same way together); with ``verbose``, the passing ones' numbers and
    pytest's report of each failure too."""
    lines = []
    by_test: dict[str, list[Result]] = {}
    for r in results:
        by_test.setdefault(r.test, []).append(r)
    for test, runs in by_test.items():
        failed = [r for r in runs if r.outcome == "failed"]
        skipped = [r for r in runs if r.outcome == "skipped"]
        passed = [r for r in runs if r.outcome == "passed"]
        words = _describe_test(test, function)
        hidden = set().union(*(r.hidden for r in passed)) if passed else set()
        if verbose and passed and (numbers := _format_numbers(_merged(passed), hidden)):
            lines += _wrap(f"{words}: passed; {numbers}", pad)
        if skipped and not failed:
            lines += _wrap(f"{words}: not checked ({skipped[0].message})", pad)
        if not failed:
            continue
        if len(runs) == 1 and not failed[0].case:
            lines += _run_lines(failed[0], pad, f"{words}: ")
        else:
            count = f"{len(failed)} of {len(runs)} cases wrong" if len(runs) > 1 else ""
            lines += _wrap(f"{words}{': ' + count if count else ''}", pad)
            groups: dict[tuple, list[Result]] = {}
            for r in failed:  # the cases that fail the same way, together
                key = (r.message, r.where) if r.where or not r.numbers else (id(r),)
                groups.setdefault(key, []).append(r)
            shown_groups = list(groups.values())
            if not verbose:
                shown_groups = shown_groups[:CASES_SHOWN]
            for group in shown_groups:
                cases = "; ".join(r.case or "case" for r in group)
                lines += _run_lines(group[0], pad + "  ", f"{cases}: ")
            left = sum(len(g) for g in groups.values()) - sum(len(g) for g in shown_groups)
            if left:
                lines += _wrap(f"... and {left} more (--verbose lists them all)", pad + "  ")
        if verbose:
            for r in failed:
                if r.detail:
                    lines += [pad + "  | " + line for line in r.detail.splitlines()]
    return lines


def summary(title: str, functions: dict[str, list[Result]], graded=None,
            verbose: bool = False, notes=(), only=None) -> tuple[str, int, int]:
    """The printout, how many graded functions are correct, and how many are graded.

    ``graded`` lists the functions the student writes (in the order of the file); a tested
    function not among them is listed apart as given. ``None``: every function is graded.
    """
    graded_names = list(graded) if graded else list(functions)
    order = [f for g in graded_names if (f := _name_in(g, functions))]
    mine = order + [f for f in functions if f not in order and not graded]
    given = [f for f in functions if f not in mine]
    raw = {f: _raw_verdict(f, functions[f]) for f in functions}
    depends = _dependencies(functions, raw)
    lines = [title, *[f"  ({note})" for note in notes], ""]
    width = max((len(f) for f in functions), default=8) + 2
    pad = " " * (width + 4)
    correct = 0

    def verdict_lines(function):
        results = functions[function]
        verdict = raw[function]
        if verdict == "not written yet":
            hint = next(r.message for r in results if r.outcome == "missing"
                        and r.stub in (function, function.split(".")[-1]))
            return _wrap(f"{function:<{width}}not written yet: {hint}", "  ", pad), False
        if verdict == "waits":
            missing = next(r for r in results if r.outcome == "missing")
            stub = missing.stub + (f" of your {missing.stub_of}" if missing.stub_of else "")
            return _wrap(f"{function:<{width}}not checked yet: it calls {stub}, which is not "
                         "written yet", "  ", pad), False
        if function in depends:
            causes = depends[function]
            text = (f"depends on {causes[0]}, which is wrong: fix {causes[0]} first"
                    if len(causes) == 1 else
                    f"depends on {_and(causes)}, which are wrong: fix them first")
            return _wrap(f"{function:<{width}}{text}", "  ", pad), False
        if verdict == "correct":
            extra = []
            if verbose:
                extra = _function_lines(function, results, verdict, pad, verbose)
            return [f"  {function:<{width}}correct", *extra], True
        if verdict == "not checked":
            reason = results[0].message
            return _wrap(f"{function:<{width}}not checked: {reason}", "  ", pad), False
        runs = len(results)
        failed = sum(r.outcome == "failed" for r in results)
        head = f"  {function:<{width}}wrong" + (f": {failed} of {runs} cases wrong"
                                                 if runs > 1 else "")
        return [head, *_function_lines(function, results, verdict, pad, verbose)], False

    for function in mine:
        text, ok = verdict_lines(function)
        correct += ok
        lines += text
    missing_tests = [g for g in (graded or []) if not _name_in(g, functions)]
    if given:
        lines += ["", "Given by the practical (not graded; checked because your functions "
                      "use them):"]
        for function in given:
            lines += verdict_lines(function)[0]
    if missing_tests and not only:
        lines += ["", f"(no test checks {_and(missing_tests)})"]
    lines += ["", f"{correct} of {len(mine)} functions correct."]
    return "\n".join(lines), correct, len(mine)


def check(name: str, file=None, verbose: bool = False, only=None) -> int:
    """Run practical ``name``'s tests on the student's file and print the verdict: ``file``
    when given (a script or a notebook), else the workspace copy, else the exercise; ``only``
    restricts the tests to those of some functions.

    Returns 0 when every function is correct, 1 otherwise, 2 when nothing could be checked.
    """
    import pytest

    try:
        practical = find(name)
    except KeyError as exc:
        print(f"error: {exc.args[0]}")
        return 2
    path, why = student_file(practical, file)
    if not path.is_file():
        print(f"error: no file at {shown(path)}; python -m nn start {name} makes your own copy "
              "of the exercise (or give the path of your file with --file)")
        return 2
    if path.suffix not in (".py", ".ipynb"):
        print(f"error: {shown(path)} is neither a script (.py) nor a notebook (.ipynb)")
        return 2
    if not practical.tests.is_file():
        print(f"error: practical {name!r} has no tests yet ({practical.tests} is missing)")
        return 2
    title = f"{name}: graded {shown(path)}" + (f" ({why})" if why else "")
    forget_loaded()
    try:
        module = load_once(path)
    except Exception as exc:  # the student's file does not run: say where, once
        print(title + "\n")
        print(_load_error(exc, path))
        return 2
    graded = graded_functions(practical)
    grader = Grader(path, practical.tests, only=only, verbose=verbose)
    args = [str(practical.tests), "-q", "-p", "no:cacheprovider", f"--impl-file={path}",
            f"--rootdir={ROOT}", "-W", "ignore::pytest.PytestAssertRewriteWarning",
            "--tb=long" if verbose else "--tb=native"]
    if verbose:
        args.append("-vv")
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        code = pytest.main(args, plugins=[grader])
    if int(code) in (3, 4):  # pytest's internal or usage error: show it, do not hide it
        print(output.getvalue())
    if not grader.functions:
        print(title + "\n")
        problems = " ".join(grader.collect_problems)
        module_name = _missing_module(problems)
        if module_name:
            print(f"error: {name} {_missing_words(module_name)}")
        elif only:
            print(f"error: no test checks {_and(sorted(only))} in {practical.tests.name}")
        else:
            print(output.getvalue())
            print(f"error: pytest ran no test of {practical.tests} (exit code {int(code)})")
        return 2
    notes = list(getattr(module, "__nn_skipped__", []))
    text, correct, total = summary(title, grader.functions, graded, verbose, notes, only)
    print(text)
    return 0 if correct == total else 1


def _load_error(exc: BaseException, path: Path) -> str:
    """Why the student's file could not be imported, with its line."""
    module = getattr(exc, "name", None) or _missing_module(str(exc))
    if isinstance(exc, ImportError) and module == "jupytext" and path.suffix == ".ipynb":
        return f"error: grading a notebook {_missing_words(module)}"
    if isinstance(exc, ImportError) and module:
        sibling = any((folder / f"{module}{s}").exists() for folder in
                      (path.parent, EXERCISES / path.parent.name) for s in (".py", ".ipynb"))
        if not sibling:
            return f"error: your file {_missing_words(module)}"
    kind = type(exc).__name__
    if isinstance(exc, SyntaxError):
        where = f"{shown(exc.filename or path)}, line {exc.lineno}: {(exc.text or '').strip()}"
        return f"error: your file is not valid Python: {exc.msg}\n  at {where}"
    frame = _student_frame(exc.__traceback__, set(_search_folders(path)))
    text = f"error: your file could not be run: {_one_line(f'{kind}: {exc}', 300)}"
    return text + (f"\n  at {_where(frame)}" if frame else "")
