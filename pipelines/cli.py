"""The ``storefront`` command: one subcommand per MLproject entry point (names with dashes).

Each subcommand lives in its own module, which defines ``HELP`` (one line), ``DOCS`` (its documentation page),
``add_arguments(parser)`` and ``run(args) -> int | None``. The training commands come from
:data:`pipelines.families.FAMILIES` (their one-line help and docs page too); their modules define
``add_arguments(parser)``, ``config_from_args(args)``, ``train(config)`` and ``summary(result, verdict)``, and
:func:`run_training` runs them: train, the registration gate, the summary. Modules import their heavy dependencies inside ``run`` so that
``storefront --help`` stays fast. :func:`parse_args` is the one place that reads options: MLproject's unset
parameters (empty strings) are dropped there, so every default applies.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from pipelines.errors import StorefrontError
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
    "promote": "pipelines.ops.promote",
    "rollback": "pipelines.ops.rollback",
    "analyze": "pipelines.analytics.analyze",
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


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("alembic", "urllib3", "matplotlib", "PIL", "git", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


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
    return args


def train_from_args(args: argparse.Namespace):
    """Train the family of a parsed training command (``train-itemcf ...``); registers nothing, returns the
    :class:`pipelines.mlflow_logging.TrainResult`."""
    from pipelines.mlflow_logging import describe_training

    module = importlib.import_module(COMMANDS[args.command])
    result = module.train(module.config_from_args(args))
    describe_training(result)
    return result


def run_training(args: argparse.Namespace) -> int:
    """A training command: train, offer the model to the registration gate, print the module's summary."""
    from pipelines import registry

    result = train_from_args(args)
    verdict = registry.register_and_say(result)
    print(importlib.import_module(COMMANDS[args.command]).summary(result, verdict))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging(args.verbose)
    try:
        code = args._run(args)
    except StorefrontError as exc:
        print(f"storefront {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
