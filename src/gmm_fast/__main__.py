"""Command line: ``python -m gmm_fast demo``."""
import argparse
import sys


def main(argv=None):
    """Entry point of the ``gmm-fast`` command."""
    parser = argparse.ArgumentParser(prog="gmm-fast", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="fit the estimators on built-in data and compare")
    demo.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo
        run_demo(random_state=args.random_state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
