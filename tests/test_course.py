"""The course machinery: exercise generation, loading a practical, figures, the CLI."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from nn.__main__ import main
from nn.course import StubError, find, load, make_exercise, practicals, show
from nn.course.practicals import ROOT, SOLUTIONS, title_of
from nn.course.stubs import differences, exercise_files, generate

SOLUTION = textwrap.dedent('''\
    # %% [markdown]
    # # A practical
    # %%
    import numpy as np


    def step(h, threshold=0.0):
        """The binary neuron."""
        # BEGIN SOLUTION return 1.0 where h exceeds the threshold, 0.0 elsewhere
        y = (h > threshold).astype(float)
        # END SOLUTION
        return y


    class Layer:
        def forward(self, x):
            """Doubles."""
            # BEGIN SOLUTION write "y = 2 * x", a quote in the hint
            y = 2 * x
            # END SOLUTION
            return y


    # %%
    if __name__ == "__main__":
        # BEGIN SOLUTION choose a learning rate
        lr = 0.1
        # END SOLUTION
        print("lr", lr)
    ''')


def test_a_region_becomes_a_stub_that_keeps_signature_docstring_and_return():
    exercise = make_exercise(SOLUTION)
    assert "BEGIN SOLUTION" not in exercise and "END SOLUTION" not in exercise
    assert "astype(float)" not in exercise and "            y = 2 * x\n" not in exercise
    assert textwrap.dedent('''\
        def step(h, threshold=0.0):
            """The binary neuron."""
            raise NotImplementedError("return 1.0 where h exceeds the threshold, 0.0 elsewhere")
            return y
        ''') in exercise
    assert "        raise NotImplementedError('write \"y = 2 * x\", a quote in the hint')\n" \
        in exercise
    assert '    raise NotImplementedError("choose a learning rate")\n    print("lr", lr)' \
        in exercise


def test_the_stub_raises_its_hint(tmp_path):
    path = tmp_path / "practical.py"
    path.write_text(make_exercise(SOLUTION))
    module = load(path)
    with pytest.raises(NotImplementedError, match="exceeds the threshold"):
        module.step(1.0)
    with pytest.raises(NotImplementedError, match='write "y = 2 \\* x"'):
        module.Layer().forward(1.0)


def test_text_without_markers_is_unchanged():
    source = "def f(x):\n    return x\r\n"
    assert make_exercise(source) == source


@pytest.mark.parametrize("source, words", [
    ("# BEGIN SOLUTION a\nx = 1\n# BEGIN SOLUTION b\ny = 2\n# END SOLUTION\n# END SOLUTION\n",
     "cannot nest"),
    ("def f():\n    # BEGIN SOLUTION a\n    return 1\n", "never closed"),
    ("x = 1\n# END SOLUTION\n", "without a BEGIN"),
    ("def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n", "needs a hint"),
    ("def f():\n    # BEGIN SOLUTIONwrite it\n    return 1\n    # END SOLUTION\n", "space"),
    ("x = 1  # BEGIN SOLUTION a\n", "alone on its line"),
    ("def f():\n    # BEGIN SOLUTION a\n    return 1\n# END SOLUTION\n", "indented differently"),
    ("if True:\n    # BEGIN SOLUTION a\n    x = 1\n    # END SOLUTION\n  y = 2\n", "not valid Python"),
])
def test_bad_markers_are_errors_naming_the_line(source, words):
    with pytest.raises(StubError, match=words) as info:
        make_exercise(source, "solutions/x/y.py")
    assert "solutions/x/y.py:" in str(info.value)


def test_generate_writes_the_tree_and_differences_sees_drift(tmp_path):
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    (solutions / "chapter").mkdir(parents=True)
    (solutions / "chapter" / "practical.py").write_text(SOLUTION)
    (solutions / "chapter" / "notes.txt").write_text("copied as is")
    (solutions / "chapter" / "__pycache__").mkdir()
    (solutions / "chapter" / "__pycache__" / "practical.cpython-311.pyc").write_bytes(b"\0")
    pytest.importorskip("jupytext", reason="the notebooks extra is not installed")
    assert len(differences(solutions, exercises)) == 4   # script, notebook, notes, manifest
    written = generate(solutions, exercises)
    assert sorted(p.name for p in written) == ["MANIFEST.sha256", "notes.txt",
                                               "practical.ipynb", "practical.py"]
    assert differences(solutions, exercises) == []
    assert generate(solutions, exercises) == []  # nothing to do the second time
    assert not (exercises / "chapter" / "__pycache__").exists()
    (exercises / "chapter" / "practical.py").write_text("edited by hand")
    (exercises / "chapter" / "stray.py").write_text("x = 1")
    drift = differences(solutions, exercises)
    assert any(line.startswith("out of date") and "practical.py" in line for line in drift)
    assert any(line.startswith("not generated") and "stray.py" in line for line in drift)


def test_a_marker_error_leaves_the_exercises_untouched(tmp_path):
    pytest.importorskip("jupytext", reason="the notebooks extra is not installed")
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    (solutions / "a").mkdir(parents=True)
    (solutions / "a" / "good.py").write_text(SOLUTION)
    (solutions / "a" / "bad.py").write_text("# BEGIN SOLUTION x\n")
    with pytest.raises(StubError, match="bad.py"):
        generate(solutions, exercises)
    assert not exercises.exists()


def test_load_runs_no_experiment_and_resolves_siblings_per_folder(tmp_path, capsys):
    for tree, value in (("one", 1), ("two", 2)):
        folder = tmp_path / tree
        folder.mkdir()
        (folder / "helper.py").write_text(f"VALUE = {value}\n")
        (folder / "practical.py").write_text(
            "from helper import VALUE\n"
            "def f():\n    return VALUE\n"
            "if __name__ == '__main__':\n    print('experiment ran')\n")
    one, two = load(tmp_path / "one" / "practical.py"), load(tmp_path / "two" / "practical.py")
    assert (one.f(), two.f()) == (1, 2)
    assert "helper" not in sys.modules
    assert "experiment ran" not in capsys.readouterr().out


def test_load_of_a_missing_file_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no practical file"):
        load(tmp_path / "nothing.py")


def test_show_saves_the_figure_atomically(tmp_path, monkeypatch, capsys):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    monkeypatch.setenv("NN_FIGURES", str(tmp_path))
    fig = plt.figure()
    path = show(fig, "curve", practical="mlp")
    assert path == tmp_path / "mlp_curve.png" and path.stat().st_size > 0
    assert [p.name for p in tmp_path.iterdir()] == ["mlp_curve.png"]
    assert "figure saved" in capsys.readouterr().out
    assert not plt.fignum_exists(fig.number)



def test_output_folders_follow_the_environment(tmp_path, monkeypatch):
    from nn.course import figures_dir, models_dir
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NN_FIGURES", raising=False)
    monkeypatch.delenv("NN_MODELS", raising=False)
    assert figures_dir() == tmp_path / "figures" and models_dir() == tmp_path / "models"
    monkeypatch.setenv("NN_MODELS", str(tmp_path / "elsewhere"))
    assert models_dir() == tmp_path / "elsewhere"


# the practicals in the repository


def test_every_practical_has_a_title_tests_and_an_exercise():
    found = practicals()
    assert found, "no practical under solutions/"
    names = [p.name for p in found]
    assert len(names) == len(set(names)), f"two practicals share a name: {names}"
    for p in found:
        assert p.title, f"{p.solution} has no '# # Title' in its first markdown cell"
        assert p.tests.is_file(), f"practical {p.name} has no tests ({p.tests})"


def test_every_solution_makes_an_exercise_without_markers():
    files = exercise_files(SOLUTIONS)
    assert files
    for rel, data in files.items():
        assert b"SOLUTION" not in data or rel.suffix != ".py", rel


def test_exercises_folder_exists_for_every_practical():
    """A generated file for each practical (its content is compared by ``.ci/run``, with
    ``python -m nn exercises --check``, since students edit their copy)."""
    for p in practicals():
        assert p.exercise.is_file(), f"{p.exercise} is missing: run python -m nn exercises"


def test_ci_checks_that_exercises_are_up_to_date():
    assert "-m nn exercises --check" in (ROOT / ".ci" / "run").read_text()


def test_find_names_the_known_practicals():
    with pytest.raises(KeyError, match="no practical named 'nope'.*perceptron"):
        find("nope")


def test_title_reads_the_first_markdown_heading(tmp_path):
    path = tmp_path / "p.py"
    path.write_text("# %%\n# # not markdown\n# %% [markdown]\n# Some text\n# ## The title\n")
    assert title_of(path) == "The title"


def test_cli_list_prints_one_line_per_practical(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(practicals())
    assert lines[0].split()[0] == practicals()[0].name


def test_cli_run_and_check_refuse_an_unknown_practical(capsys):
    assert main(["run", "nope"]) == 2
    assert "no practical named" in capsys.readouterr().err
    assert main(["check", "nope"]) == 2
    assert "no practical named" in capsys.readouterr().out


def _check(*args):
    done = subprocess.run([sys.executable, "-m", "nn", "check", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    return done.returncode, done.stdout


def test_cli_check_says_every_function_of_a_stub_is_not_written_yet(tmp_path):
    practical = practicals()[0]
    stub = tmp_path / f"{practical.name}.py"
    stub.write_text(make_exercise(practical.solution.read_text()))
    code, out = _check(practical.name, "--file", str(stub))
    assert code == 1, out
    verdicts = [line for line in out.splitlines() if line.startswith("  ") and line[2] != " "]
    assert verdicts and all("not written yet" in line for line in verdicts), out
    assert "0 of" in out


def test_cli_check_says_every_function_of_the_solution_is_correct():
    practical = practicals()[0]
    code, out = _check(practical.name, "--file", str(practical.solution))
    assert code == 0, out
    assert "wrong" not in out and "not written yet" not in out
    assert out.strip().endswith("functions correct.")
    total = out.strip().splitlines()[-1].split()
    assert total[0] == total[2]  # "N of N functions correct."



def test_every_practical_opens_as_a_notebook_with_markdown_and_code_cells():
    jupytext = pytest.importorskip("jupytext", reason="the notebooks extra is not installed")
    for p in practicals():
        for path in (p.solution, p.exercise):
            notebook = jupytext.read(path)
            kinds = {cell.cell_type for cell in notebook.cells}
            assert notebook.metadata["jupytext"]["text_representation"]["format_name"] == \
                "percent", path
            assert kinds == {"markdown", "code"}, f"{path}: cells {kinds}"
