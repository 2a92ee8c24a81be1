"""The kinds of failure a user sees, and the exit code each maps to (``cli/app.py`` owns the map).

- :class:`UserError` (exit 2): the input or the config is wrong; the message names the file, line and field.
- :class:`RunFailed` (exit 1): the input was fine but the work could not finish (a NaN loss, a generation that never
  ends, a full disk, a failed run of an ablation grid); the message says what happened and what was kept.
- :class:`Interrupted` (exit 1): Ctrl-C during work that can be resumed; the message says how.
Anything else is a bug and keeps its traceback.
"""


class UserError(ValueError):
    """Bad input or configuration. The message names the file, line and field where it can."""


class RunFailed(RuntimeError):
    """A run that could not finish although its input was valid. Earlier outputs are intact."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGINT) during work that can be resumed. The message says how to resume it."""
