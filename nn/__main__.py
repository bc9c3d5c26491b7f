"""Command line: ``python -m nn <command>``.

Commands:
  demo        train the course's sigmoid MLP on the bundled Iris table, print its confusion matrix
  list        the practicals, one line each
  start       copy a practical's exercise into your workspace, work/<chapter>/ (never overwrites)
  check       grade your file of a practical: per function, correct, or where and by how much not
  run         run a practical's solution (or, with --exercise, your file)
  exercises   (teachers) regenerate exercises/ from solutions/ (--check: fail if they differ)
"""
from __future__ import annotations

import argparse
import subprocess
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nn", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="command")
    demo = commands.add_parser("demo", help="train a sigmoid MLP on Iris (offline, a second)")
    demo.add_argument("--epochs", type=int, default=300, help="training epochs (300)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the split, weights, shuffling")
    demo.add_argument("--backend", default="numpy", choices=("numpy", "cupy"))
    demo.add_argument("--precision", default="fp32", choices=("fp64", "fp32", "mixed"))
    demo.add_argument("--progress", action="store_true", help="show a progress bar")
    commands.add_parser("list", help="the practicals, one line each")
    start = commands.add_parser(
        "start", help="copy a practical's exercise into your workspace (work/, or $NN_WORK)")
    start.add_argument("practical", help="its name, as printed by: python -m nn list")
    start.add_argument("--script", action="store_true",
                       help="a script work/<chapter>/<practical>.py instead of a notebook .ipynb")
    start.add_argument("--force", action="store_true",
                       help="start again: your file is first renamed to a timestamped backup")
    check = commands.add_parser("check", help="grade your file with the practical's tests")
    check.add_argument("practical", help="its name, as printed by: python -m nn list")
    check.add_argument("--file", default=None,
                       help="the file to grade, .py or .ipynb (default: your workspace copy, "
                            "else exercises/<chapter>/<practical>.py)")
    check.add_argument("--only", action="append", metavar="FUNCTION",
                       help="run only the tests of this function (repeat for several)")
    check.add_argument("--verbose", action="store_true",
                       help="every case, passing ones too, and pytest's report of each failure")
    run = commands.add_parser("run", help="run a practical's solution (or your file)")
    run.add_argument("practical", help="its name, as printed by: python -m nn list")
    run.add_argument("--exercise", action="store_true",
                     help="run your file (workspace copy, else the exercise) instead of the "
                          "solution; a notebook runs in a Jupyter kernel")
    run.add_argument("--file", default=None, help="run this file (.py or .ipynb)")
    exercises = commands.add_parser("exercises", help="regenerate exercises/ from solutions/")
    exercises.add_argument("--check", action="store_true",
                           help="change nothing; fail if exercises/ differs from what it would be")
    exercises.add_argument("--force", action="store_true",
                           help="also overwrite files edited since they were generated (each "
                                "is first copied to work/backups/)")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "demo":
        from .backends import BackendUnavailableError
        from .demo import run_demo
        try:
            accuracy = run_demo(epochs=args.epochs, seed=args.seed, backend=args.backend,
                                precision=args.precision, progress=args.progress)
        except BackendUnavailableError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0 if accuracy >= 0.95 else 1
    if args.command == "list":
        return _list()
    if args.command == "start":
        return _start(args.practical, args.script, args.force)
    if args.command == "run":
        return _run(args.practical, args.exercise or args.file is not None, args.file)
    if args.command == "check":
        from .course.check import check as check_practical
        return check_practical(args.practical, args.file, args.verbose, args.only)
    if args.command == "exercises":
        return _exercises(args.check, args.force)
    return 2  # argparse rejects unknown commands before this


def _list() -> int:
    from .course import practicals
    found = practicals()
    if not found:
        print("no practicals found (the solutions/ folder is missing)")
        return 1
    width = max(len(p.name) for p in found) + 2
    for p in found:
        print(f"{p.name:<{width}}{p.chapter + '/':<13}{p.title}")
    return 0


def _start(name: str, script: bool, force: bool) -> int:
    from .course import find
    from .course.practicals import shown
    from .course.workspace import start
    from .errors import NNError
    try:
        practical = find(name)
        path, backups = start(practical, script=script, force=force)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    except (NNError, ModuleNotFoundError) as exc:  # jupytext, to make a missing notebook
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for old, backup in backups:
        print(f"kept your previous file as {shown(backup)}")
    print(f"started {name}: {shown(path)}")
    if path.suffix == ".ipynb":
        print(f"  open it in Jupyter (jupyter lab {shown(path)}), VS Code or Colab, run its "
              "first cell,")
    else:
        print("  open it in your editor (or in Jupyter, as a notebook, with jupytext),")
    print(f"  replace each raise NotImplementedError(...) by your code, then check it with:\n"
          f"  python -m nn check {name}")
    return 0


def _run(name: str, exercise: bool, file=None) -> int:
    from .course import find
    from .course.practicals import shown, student_file
    try:
        practical = find(name)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    if exercise:
        path, why = student_file(practical, file)
        if why:
            print(f"running {shown(path)} ({why})")
    else:
        path = practical.solution
    if not path.is_file():
        hint = (f"python -m nn start {name} makes your copy" if exercise else
                "this copy of the course has no solution for it")
        print(f"error: no file at {shown(path)}; {hint}", file=sys.stderr)
        return 2
    if path.suffix == ".ipynb":
        from .course.notebooks import execute
        print(f"running {shown(path)} in a Jupyter kernel (figures go to figures/)")
        return execute(path)
    # a script runs as python would run it, with the student's notebooks of its folder
    # importable (from im2col import col2im, where im2col is a notebook)
    code = "import sys; from nn.course.notebooks import run_script; run_script(sys.argv[1])"
    return subprocess.call([sys.executable, "-c", code, str(path)])


def _exercises(check_only: bool, force: bool = False) -> int:
    from .course.practicals import EXERCISES, SOLUTIONS, shown, work_dir
    from .course.stubs import (EditedFilesError, StubError, cell_marker_problems, differences,
                               generate)
    from .errors import FileAccessError
    try:
        if check_only:
            stale = differences(SOLUTIONS, EXERCISES)
            for line in stale:
                print(line)
            if stale:
                print("exercises/ is out of date: run python -m nn exercises and commit the "
                      "result", file=sys.stderr)
            return 1 if stale else 0
        import time
        backup = work_dir() / "backups" / time.strftime("exercises-%Y%m%d-%H%M%S")
        changed = generate(SOLUTIONS, EXERCISES, force=force, backup=backup)
    except (StubError, EditedFilesError, FileAccessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:  # jupytext, for the notebooks
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if force and backup.exists():
        print(f"the edited files were copied to {shown(backup)} first")
    for path in changed:
        print(f"wrote {shown(path)}")
    for solution in sorted(SOLUTIONS.glob("*/*.py")):
        for problem in cell_marker_problems(solution.read_text(encoding="utf-8"),
                                            shown(solution)):
            print(f"warning: {problem}", file=sys.stderr)
    leftovers = [line for line in differences(SOLUTIONS, EXERCISES)
                 if line.startswith("not generated")]
    for line in leftovers:
        print(line)
    print(f"exercises/ is up to date ({len(changed)} file(s) written)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
