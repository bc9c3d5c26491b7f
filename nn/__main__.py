"""Command line: ``python -m nn <command>``.

Commands:
  demo    train the course's sigmoid MLP on the bundled Iris table and print its confusion matrix
"""
from __future__ import annotations

import argparse
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
    return 2  # argparse rejects unknown commands before this


if __name__ == "__main__":
    sys.exit(main())
