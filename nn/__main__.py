"""Command line: ``python -m nn <command>``.

Commands:
  demo        train the course's sigmoid MLP on the bundled Iris table, print its confusion matrix
  list        the practicals, one line each
  run         run a practical's solution (or, with --exercise, the student's file)
  check       grade the student's file of a practical: per function, correct or by how much not
  exercises   regenerate exercises/ from solutions/ (--check: fail if they differ)
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


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
    run = commands.add_parser("run", help="run a practical's solution as a script")
    run.add_argument("practical", help="its name, as printed by: python -m nn list")
    run.add_argument("--exercise", action="store_true",
                     help="run the student's file in exercises/ instead of the solution")
    check = commands.add_parser("check", help="grade a student's file with the practical's tests")
    check.add_argument("practical", help="its name, as printed by: python -m nn list")
    check.add_argument("--file", default=None,
                       help="the file to grade (default: exercises/<chapter>/<practical>.py)")
    check.add_argument("--verbose", action="store_true", help="also print pytest's output")
    exercises = commands.add_parser("exercises", help="regenerate exercises/ from solutions/")
    exercises.add_argument("--check", action="store_true",
                           help="change nothing; fail if exercises/ differs from what it would be")
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
    if args.command == "run":
        return _run(args.practical, args.exercise)
    if args.command == "check":
        from .course.check import check as check_practical
        return check_practical(args.practical, args.file, args.verbose)
    if args.command == "exercises":
        return _exercises(args.check)
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


def _run(name: str, exercise: bool) -> int:
    from .course import find
    try:
        practical = find(name)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    path = practical.exercise if exercise else practical.solution
    if not path.is_file():
        print(f"error: no file at {path}; python -m nn exercises makes the exercises",
              file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, str(path)])


def _exercises(check_only: bool) -> int:
    from .course.practicals import EXERCISES, ROOT, SOLUTIONS
    from .course.stubs import StubError, differences, generate
    try:
        if check_only:
            stale = differences(SOLUTIONS, EXERCISES)
            for line in stale:
                print(line)
            if stale:
                print("exercises/ is out of date: run python -m nn exercises and commit the "
                      "result", file=sys.stderr)
            return 1 if stale else 0
        changed = generate(SOLUTIONS, EXERCISES)
    except StubError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in changed:
        print(f"wrote {Path(path).relative_to(ROOT)}")
    leftovers = [line for line in differences(SOLUTIONS, EXERCISES)
                 if line.startswith("not generated")]
    for line in leftovers:
        print(line)
    print(f"exercises/ is up to date ({len(changed)} file(s) written)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
