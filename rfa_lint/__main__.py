"""``python -m rfa_lint`` is the ``rfa-lint`` command."""

from rfa_lint.cli import main

main(prog_name="rfa-lint")
