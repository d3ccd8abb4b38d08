"""flake8 adapter (placeholder until the linter lands): reports nothing yet."""

from rfa_lint import __version__


class RfaChecker:
    name = "rfa-lint"
    version = __version__

    def __init__(self, tree, filename="(none)"):
        self.filename = filename

    def run(self):
        return iter(())
