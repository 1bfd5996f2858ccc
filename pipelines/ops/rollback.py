"""Move a model's ``champion`` alias back to the previous champion (``storefront rollback``).

Reads the champion's ``previous_champion`` tag; writes the alias and a history tag. Never deletes a version.
"""

from __future__ import annotations

import argparse

from pipelines.ops.promote import MODEL_HELP

HELP = "move champion back to the previous champion"
DOCS = "README.md#champion-and-challenger"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help=MODEL_HELP)


def run(args: argparse.Namespace) -> int:
    from pipelines import registry
    from pipelines.families import registered_name

    name = registered_name(args.model)
    outcome = registry.rollback(name)
    print(f"{name}: champion is version {outcome.champion_version} again ({outcome.reason})")
    return 0
