"""Errors a user can cause or fix. The CLI prints each as one line on stderr and exits with its
code (README "Errors and exit codes"):

    0    success
    1    training diverged (too many non-finite steps in a row; the last good checkpoint is kept)
    2    bad input or a bad environment: a flag, a file, a model, a full disk, a busy run folder
    70   an internal error (a bug): one line, the traceback saved to a file (T3D_DEBUG=1 shows it)
    130  interrupted (Ctrl-C); a checkpoint was saved
"""


class T3dError(Exception):
    """Bad input or an unavailable resource: the message is shown to the user as is."""

    exit_code = 2


class WriteError(T3dError):
    """A file could not be written (disk full, permissions, I/O error); nothing was half-written."""


class RunBusy(T3dError):
    """Another live process is writing into the same run folder."""


class TrainingDiverged(T3dError):
    """The run produced non-finite losses too many steps in a row."""

    exit_code = 1
