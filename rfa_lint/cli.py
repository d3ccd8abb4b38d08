"""The ``rfa-lint`` command (placeholder until the linter lands)."""

import sys


def main() -> None:
    print("rfa-lint: the command is not yet implemented", file=sys.stderr)
    sys.exit(2)
