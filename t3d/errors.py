"""Errors a user can cause and fix; the CLI prints them as one line and exits 2."""


class T3dError(Exception):
    """Bad input or an unavailable resource: message is shown to the user as is."""

    exit_code = 2


class TrainingDiverged(T3dError):
    """The run produced non-finite losses too many steps in a row."""

    exit_code = 1
