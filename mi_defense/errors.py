"""The one exception type that reaches the user as a one-line message, and the warning
for settings that expose members."""
import contextlib
import sys
import warnings


class UserError(Exception):
    """Bad input or an unmet precondition the user can fix.

    The CLI prints ``error: <message>`` and exits with status 2, without a traceback.
    The message names the problem and the fix.
    """


class DataError(UserError):
    """A dataset file is missing, corrupt, or inconsistent."""


class ExposureWarning(UserWarning):
    """A setting that puts real members into a release (e.g. FRePo's ``init=real``).

    The CLI prints it as one ``warning: <message>`` line on standard error."""


@contextlib.contextmanager
def exposure_warnings_on_one_line():
    """Within the block, an ``ExposureWarning`` prints as ``warning: <message>`` on standard
    error (no file name or source line); other warnings print as usual."""
    shown = warnings.showwarning

    def one_line(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ExposureWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = one_line
    try:
        yield
    finally:
        warnings.showwarning = shown
