"""Errors the command line reports as one line and a non-zero exit code instead of a traceback.

Exit codes: 2 for a problem with the user's input or environment (:class:`DataValidationError`,
:class:`ConfigurationError`, :class:`RescoreError`, :class:`StudyFailedError`), 3 when a promotion cannot be
decided (:class:`PromotionBlocked`), 1 when the project failed a check of its own output (:class:`RoundTripError`).
"""


class StorefrontError(Exception):
    """Base class: a problem with the user's input or environment, explained in the message."""

    exit_code = 2


class DataValidationError(StorefrontError):
    """A table breaks the data contract; the message names the file, the column and the first offending rows."""


class ConfigurationError(StorefrontError):
    """A parameter or option is invalid; the message names the parameter."""


class RescoreError(StorefrontError):
    """A model cannot be scored on the given test data."""


class PromotionBlocked(StorefrontError):
    """Promotion cannot be decided (no challenger, or the champion cannot be scored on the challenger's data)."""

    exit_code = 3


class StudyFailedError(StorefrontError):
    """No trial of the study completed (the message quotes the first failure)."""


class RoundTripError(StorefrontError):
    """The logged model, loaded back, does not give the answers computed in training."""

    exit_code = 1
