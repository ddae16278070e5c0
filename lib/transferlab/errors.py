"""The suite's user-facing error: a bad name or value, raised before any training starts.

It sits at the very bottom of the layers so that every module can raise it; the command line turns it into a
one-line message and exit status 2.
"""


class ConfigError(ValueError):
    """A parameter, name or file a user gave is invalid; the message names it and what would be valid."""


__all__ = ["ConfigError"]
