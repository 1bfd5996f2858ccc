"""Promote a model's ``challenger`` to ``champion`` (entry point ``promote``).

Reads the registry: ``<name>@challenger`` and ``<name>@champion``. When there is a champion, both are
re-scored on the challenger's held-out test data (the ``holdout/`` artifacts of its training run) by the
model's primary metric; the challenger wins only by more than ``--margin``. Writes registry aliases and
tags only (``previous_champion``, ``promotion_verdict``, the model's ``history.NNNN`` tags); never deletes
a version. Exit codes: 0 decided (promoted or kept), 3 blocked (no challenger, champion not comparable).
"""

from __future__ import annotations

import argparse
import logging

from pipelines.families import FAMILIES

logger = logging.getLogger(__name__)

HELP = "promote the challenger to champion if it beats the re-scored champion"
DOCS = "README.md#champion-and-challenger"
MODEL_HELP = f"registered model name, or a family ({', '.join(f.name.replace('_', '-') for f in FAMILIES.values())})"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help=MODEL_HELP)
    parser.add_argument("--margin", type=float, default=0.0,
                        help="how much better (absolute, in the primary metric) the challenger must be")
    parser.add_argument("--force", action="store_true",
                        help="make the challenger (or --version) champion without comparing")
    parser.add_argument("--version", help="with --force: the version to make champion")


def run(args: argparse.Namespace) -> int:
    from pipelines import registry
    from pipelines.errors import ConfigurationError
    from pipelines.families import registered_name

    name = registered_name(args.model)
    if args.force:
        outcome = registry.force_promote(name, args.version)
    else:
        if args.margin < 0:
            raise ConfigurationError(f"--margin must be >= 0, got {args.margin}")
        outcome = registry.promote(name, margin=args.margin)
    word = "promoted" if outcome.promoted else "kept"
    print(f"{name}: {word}; champion is version {outcome.champion_version} ({outcome.reason})")
    return 0
