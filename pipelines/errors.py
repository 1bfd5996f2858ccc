"""Errors the command line reports as one line and a documented exit code instead of a traceback.

:func:`pipelines.cli.main` turns every failure into one line ``storefront <command>: error: <problem>`` on
stderr (the traceback only with ``storefront -v``) and one of these exit codes (the README lists them too):

==== =====================================================================================================
code meaning
==== =====================================================================================================
0    success
1    the project failed a check of its own (:class:`RoundTripError`), or an unexpected error (a bug: rerun
     with ``-v`` and report the traceback)
2    bad input: a table breaks the data contract (:class:`DataValidationError`), an option or parameter is
     invalid (:class:`ConfigurationError`, also argparse's usage errors), a model cannot be re-scored
     (:class:`RescoreError`), no trial of a study completed (:class:`StudyFailedError`)
3    a promotion cannot be decided (:class:`PromotionBlocked`)
4    a path cannot be used: an output that exists without ``--overwrite``, a folder holding files that are
     not the project's, a file where a folder is expected, a place that cannot be written
     (:class:`OutputPathError`), or any other ``OSError`` such as a read-only artifact folder (the message names
     the path)
5    MLflow tracking or registry failed: the tracking server is down, refuses the request, or the store
     cannot be used (:class:`TrackingError`, any uncaught ``MlflowException``)
130  interrupted by Ctrl-C (SIGINT); a training run ends KILLED
143  terminated by SIGTERM (:class:`Terminated`); a training run ends KILLED
==== =====================================================================================================
"""

from os import sep as _sep

EXIT_INTERNAL = 1
EXIT_INPUT = 2
EXIT_PROMOTION = 3
EXIT_PATH = 4
EXIT_TRACKING = 5
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


class StorefrontError(Exception):
    """Base class: a problem with the user's input or environment, explained in the message."""

    exit_code = EXIT_INPUT


class DataValidationError(StorefrontError):
    """A table breaks the data contract; the message names the file, the column and the first offending rows."""


class ConfigurationError(StorefrontError):
    """A parameter or option is invalid; the message names the parameter."""


class RescoreError(StorefrontError):
    """A model cannot be scored on the given test data."""


class PromotionBlocked(StorefrontError):
    """Promotion cannot be decided (no challenger, or the champion cannot be scored on the challenger's data)."""

    exit_code = EXIT_PROMOTION


class StudyFailedError(StorefrontError):
    """No trial of the study completed (the message quotes the first failure)."""


class RoundTripError(StorefrontError):
    """The logged model, loaded back, does not give the answers computed in training."""

    exit_code = EXIT_INTERNAL


class OutputPathError(StorefrontError):
    """An output path cannot be used: it exists (without ``--overwrite``), it is a folder holding files that are not
    the project's, a file where a folder is expected (or the reverse), or it cannot be written; the message names
    the option, the path and what is in the way."""

    exit_code = EXIT_PATH


class TrackingError(StorefrontError):
    """The MLflow tracking server or store cannot be used (the message names the URI)."""

    exit_code = EXIT_TRACKING


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process gets SIGTERM: runs end KILLED, temporary files are removed,
    and the command exits with :data:`EXIT_TERMINATED`."""

    def __init__(self, signum: int = 15):
        super().__init__(f"signal {signum}")
        self.signum = signum


# Code that holds a tracking-store transaction: interrupting it there would leave a SQLite database locked.
_STORE_CODE = tuple(f"{_sep}{part}{_sep}" for part in ("sqlalchemy", "sqlite3", f"mlflow{_sep}store"))
_RETRY_SECONDS = 0.05


def _inside_store(frame) -> bool:
    while frame is not None:
        if any(part in frame.f_code.co_filename for part in _STORE_CODE):
            return True
        frame = frame.f_back
    return False


def raise_terminated(signum, frame):  # noqa: ARG001 - signal handler signature
    """The SIGTERM handler (``signal.signal(signal.SIGTERM, raise_terminated)``): raises :class:`Terminated` in the
    main thread — at once, or, while a tracking-store transaction runs, a few milliseconds later when it is done
    (SIGALRM brings the handler back), so the store is never left locked; a second SIGTERM during the clean-up
    that follows is ignored."""
    import signal

    if _inside_store(frame):
        signal.signal(signal.SIGALRM, raise_terminated)
        signal.setitimer(signal.ITIMER_REAL, _RETRY_SECONDS)
        return
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated(signal.SIGTERM.value)
