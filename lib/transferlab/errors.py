"""The suite's user-facing errors: a bad name, value, file or folder, raised before any training starts.

They sit at the very bottom of the layers so that every module can raise them. Every error whose message is the
whole answer (what is wrong, naming the file, value or name, and how to fix it) derives from
:class:`TransferlabError`; the command line prints it as one ``transferlab: error: ...`` line with exit status 2,
and a script can catch them all with ``except transferlab.TransferlabError``. Anything else is a bug and keeps its
traceback.
"""


class TransferlabError(Exception):
    """An error whose message names what is wrong and how to fix it (no traceback needed to act on it)."""


class ConfigError(TransferlabError, ValueError):
    """A parameter, name, environment variable or file a user gave is invalid; the message names it and what would
    be valid."""


class WriteError(TransferlabError, OSError):
    """A file or folder could not be written (read-only, missing, full disk); the message names it and what to do.
    Atomic writes leave the previous file, if any, as it was."""


__all__ = ["ConfigError", "TransferlabError", "WriteError"]
