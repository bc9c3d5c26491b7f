"""The students' path: ``nn start`` (a workspace that never loses work), ``nn check`` on
scripts and notebooks (feedback in words, case by case, "depends on ..."), ``nn run`` of a
notebook in a real Jupyter kernel, and ``nn exercises`` that never overwrites an edited file
and writes all of its files or none.

The end-to-end checks run in one child process (:func:`nn_batch`), which keeps the whole
file to a few seconds per chapter.
"""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nn.__main__ import main
from nn.course import find, load, work_dir
from nn.course.check import EXTRAS, Result, summary
from nn.course.practicals import ROOT, SOLUTIONS, student_file, student_functions
from nn.course.stubs import (_BEGIN, _END, MANIFEST, EditedFilesError, _quote,
                             cell_marker_problems, differences, exercise_files, generate,
                             write_tree)
from nn.errors import FileAccessError

try:
    import jupytext
except ModuleNotFoundError:  # the notebooks extra is not installed
    jupytext = None
notebooks = pytest.mark.skipif(jupytext is None, reason="needs the notebooks extra (jupytext)")

# one practical per chapter: a function filled in correctly, one filled in wrongly
CHAPTERS = [("perceptron", "step", "add_bias"),
            ("mlp", "sigmoid", "sigmoid_derivative"),
            ("im2col", "conv_output_size", "im2col"),
            ("denoiser", "add_noise", "psnr"),
            ("detection_metrics", "iou", "iou_matrix"),
            ("mixed_precision", "fp16_lost_fraction", "dequantize")]


# a student's edits: the solution's region in place of a stub (or a wrong one)


def solution_regions(solution: Path) -> dict[str, list[tuple[str, list[str], str]]]:
    """``function -> [(its stub line in the exercise, the region's lines, the lines of a
    wrong version)]``, read from the solution file. The wrong version changes the value the
    function returns (``y = y * 2 + 1`` after the region, ``y`` the name on its return
    line); the raising one (``raising``) calls ``int('planted')``."""
    source = solution.read_text(encoding="utf-8")
    lines = source.splitlines()
    spans = [(n.lineno, n.end_lineno, n.name) for n in ast.walk(ast.parse(source))
             if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    regions: dict[str, list] = {}
    i = 0
    while i < len(lines):
        begin = _BEGIN.match(lines[i])
        if begin:
            end = next(j for j in range(i + 1, len(lines)) if _END.match(lines[j]))
            after = next((line.strip() for line in lines[end + 1:] if line.strip()), "")
            returned = re.match(r"return (\w+)", after)
            owners = [s for s in spans if s[0] <= i + 1 <= s[1]]
            owner = min(owners, key=lambda s: s[1] - s[0])[2] if owners else None
            indent = begin["indent"]
            stub = f"{indent}raise NotImplementedError({_quote(begin['hint'].strip())})"
            body = lines[i + 1:end]
            wrong = body + [f"{indent}{returned[1]} = {returned[1]} * 2 + 1"] if returned else None
            raising = body + [f"{indent}{returned[1]} = int('planted')"] if returned else None
            regions.setdefault(owner, []).append((stub, body, wrong, raising))
            i = end
        i += 1
    return regions


def fill(text: str, solution: Path, correct=(), wrong=(), raising=()) -> str:
    """``text`` (an exercise, script or cell) with the stubs of these functions written."""
    regions = solution_regions(solution)
    for function in (*correct, *wrong, *raising):
        assert function in regions, f"{solution.name} has no region in {function}: update " \
                                    "CHAPTERS in this test"
        for stub, body, bad, planted in regions[function]:
            new = bad if function in wrong else planted if function in raising else body
            assert new is not None, f"{function} does not return a name: pick another"
            text = text.replace(stub, "\n".join(new))
    return text


def fill_notebook(path: Path, solution: Path, **functions) -> None:
    """Edit the notebook at ``path`` as a student would, cell by cell."""
    notebook = jupytext.read(path)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.source = fill(cell.source, solution, **functions)
    jupytext.write(notebook, path)


def verdict(out: str, function: str) -> str:
    """The verdict printed for ``function`` (``correct``, ``wrong: ...``, ...)."""
    match = re.search(rf"^  {re.escape(function)}\s+(\S.*)$", out, flags=re.M)
    assert match, f"no verdict for {function} in:\n{out}"
    return match[1]


BATCH = textwrap.dedent('''\
    import contextlib, io, json, os, sys
    from nn.__main__ import main
    results = []
    for step in json.load(open(sys.argv[1])):
        saved = dict(os.environ)
        os.environ.update(step.get("env", {}))
        for name in step.get("block", []):
            sys.modules[name] = None          # as if it were not installed
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                rc = main(step["args"])
            except SystemExit as exc:
                rc = exc.code
        for name in step.get("block", []):
            del sys.modules[name]
        os.environ.clear()
        os.environ.update(saved)
        results.append({"rc": rc, "out": out.getvalue()})
    json.dump(results, open(sys.argv[2], "w"))
''')


def nn_batch(tmp_path: Path, steps: list[dict]) -> list[dict]:
    """Run ``python -m nn`` commands one after the other in one child process, from the
    repository root: ``{"args": [...], "env": {...}, "block": [modules]}`` each; returns
    ``{"rc", "out"}`` each (stdout and stderr together)."""
    plan, answers = tmp_path / "steps.json", tmp_path / "results.json"
    plan.write_text(json.dumps(steps))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", BATCH, str(plan), str(answers)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(answers.read_text())


@pytest.fixture
def work(tmp_path, monkeypatch):
    folder = tmp_path / "work"
    monkeypatch.setenv("NN_WORK", str(folder))
    return folder


# nn start


def test_start_copies_the_notebook_and_never_overwrites(work, capsys):
    practical = find("perceptron")
    assert main(["start", "perceptron"]) == 0
    mine = work / "perceptron" / "perceptron.ipynb"
    assert mine.read_bytes() == practical.exercise_notebook.read_bytes()
    assert str(mine.relative_to(work.parent)) in capsys.readouterr().out.replace(
        str(work.parent) + "/", "")
    mine.write_bytes(b"my work")
    assert main(["start", "perceptron"]) == 1
    err = capsys.readouterr().err
    assert "already started perceptron" in err and "perceptron.ipynb" in err and "--force" in err
    assert main(["start", "perceptron", "--script"]) == 1  # a second format would shadow it
    assert mine.read_bytes() == b"my work"
    assert sorted(p.name for p in mine.parent.iterdir()) == ["perceptron.ipynb"]


def test_start_force_keeps_a_timestamped_backup(work, capsys):
    assert main(["start", "perceptron", "--script"]) == 0
    mine = work / "perceptron" / "perceptron.py"
    assert mine.read_bytes() == find("perceptron").exercise.read_bytes()
    mine.write_text("my work")
    assert main(["start", "perceptron", "--force"]) == 0
    assert main(["start", "perceptron", "--force"]) == 0   # twice in the same second
    backups = sorted(mine.parent.glob("perceptron.backup-*"))
    assert [p.suffix for p in backups] == [".ipynb", ".py"]
    assert backups[1].read_text() == "my work"
    assert not mine.exists() and (work / "perceptron" / "perceptron.ipynb").is_file()
    assert "kept your previous file as" in capsys.readouterr().out


def test_the_workspace_is_work_or_NN_WORK_and_git_ignored(monkeypatch, tmp_path):
    monkeypatch.delenv("NN_WORK", raising=False)
    assert work_dir() == ROOT / "work"
    assert "/work/" in (ROOT / ".gitignore").read_text().splitlines()
    monkeypatch.setenv("NN_WORK", str(tmp_path))
    assert work_dir() == tmp_path
    assert find("mlp").workspace() == tmp_path / "mlp" / "mlp.ipynb"


def test_the_grader_takes_the_file_given_else_the_newer_workspace_copy(work):
    practical = find("perceptron")
    path, why = student_file(practical)
    assert path == practical.exercise and "python -m nn start perceptron" in why
    folder = work / "perceptron"
    folder.mkdir(parents=True)
    script, notebook = folder / "perceptron.py", folder / "perceptron.ipynb"
    script.write_text("")
    assert student_file(practical) == (script, "your workspace copy")
    notebook.write_text("")
    os.utime(script, (1e9, 1e9))
    path, why = student_file(practical)
    assert path == notebook and "perceptron.py" in why and "not used" in why
    os.utime(notebook, (1e9 - 5, 1e9 - 5))
    assert student_file(practical)[0] == script
    assert student_file(practical, "x.ipynb") == (Path("x.ipynb").resolve(), "")


# notebooks in the repository


SOLUTION = textwrap.dedent('''\
    # %% [markdown]
    # # A practical
    # %%
    import numpy as np


    def double(x):
        """Twice x."""
        # BEGIN SOLUTION return 2 x
        y = 2 * x
        # END SOLUTION
        return y


    # %%
    if __name__ == "__main__":
        print(double(1))
    ''')


@notebooks
def test_exercise_notebooks_are_generated_empty_and_byte_for_byte_the_same(tmp_path):
    from nn.course.notebooks import FIRST_CELL, exercise_notebook
    solutions = tmp_path / "solutions"
    (solutions / "chapter").mkdir(parents=True)
    (solutions / "chapter" / "practical.py").write_text(SOLUTION)
    (solutions / "chapter" / "_helper.py").write_text("X = 1\n")
    files = exercise_files(solutions, notebooks=True)
    assert sorted(p.as_posix() for p in files) == [
        MANIFEST, "chapter/_helper.py", "chapter/practical.ipynb", "chapter/practical.py"]
    assert files == exercise_files(solutions, notebooks=True)
    notebook = json.loads(files[Path("chapter/practical.ipynb")])
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert "".join(code[0]["source"]) == FIRST_CELL
    assert "raise NotImplementedError" in "".join(code[1]["source"])
    assert files[Path(MANIFEST)].decode().count("\n") == 3
    assert exercise_notebook(files[Path("chapter/practical.py")].decode()) == \
        files[Path("chapter/practical.ipynb")]


def test_the_first_cell_says_in_one_line_how_to_install_nn(monkeypatch):
    from nn.course.notebooks import FIRST_CELL
    monkeypatch.setitem(sys.modules, "nn", None)   # a fresh Colab runtime
    with pytest.raises(ModuleNotFoundError) as info:
        exec(FIRST_CELL, {})
    message = str(info.value)
    assert "\n" not in message and "pip install" in message


@notebooks
def test_drift_of_a_notebook_is_seen(tmp_path):
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    (solutions / "chapter").mkdir(parents=True)
    (solutions / "chapter" / "practical.py").write_text(SOLUTION)
    generate(solutions, exercises)
    assert differences(solutions, exercises) == []
    notebook = exercises / "chapter" / "practical.ipynb"
    notebook.write_text(notebook.read_text().replace("Twice", "Thrice"))
    assert differences(solutions, exercises) == ["out of date  exercises/chapter/practical.ipynb"]


def test_cell_markers_must_start_at_column_0():
    assert cell_marker_problems("# %%\nx = 1\n") == []
    problems = cell_marker_problems("if True:\n    # %%\n    x = 1\n", "solutions/a/b.py")
    assert len(problems) == 1 and problems[0].startswith("solutions/a/b.py:2: ")


def test_every_cell_marker_of_the_solutions_starts_at_column_0():
    """An indented ``# %%`` is not a cell for jupytext: the notebook's cells would start in
    the middle of an ``if`` block."""
    problems = [problem for path in sorted(SOLUTIONS.glob("*/*.py"))
                for problem in cell_marker_problems(path.read_text(encoding="utf-8"),
                                                    str(path.relative_to(ROOT)))]
    assert not problems, "\n".join(problems)


# nn exercises: never over an edited file, all files or none


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else b"<dir>")
            for p in sorted(root.rglob("*"))}


@pytest.fixture
def trees(tmp_path, monkeypatch):
    """solutions/ and exercises/ of a small course, generated once; ``nn exercises`` and the
    workspace (backups) point at them."""
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    for chapter in ("one", "two"):
        (solutions / chapter).mkdir(parents=True)
        (solutions / chapter / "practical.py").write_text(SOLUTION.replace("A practical", chapter))
    generate(solutions, exercises)
    module = sys.modules["nn.course.practicals"]
    monkeypatch.setattr(module, "SOLUTIONS", solutions)
    monkeypatch.setattr(module, "EXERCISES", exercises)
    monkeypatch.setenv("NN_WORK", str(tmp_path / "work"))
    return solutions, exercises


@notebooks
def test_exercises_leaves_an_edited_file_unchanged_without_force(trees, tmp_path, capsys):
    solutions, exercises = trees
    edited = exercises / "one" / "practical.py"
    edited.write_text(edited.read_text() + "# a student's work\n")
    for chapter in ("one", "two"):   # the teacher changes both solutions
        path = solutions / chapter / "practical.py"
        path.write_text(path.read_text().replace("Twice x", "Two times x"))
    before = _tree(exercises)
    with pytest.raises(EditedFilesError) as info:
        generate(solutions, exercises)
    assert info.value.files == [Path("one/practical.py")]
    assert main(["exercises"]) == 1
    err = capsys.readouterr().err
    assert "exercises/one/practical.py" in err and "--force" in err and "nothing" in err
    assert _tree(exercises) == before                       # not even the other chapter
    assert main(["exercises", "--force"]) == 0
    assert "Two times x" in edited.read_text() and "a student's work" not in edited.read_text()
    backups = list((tmp_path / "work" / "backups").rglob("practical.py"))
    assert len(backups) == 1 and "a student's work" in backups[0].read_text()
    assert main(["exercises"]) == 0                          # what it wrote, it may rewrite
    assert differences(solutions, exercises) == []


@notebooks
def test_a_failed_write_changes_nothing(trees, monkeypatch, capsys):
    """One folder that cannot be written: the other files are not written either, the
    temporary files and new folders are gone, and the error names the target."""
    solutions, exercises = trees
    (solutions / "three").mkdir()
    (solutions / "three" / "practical.py").write_text(SOLUTION)
    for chapter in ("one", "two"):
        path = solutions / chapter / "practical.py"
        path.write_text(path.read_text().replace("Twice x", "Two times x"))
    before = _tree(exercises)
    real_open = open

    def refuse(path, *args, **kwargs):   # as in a read-only exercises/two/
        if Path(path).parent.name == "two":
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("nn.course.stubs.open", refuse, raising=False)
    with pytest.raises(FileAccessError, match=r"cannot write .*two.*Permission denied.*nothing"):
        generate(solutions, exercises)
    assert _tree(exercises) == before
    assert main(["exercises"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write ") and "Traceback" not in err
    assert _tree(exercises) == before


def test_a_failed_rename_puts_back_what_was_renamed(tmp_path, monkeypatch):
    root = tmp_path / "tree"
    write_tree(root, {Path("a.txt"): b"old a", Path("b.txt"): b"old b"})
    before = _tree(root)
    real_replace, calls = os.replace, []

    def fail_second(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_second)
    with pytest.raises(FileAccessError, match="No space left"):
        write_tree(root, {Path("a.txt"): b"new a", Path("b.txt"): b"new b",
                          Path("c/d.txt"): b"new"})
    assert _tree(root) == before


@notebooks
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_a_read_only_folder_changes_nothing_and_says_so(trees, capsys):
    solutions, exercises = trees
    for chapter in ("one", "two"):
        path = solutions / chapter / "practical.py"
        path.write_text(path.read_text().replace("Twice x", "Two times x"))
    before = _tree(exercises)
    (exercises / "two").chmod(0o555)
    try:
        assert main(["exercises"]) == 1
    finally:
        (exercises / "two").chmod(0o755)
    err = capsys.readouterr().err
    assert "cannot write" in err and "two" in err and "Traceback" not in err
    assert _tree(exercises) == before


def test_an_exam_handed_out_without_its_solution_is_found_from_its_exercise(
        tmp_path, monkeypatch, capsys):
    import shutil
    from nn.course.practicals import graded_functions
    solution = find("wine").solution
    handout = tmp_path / "solutions"
    shutil.copytree(SOLUTIONS, handout, ignore=shutil.ignore_patterns("__pycache__"))
    (handout / "mlp" / "wine.py").unlink()
    monkeypatch.setattr(sys.modules["nn.course.practicals"], "SOLUTIONS", handout)
    wine = find("wine")
    assert not wine.solution.is_file() and wine.exercise.is_file() and wine.title
    assert graded_functions(wine) == student_functions(solution)
    assert main(["run", "wine"]) == 2
    assert "no solution" in capsys.readouterr().err


# reading a notebook back


NOTEBOOK = textwrap.dedent('''\
    # %%
    %matplotlib inline
    import numpy as np
    !pip install nothing

    # %%
    def double(x):
        return 2 * x

    # %%
    %%time
    raise RuntimeError("a cell magic: left out whole")

    # %%
    print(undefined_name)

    # %%
    def triple(x):
        np.sum?
        return 3 * x

    # %%
    if __name__ == "__main__":
        raise RuntimeError("the experiment must not run when graded")
    ''')


@notebooks
def test_a_notebook_loads_without_magics_experiments_or_raising_cells(tmp_path):
    path = tmp_path / "practical.ipynb"
    jupytext.write(jupytext.reads(NOTEBOOK, fmt="py:percent"), path)
    module = load(path)
    assert module.double(2) == 4 and module.triple(2) == 6
    assert module.__file__ == str(path)
    assert len(module.__nn_skipped__) == 1
    assert re.match(r"cell 4 was left out: it raised NameError: .*undefined_name.* \(line 1: "
                    r"print\(undefined_name\)\)", module.__nn_skipped__[0])


@notebooks
def test_a_practical_imports_a_sibling_notebook(tmp_path):
    helper, practical = tmp_path / "helper.ipynb", tmp_path / "practical.ipynb"
    jupytext.write(jupytext.reads("# %%\nVALUE = 42\n", fmt="py:percent"), helper)
    jupytext.write(jupytext.reads("# %%\nfrom helper import VALUE\n\n\ndef f():\n"
                                  "    return VALUE\n", fmt="py:percent"), practical)
    assert load(practical).f() == 42
    assert "helper" not in sys.modules


def test_student_functions_are_those_holding_a_region(tmp_path):
    path = tmp_path / "p.py"
    path.write_text(textwrap.dedent('''\
        def given(x):
            return x

        def mine(x):
            # BEGIN SOLUTION a hint
            y = x
            # END SOLUTION
            return y

        class Layer:
            def forward(self, x):
                def inner():
                    # BEGIN SOLUTION b
                    return 1
                    # END SOLUTION
                return inner()

        if __name__ == "__main__":
            # BEGIN SOLUTION choose
            lr = 0.1
            # END SOLUTION
        '''))
    assert student_functions(path) == ["mine", "Layer.forward.inner"]


# feedback in words (the printer alone)


def _result(test, outcome, calls=(), **kwargs):
    return Result(test, outcome, calls={c: "returned" for c in calls}, **kwargs)


def test_a_function_failing_through_a_wrong_one_it_calls_depends_on_it():
    functions = {
        "add_bias": [_result("test_add_bias", "failed", ["add_bias"], message="values differ")],
        "predict": [_result("test_predict", "failed", ["predict", "add_bias"], message="x")],
        "train": [_result("test_train", "failed", ["train", "predict", "add_bias"], message="y"),
                  _result("test_train_b", "passed", ["train"])],
        "step": [_result("test_step", "passed", ["step"])],
        "update": [_result("test_update", "failed", ["update", "step", "add_bias"],
                           message="z"),
                   _result("test_update_alone", "failed", ["update"], message="own error")],
    }
    text, correct, total = summary("t", functions, ["add_bias", "step", "predict", "train",
                                                    "update"])
    assert "depends on add_bias, which is wrong: fix add_bias first" in verdict(text, "predict")
    assert verdict(text, "train") == verdict(text, "predict")
    assert verdict(text, "update").startswith("wrong")   # it also fails on its own
    assert verdict(text, "add_bias").startswith("wrong")
    assert (correct, total) == (1, 5)


def test_mutual_calls_are_each_reported_wrong():
    functions = {"a": [_result("test_a", "failed", ["a", "b"], message="m")],
                 "b": [_result("test_b", "failed", ["a", "b"], message="m")]}
    text, _, _ = summary("t", functions, ["a", "b"])
    assert verdict(text, "a").startswith("wrong") and verdict(text, "b").startswith("wrong")


def test_only_failing_cases_are_listed_with_their_parameters():
    runs = [_result("test_shape", "passed", case="n=1"),
            _result("test_shape", "failed", case="n=2, stride=2", message="2 of 4 values differ"),
            _result("test_shape", "failed", case="n=3, stride=1", message="3 of 9 values differ"),
            _result("test_error", "failed", numbers={"abs_error": 0.5, "limit": 1e-12})]
    text, _, _ = summary("t", {"f": runs}, ["f"])
    assert verdict(text, "f") == "wrong: 3 of 4 cases wrong"
    assert "shape: 2 of 3 cases wrong" in text and "n=1" not in text
    assert "n=2, stride=2: 2 of 4 values differ" in text
    assert "absolute difference 0.5 (must be below 1e-12)" in text
    assert "relative" not in text and "\\n" not in text


def test_a_hidden_number_is_never_printed():
    runs = [_result("test_exam", "failed", numbers={"accuracy": 0.8123, "threshold": 0.9},
                    hidden={"accuracy"}, message="test accuracy 81.2 % < 90 %"),
            _result("test_exam_b", "passed", numbers={"accuracy": 0.9712, "threshold": 0.9},
                    hidden={"accuracy"})]
    for verbose in (False, True):
        text, _, _ = summary("t", {"train_wine": runs}, ["train_wine"], verbose=verbose)
        assert "81" not in text and "97" not in text
        assert "accuracy hidden (below the required 90.0 %)" in text
    assert "accuracy hidden (reached the required 90.0 %)" in text


def test_an_assertion_message_is_printed_in_full():
    """A gradient test names the wrong tensor (for YOLO, the group of channels) in its
    message: nothing of it is cut, and pytest's ``assert`` explanation is left out."""
    from nn.course.check import _assertion_message
    message = ("the gradient of the size channels (t_w, t_h) is wrong for prior 2, cells (0, 1) "
               "and (3, 3): relative error 0.31; the centres, probability/objectness, classes "
               "and parameters are right. " * 3).strip()
    text = _assertion_message(message + "\nassert 0.31 < 1e-06", verbose=False, numbers=True)
    assert text == message
    printed, _, _ = summary("t", {"yolo_loss_gradient": [
        _result("test_gradient", "failed", numbers={"rel_error": 0.31, "limit": 1e-6},
                message=text)]}, ["yolo_loss_gradient"])
    assert message in " ".join(printed.split())


def test_given_functions_are_listed_apart_and_not_counted():
    functions = {"mine": [_result("test_mine", "passed")],
                 "detect": [_result("test_detect", "passed")]}
    text, correct, total = summary("t", functions, ["mine"])
    assert (correct, total) == (1, 1) and "Given by the practical" in text
    assert text.index("detect") > text.index("Given by the practical")
    assert text.strip().endswith("1 of 1 functions correct.")


def test_every_optional_module_names_an_extra_of_pyproject():
    pyproject = (ROOT / "pyproject.toml").read_text()
    for module, extra in EXTRAS.items():
        line = re.search(rf"^{extra} = \[(.*)\]$", pyproject, flags=re.M)
        assert line, f"pyproject.toml has no extra {extra!r}"
        distribution = {"cupyx": "cupy"}.get(module, module)
        assert f'"{distribution}' in line[1], (module, line[1])


# end to end: start, fill in, check, run (one child process)


@pytest.fixture(scope="module")
def students(tmp_path_factory):
    """For each chapter, a workspace notebook made by ``nn start`` with one function filled
    in correctly and one wrongly, and a copy of it elsewhere; the perceptron also filled in
    completely but for a wrong ``add_bias`` (dependencies), and with a ``step`` that raises.
    The ``nn`` commands run in one child process; returns ``{name: (rc, out)}``."""
    tmp = tmp_path_factory.mktemp("students")
    steps, names = [], []

    def started(name, folder, **functions):
        env = {"NN_WORK": str(folder)}
        saved = os.environ.get("NN_WORK")
        os.environ["NN_WORK"] = str(folder)
        try:
            assert main(["start", name]) == 0
        finally:
            os.environ.pop("NN_WORK") if saved is None else os.environ.update(NN_WORK=saved)
        practical = find(name)
        path = folder / practical.chapter / f"{name}.ipynb"
        if functions:
            fill_notebook(path, practical.solution, **functions)
        return env, path

    for name, good, bad in CHAPTERS:
        env, path = started(name, tmp / f"work-{name}", correct=[good], wrong=[bad])
        copy = tmp / f"copy-of-{name}.ipynb"
        copy.write_bytes(path.read_bytes())
        steps.append({"args": ["check", name, "--only", good, "--only", bad], "env": env})
        names.append(f"{name} workspace")
        steps.append({"args": ["check", name, "--file", str(copy), "--only", good, "--only", bad],
                      "env": {"NN_WORK": str(tmp / "nothing")}})
        names.append(f"{name} file")
    perceptron = student_functions(find("perceptron").solution)
    env, _ = started("perceptron", tmp / "work-depends",
                     correct=[f for f in perceptron if f != "add_bias"], wrong=["add_bias"])
    steps.append({"args": ["check", "perceptron"], "env": env})
    names.append("depends")
    env, _ = started("perceptron", tmp / "work-raises", raising=["step"])
    steps.append({"args": ["check", "perceptron", "--only", "step"], "env": env})
    names.append("raises")
    env, _ = started("perceptron", tmp / "work-kernel")
    steps.append({"args": ["run", "perceptron", "--exercise"], "env": env})
    names.append("kernel")
    steps.append({"args": ["check", "augmentation"], "env": {"NN_WORK": str(tmp / "nothing")},
                  "block": ["albumentations"]})
    names.append("no albumentations")
    results = nn_batch(tmp, steps)
    return {name: (r["rc"], r["out"]) for name, r in zip(names, results)}


@notebooks
@pytest.mark.parametrize("name, good, bad", CHAPTERS)
def test_a_started_notebook_is_graded_function_by_function(students, name, good, bad):
    for how in ("workspace", "file"):
        rc, out = students[f"{name} {how}"]
        assert rc == 1, out
        title = out.splitlines()[0]
        assert title.startswith(f"{name}: graded "), out
        if how == "workspace":
            assert f"work-{name}/" in title and "(your workspace copy)" in title, title
        else:
            assert title.endswith(f"copy-of-{name}.ipynb"), title
        assert verdict(out, good) == "correct", out
        assert verdict(out, bad).startswith("wrong"), out
        assert "1 of 2 functions correct." in out
        assert "Use -v" not in out and "\\n" not in out and "Traceback" not in out


@notebooks
def test_a_wrong_helper_is_named_as_what_to_fix_first(students):
    rc, out = students["depends"]
    assert rc == 1
    assert verdict(out, "add_bias").startswith("wrong")
    depends = [line for line in out.splitlines()
               if "depends on add_bias, which is wrong: fix add_bias first" in line]
    assert depends, out
    assert verdict(out, "step") == "correct"
    assert "no test checks" not in out   # every function of the practical was graded


@notebooks
def test_an_exception_shows_the_students_cell_line_and_code(students):
    rc, out = students["raises"]
    assert verdict(out, "step").startswith("wrong")
    words = " ".join(out.split())
    assert "ValueError: invalid literal for int() with base 10: 'planted'" in words
    assert re.search(r"at .*work-raises/perceptron/perceptron\.ipynb, cell \d+, line \d+, "
                     r"in step: a = int\('planted'\)", words), out
    assert "_pytest" not in out and "site-packages" not in out


@notebooks
def test_a_missing_optional_dependency_names_its_extra(students):
    rc, out = students["no albumentations"]
    assert rc == 2
    assert 'pip install -e ".[augment]"' in out and "exit code" not in out


@notebooks
def test_a_notebook_runs_in_a_jupyter_kernel_until_the_first_stub(students):
    """``nn run --exercise`` on a fresh notebook: the cells run in a real kernel (nbclient,
    ipykernel) until the first experiment calls a stub, whose hint is the error."""
    pytest.importorskip("nbclient", reason="the notebooks extra is not installed")
    pytest.importorskip("ipykernel", reason="the notebooks extra is not installed")
    rc, out = students["kernel"]
    assert rc == 1, out
    assert "in a Jupyter kernel" in out
    hints = [begin["hint"].strip() for line in
             find("perceptron").solution.read_text(encoding="utf-8").splitlines()
             if (begin := _BEGIN.match(line))]
    error = re.search(r"error in perceptron\.ipynb, cell (\d+): NotImplementedError: (.*)", out)
    assert error and error[2] in hints, out
    assert re.search(r"cell \d+, line \d+, in \w+: raise NotImplementedError", out), out
