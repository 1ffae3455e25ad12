"""The one exception type that reaches the user as a one-line message."""


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
