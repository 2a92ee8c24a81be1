"""Errors that mean "your input or config is wrong" (exit code 2), as opposed to bugs (exit code 1)."""


class UserError(ValueError):
    """Bad input or configuration. The message names the file, line and field where it can."""
