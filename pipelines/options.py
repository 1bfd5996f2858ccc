"""Command-line options shared by the entry points (one definition, the same help everywhere).

MLproject passes numbers as the user wrote them (``-P n_trials=20.0`` is possible), so integer options
accept a float text that is a whole number.
"""

from __future__ import annotations

import argparse


def whole_number(text: str) -> int:
    """An ``argparse`` type: ``"20"`` and ``"20.0"`` give 20; anything else is a usage error."""
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not number.is_integer():
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
    return int(number)


def add_study_options(parser: argparse.ArgumentParser, *, n_trials: int, timeout: float, study_name: str | None,
                      seed_help: str = "sampler seed") -> None:
    """``--data-dir``, ``--n-trials``, ``--timeout``, ``--seed``, ``--storage`` and ``--study-name``."""
    parser.add_argument("--data-dir", default=None,
                        help="folder with the canonical tables (default: <project>/data/generated)")
    parser.add_argument("--n-trials", type=whole_number, default=n_trials, help=f"Optuna trials (default {n_trials})")
    parser.add_argument("--timeout", type=float, default=timeout,
                        help=f"stop starting trials after this many seconds, 0 = no limit (default {timeout:g})")
    parser.add_argument("--seed", type=whole_number, default=42, help=f"{seed_help} (default 42)")
    parser.add_argument("--storage", default=None,
                        help="Optuna storage URL (sqlite:///study.db, postgresql://...) to resume or share the "
                             "study; default in-memory")
    parser.add_argument("--study-name", default=study_name,
                        help=f"Optuna study name (default {study_name or 'derived from the options'})")
