"""The ``storefront`` command: one subcommand per MLproject entry point (names with dashes).

Each subcommand lives in its own module, which defines ``HELP`` (one line), ``DOCS`` (its documentation page),
``add_arguments(parser)`` and ``run(args) -> int | None``. The training commands come from
:data:`pipelines.families.FAMILIES` (their one-line help and docs page too); their modules define
``add_arguments(parser)``, ``config_from_args(args)``, ``train(config)`` and ``summary(result, verdict)``, and
:func:`run_training` runs them: train, the registration gate, the summary. Modules import their heavy
dependencies inside their functions so that ``storefront --help`` stays fast. :func:`parse_args` is the one place that reads options: MLproject's unset
parameters (empty strings) are dropped there, so every default applies. :func:`main` is the one place failures
become messages: one line ``storefront <command>: error: <problem>`` and an exit code of :mod:`pipelines.errors`
(:func:`describe_failure`), the traceback only with ``-v``; SIGTERM is handled like Ctrl-C for every command.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import traceback

from pipelines import errors
from pipelines.families import FAMILIES

TRAINERS = {f.command: f for f in FAMILIES.values() if f.command}
COMMANDS: dict[str, str] = {
    "main": "pipelines.ops.main",
    "generate-data": "pipelines.data.generate",
    "ingest": "pipelines.data.ingest",
    **{command: f.entry_module for command, f in TRAINERS.items()},
    "recommend": "pipelines.recommenders.recommend",
    "score-churn": "pipelines.churn.score",
    "forecast": "pipelines.sarima.forecast",
    "batch-score": "pipelines.batch.score",
    "promote": "pipelines.ops.promote",
    "rollback": "pipelines.ops.rollback",
    "analyze": "pipelines.analytics.analyze",
    "tune-worker": "pipelines.workers",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or with ``only`` just that subcommand's (importing one module keeps start-up fast)."""
    parser = argparse.ArgumentParser(
        prog="storefront",
        description="Optuna-tuned recommenders, churn and sales forecasts for an online shop, tracked in MLflow.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        if only is not None and name != only:
            continue
        module = importlib.import_module(module_name)
        family = TRAINERS.get(name)
        summary, docs = (family.help, family.docs) if family else (module.HELP, module.DOCS)
        p = sub.add_parser(name, help=summary, description=f"{summary[0].upper()}{summary[1:]}. See {docs}.")
        module.add_arguments(p)
        p.set_defaults(_run=getattr(module, "run", run_training))
    return parser


class _NoInterruptTraceback(logging.Filter):
    """Drop the traceback from a log record about Ctrl-C or SIGTERM (Optuna logs the interrupted trial with one):
    the command ends with its one line instead; ``-v`` keeps everything."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt):
            record.exc_info, record.exc_text = None, None
        return True


INTERRUPT_LOGGERS = ("optuna.study._optimize",)  # loggers that log an interrupted trial with its traceback


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("alembic", "urllib3", "matplotlib", "PIL", "git", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not verbose:  # "Retrying (Retry(total=1, ...))" per attempt: the failure itself is reported in one line
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
        for name in INTERRUPT_LOGGERS:
            if not any(isinstance(f, _NoInterruptTraceback) for f in logging.getLogger(name).filters):
                logging.getLogger(name).addFilter(_NoInterruptTraceback())


def drop_empty_options(argv: list[str]) -> list[str]:
    """Remove ``--option ''`` and ``--option=`` pairs: MLproject passes unset parameters as empty strings."""
    kept: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token.startswith("--") and token.endswith("=") and len(token) > 3:
            i += 1
            continue
        if token.startswith("--") and "=" not in token and i + 1 < len(argv) and argv[i + 1] == "":
            i += 2
            continue
        kept.append(token)
        i += 1
    return kept


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The options of ``storefront <command> ...``; unset MLproject parameters (empty strings) are None."""
    argv = drop_empty_options(list(argv))
    only = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(only if only in COMMANDS else None).parse_args(argv)
    for key, value in vars(args).items():
        if value == "":
            setattr(args, key, None)
    args.argv = argv[argv.index(only):] if only in argv else argv  # the command line, for a shared study's workers
    return args


def train_from_args(args: argparse.Namespace):
    """Train the family of a parsed training command (``train-itemcf ...``); registers nothing, returns the
    :class:`pipelines.mlflow_logging.TrainResult`."""
    from pipelines.imports import TRAINING_IMPORTS, import_off_stack
    from pipelines.mlflow_logging import describe_training

    for name in TRAINING_IMPORTS:  # not from inside the training, whose frames an import's kept error would keep
        import_off_stack(name)
    module = importlib.import_module(COMMANDS[args.command])
    result = module.train(module.config_from_args(args))
    describe_training(result)
    return result


def run_training(args: argparse.Namespace) -> int:
    """A training command: train, offer the model to the registration gate, print the module's summary."""
    from pipelines import registry, workers

    local = workers.start_local_workers(args)  # --workers N: the other N-1 read the data while we do
    try:
        result = train_from_args(args)
    except BaseException:
        if local is not None:
            local.stop()
        raise
    verdict = registry.register_and_say(result)
    print(importlib.import_module(COMMANDS[args.command]).summary(result, verdict))
    return 0


def _first_line(exc: BaseException, limit: int = 400) -> str:
    text = str(getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


def _tracking_problem(exc: BaseException) -> str:
    """One line for an MLflow failure: which tracking URI, and what went wrong (no retry chatter)."""
    import re

    from pipelines.tracking import tracking_uri

    text, uri = str(getattr(exc, "message", None) or exc), tracking_uri()
    if "Connection refused" in text or "Failed to establish a new connection" in text:
        return f"tracking server {uri} refused the connection: is it running? (MLFLOW_TRACKING_URI)"
    if status := re.search(r"too many (\d+) error responses", text):
        return f"tracking server {uri} answered HTTP {status[1]} to every retry"
    if status := re.search(r"error code (\d+) != 200\. Response body: '(.{0,200})", text, re.S):
        body = status[2].split("\n")[0].rstrip("'")
        return f"tracking server {uri} refused the request with HTTP {status[1]}: {body}"
    if "Max retries exceeded" in text or "timed out" in text.lower():
        return f"tracking server {uri} did not answer: {_first_line(exc, 300)}"
    return f"MLflow tracking at {uri}: {_first_line(exc)}"


def describe_failure(exc: BaseException) -> tuple[int, str]:
    """The exit code and the one-line message for a failed command (the table in :mod:`pipelines.errors`)."""
    if isinstance(exc, errors.Terminated):
        return errors.EXIT_TERMINATED, f"terminated by signal {exc.signum} (SIGTERM); a run in progress ends KILLED"
    if isinstance(exc, KeyboardInterrupt):
        return errors.EXIT_INTERRUPTED, "interrupted (Ctrl-C); a run in progress ends KILLED"
    if isinstance(exc, errors.StorefrontError):
        return exc.exit_code, str(exc)
    mlflow_errors = sys.modules.get("mlflow.exceptions")  # no MLflow imported: not an MLflow error
    if mlflow_errors is not None and isinstance(exc, mlflow_errors.MlflowException):
        return errors.EXIT_TRACKING, _tracking_problem(exc)
    if isinstance(exc, OSError):
        where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f)
        reason = exc.strerror or str(exc)
        return errors.EXIT_PATH, f"{where}: {reason}" if where else reason
    requests_errors = sys.modules.get("requests.exceptions")
    if requests_errors is not None and isinstance(exc, requests_errors.RequestException):
        return errors.EXIT_TRACKING, _tracking_problem(exc)
    return errors.EXIT_INTERNAL, (f"unexpected {type(exc).__name__}: {_first_line(exc)} (a bug: rerun with "
                                  "`storefront -v ...` for the traceback and report it)")


def main(argv: list[str] | None = None) -> int:
    """Run one command; every failure ends with one line on stderr and an exit code of :mod:`pipelines.errors`
    (the traceback too with ``-v``). SIGTERM stops the command like Ctrl-C: runs end KILLED, temporary files go."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging(args.verbose)
    try:
        previous = signal.signal(signal.SIGTERM, errors.raise_terminated)
    except ValueError:  # not the main thread (a test calling main from a thread)
        previous = None
    try:
        code = args._run(args)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - the one place failures become messages
        code, message = describe_failure(exc)
        if args.verbose:
            traceback.print_exc()
        print(f"storefront {args.command}: error: {message}", file=sys.stderr)
        return code
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
