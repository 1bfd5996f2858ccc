"""Move a model's ``champion`` alias back to the previous champion (``storefront rollback``).

Reads the champion's ``previous_champion`` tag; writes the alias and a history tag. Never deletes a version.
"""

from __future__ import annotations

import argparse

HELP = "move champion back to the previous champion"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="registered model name, or a family name")


def run(args: argparse.Namespace) -> int:
    from pipelines import registry
    from pipelines.promote import model_name

    name = model_name(args.model)
    outcome = registry.rollback(name)
    print(f"{name}: champion is version {outcome.champion_version} again ({outcome.reason})")
    return 0
