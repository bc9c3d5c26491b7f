"""The hints of the exercises say what to compute and why, never the line of code.

A stub's text is the hint after ``# BEGIN SOLUTION``. It may name a function or a quantity,
but it must not hold a statement a student could paste: an assignment, a ``return``, or a
call with arguments (``np.outer(xb, a - t)``). Each hint, and each part of it between
punctuation, is parsed as Python; prose does not parse, or parses as bare names.
"""
from __future__ import annotations

import ast
import re

import pytest

from nn.course.practicals import SOLUTIONS

BEGIN = re.compile(r"^\s*# BEGIN SOLUTION (?P<hint>.*)$")


def hints():
    for path in sorted(SOLUTIONS.glob("*/*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = BEGIN.match(line)
            if match:
                yield f"{path.relative_to(SOLUTIONS)}:{number}", match["hint"]


def code_in(hint: str):
    """The first piece of ``hint`` that is a code statement (see the module docstring), or None."""
    text = hint.strip().lstrip("★").strip()
    pieces = [text] + [p.strip() for p in re.split(r"[;:,]|\bthen\b|\band\b", text)]
    for piece in pieces:
        for snippet in (piece, piece.rstrip(".")):
            try:
                tree = ast.parse(snippet)
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return)):
                    return snippet
                if isinstance(node, ast.Call) and (node.args or node.keywords):
                    return snippet
    if (re.search(r"\breturn\s+[\w(]", text) or re.search(r"\w+\((\w|\s|,|\.)+\)", text)
            or re.search(r"\b\w+=[\w\"'(\[-]", text)):        # a keyword argument: axis=1
        return text
    return None


def test_there_are_hints_to_check():
    assert len(list(hints())) > 50


@pytest.mark.parametrize("where, hint", list(hints()), ids=lambda v: v if ":" in v else "")
def test_a_hint_holds_no_code_statement(where, hint):
    found = code_in(hint)
    assert found is None, (f"{where}: the hint holds code ({found!r}); say what to compute and "
                           "why, in words, and leave the line of code to the student")


@pytest.mark.parametrize("hint", ["return beta * a * (1 - a)", "w = w - lr * np.outer(xb, a - t)",
                                  "divide every row of x by its mean (axis=1, keepdims=True)",
                                  "call train(x_train, t_train, ...) with your settings"])
def test_the_rule_sees_code(hint):
    assert code_in(hint) is not None


@pytest.mark.parametrize("hint", ["★ the weighted sums of the hidden layer, then the sigmoid",
                                  "★★ the filters as a matrix with one filter per row",
                                  "count the starting positions of the window (an integer division)"])
def test_the_rule_lets_words_through(hint):
    assert code_in(hint) is None
