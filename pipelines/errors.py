"""Errors the command line reports as a message and a non-zero exit code instead of a traceback."""


class StorefrontError(Exception):
    """Base class: a problem with the user's input or environment, explained in the message."""

    exit_code = 2


class DataValidationError(StorefrontError):
    """A table breaks the data contract; the message names the file, the column and the first offending rows."""


class ConfigurationError(StorefrontError):
    """A parameter or option is invalid; the message names the parameter."""
