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


def warn_exposure(message: str) -> None:
    """Issue an ``ExposureWarning`` attributed to the first caller outside this package (the
    user's line that asked for the exposing setting), whichever path led here."""
    import os

    here = os.path.dirname(os.path.abspath(__file__)) + os.sep
    level, frame = 2, sys._getframe(1)  # stacklevel 2: the caller of this function
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(here):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, ExposureWarning, stacklevel=level)


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
