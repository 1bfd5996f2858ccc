"""The ``storefront`` command: one subcommand per MLproject entry point (names with dashes).

Each subcommand lives in its own module, which defines ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int | None``. Modules import their heavy dependencies inside ``run`` so that
``storefront --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from pipelines.errors import StorefrontError

COMMANDS: dict[str, str] = {
    "main": "pipelines.main",
    "generate-data": "pipelines.generate_data",
    "ingest": "pipelines.ingest",
    "train-itemcf": "pipelines.train_itemcf",
    "train-svdpp": "pipelines.train_svdpp",
    "recommend": "pipelines.recommend",
    "train-churn": "pipelines.train_churn",
    "score-churn": "pipelines.score_churn",
    "train-sarima": "pipelines.train_sarima",
    "forecast": "pipelines.forecast",
    "promote": "pipelines.promote",
    "rollback": "pipelines.rollback",
    "analyze": "pipelines.analyze",
    "train-segments": "pipelines.train_segments",
    "train-next-category": "pipelines.train_next_category",
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
        doc = (module.__doc__ or "").strip()
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=doc or module.HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
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
