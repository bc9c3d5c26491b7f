"""The README's promises: its two commands are what CI runs, and the demo works."""
from __future__ import annotations

import re
from pathlib import Path

from nn.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return [b.strip() for b in blocks[:2]]


def test_readme_starts_with_install_and_test_commands():
    install, test = readme_commands()
    assert 'pip install -e ".[test]"' in install and "python -m nn demo" in install
    assert "pytest" in test


def test_ci_runs_the_readme_commands_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for command in readme_commands():
        assert command in ci, f".ci/run does not run the README command {command!r}"


def test_demo_reaches_95_percent_and_prints_the_confusion_matrix(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "target \\ predicted" in out and "precision" in out and "recall" in out
    test_part = out.split("Test set after")[1]
    accuracy = float(re.search(r"accuracy: ([\d.]+) %", test_part).group(1))
    assert accuracy >= 95.0


def test_cli_without_a_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_bundled_datasets_are_documented():
    readme = (ROOT / "datasets" / "README.md").read_text()
    for path in (ROOT / "datasets").iterdir():
        if path.is_file() and path.name != "README.md":
            assert f"`{path.name}`" in readme, f"datasets/{path.name} is not described"


def test_demo_on_an_unavailable_backend_says_how_to_install(capsys, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "cupy", None)  # as on a machine without CuPy
    assert main(["demo", "--backend", "cupy"]) == 1
    assert 'pip install -e ".[gpu]"' in capsys.readouterr().err


def test_readme_points_to_nothing_outside_the_repository():
    """Students clone this repository alone: a path like ../shared/ is not in their copy."""
    readme = (ROOT / "README.md").read_text()
    assert not re.findall(r"\.\./[\w.-]+", readme), re.findall(r"\.\./[\w./-]+", readme)


def test_gpu_check_script_is_valid_bash_and_asks_for_its_log_folder(tmp_path):
    """The GPU check runs on a machine with no network and little time: a syntax error or a
    missing argument must show here, not there (its dry run is described in the README)."""
    import shutil
    import subprocess
    bash = shutil.which("bash")
    if bash is None:
        import pytest
        pytest.skip("needs bash")
    script = ROOT / "benchmarks" / "gpu_check.sh"
    subprocess.run([bash, "-n", str(script)], check=True)
    done = subprocess.run([bash, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode != 0 and "usage: bash benchmarks/gpu_check.sh LOGDIR" in done.stderr
    assert not any(tmp_path.iterdir())
