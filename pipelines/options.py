"""Command-line options shared by the entry points (one definition, the same help everywhere), and the typed
:class:`StudyOptions` that the study options become once parsed.

MLproject passes numbers as the user wrote them (``-P n_trials=20.0`` is possible), so integer options
accept a float text that is a whole number. Unset MLproject parameters (empty strings) are dropped by
:func:`pipelines.cli.parse_args` before parsing, so the defaults below apply.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from models.contracts import Param
    from pipelines.families import Family


def whole_number(text: str) -> int:
    """An ``argparse`` type: ``"20"`` and ``"20.0"`` give 20; anything else is a usage error."""
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not number.is_integer():
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
    return int(number)


def within(param: Param, option: str):
    """An ``argparse`` type checking a served model's parameter limits (:class:`models.serving.Param`)."""

    def convert(text: str):
        value = whole_number(text) if param.type == "long" else text
        try:
            return param.check(value, option)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = param.name
    return convert


# Missing-value markers of bring-your-own tables and series (``--na-values``), in one place. A blank cell is always
# missing; markers are compared case-insensitively after stripping spaces (``na`` and ``NULL`` match too).
NA_VALUES = ("?", "NA", "N/A", "null", "-")


def na_values(text: str) -> tuple[str, ...]:
    """An ``argparse`` type for ``--na-values``: comma-separated markers (``?,NA,n.a.``); ``none`` means blank
    cells only."""
    if text.strip().lower() == "none":
        return ()
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated markers or none, got {text!r}")
    return values


def add_na_values(parser: argparse.ArgumentParser, of: str) -> None:
    parser.add_argument("--na-values", type=na_values, default=None,
                        help=f"comma-separated text that marks a missing value in {of}, case-insensitive; blank "
                             f"cells are always missing; `none` for blanks only (default {','.join(NA_VALUES)})")


def bool_text(value: str | bool) -> bool:
    """An ``argparse`` type for true/false flags that MLproject passes as text."""
    if isinstance(value, bool):
        return value
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


# Optuna's RDB storages (SQLAlchemy URLs) by scheme: the storages several processes can share.
RDB_SCHEMES = ("postgresql", "mysql", "sqlite", "oracle", "mssql")


def is_rdb_url(url: str | None) -> bool:
    """Whether ``url`` is an SQLAlchemy database URL (``postgresql+psycopg://...``, ``sqlite:///study.db``)."""
    if not url or "://" not in url:
        return False
    return url.split("://", 1)[0].split("+", 1)[0].lower() in RDB_SCHEMES


def check_workers(workers: int | None, storage: str | None) -> int | None:
    """``--workers``: None (an ordinary study) or at least 1; more than one needs an RDB ``--storage`` that every
    worker process opens. Raises :class:`pipelines.errors.ConfigurationError` naming the parameter."""
    from pipelines.errors import ConfigurationError

    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigurationError(f"--workers must be an integer of at least 1, got {workers!r}")
    if workers > 1 and not is_rdb_url(storage):
        given = f"got {storage!r}" if storage else "none given"
        raise ConfigurationError(f"--workers {workers} needs a database --storage that every worker opens "
                                 f"(postgresql+psycopg://..., mysql://..., sqlite:///study.db); {given}")
    return workers


@dataclass(frozen=True)
class StudyOptions:
    """The budget and storage of one Optuna study (``--n-trials``, ``--timeout``, ``--seed``, ``--storage``,
    ``--study-name``, ``--workers``); ``study_name`` None means the entry point derives one from its other options.
    ``workers`` set makes the study shared (:mod:`pipelines.workers`): that many local worker processes, and
    others may join with ``storefront tune-worker``; ``command`` is the command line that built these options
    (what a joining worker runs up to its study)."""

    n_trials: int | None = None
    timeout: float | None = None
    seed: int = 42
    storage: str | None = None
    study_name: str | None = None
    workers: int | None = None
    command: tuple[str, ...] = ()

    def __post_init__(self):
        check_workers(self.workers, self.storage)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "StudyOptions":
        return cls(args.n_trials, args.timeout, args.seed, args.storage, args.study_name,
                   getattr(args, "workers", None), tuple(getattr(args, "argv", None) or ()))

    @classmethod
    def defaults(cls, family: Family, **changes) -> "StudyOptions":
        return cls(**{"n_trials": family.n_trials, "timeout": family.timeout, **changes})

    def named(self, default: str) -> "StudyOptions":
        from dataclasses import replace

        return self if self.study_name else replace(self, study_name=default)


@dataclass(frozen=True)
class TrainConfig:
    """What every training command's typed config holds: its study and the folder of the shop's tables (None:
    ``<project>/data/generated``). Each family's config adds its own options."""

    study: StudyOptions
    data_dir: Path | None = None


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder with the canonical tables (default: <project>/data/generated)")


def add_study_options(parser: argparse.ArgumentParser, family: Family, *, study_name: str | None = None,
                      seed_help: str = "sampler seed", per: str = "", timeout_help: str | None = None,
                      workers: bool = True) -> None:
    """``--data-dir``, ``--n-trials``, ``--timeout``, ``--seed``, ``--storage``, ``--study-name`` and (``workers``:
    for a command that runs one study) ``--workers``, with the family's default budget (:mod:`pipelines.families`)."""
    add_data_dir(parser)
    parser.add_argument("--n-trials", type=whole_number, default=family.n_trials,
                        help=f"Optuna trials{per} (default {family.n_trials})")
    parser.add_argument("--timeout", type=float, default=family.timeout,
                        help=f"{timeout_help or 'stop starting trials after this many seconds'}, 0 = no limit "
                             f"(default {family.timeout:g})")
    parser.add_argument("--seed", type=whole_number, default=42, help=f"{seed_help} (default 42)")
    parser.add_argument("--storage", default=None,
                        help="Optuna storage URL (sqlite:///study.db, postgresql://...) to resume or share the "
                             "study; default in-memory")
    parser.add_argument("--study-name", default=study_name,
                        help=f"Optuna study name (default {study_name or 'derived from the options'})")
    if workers:
        parser.add_argument("--workers", type=whole_number, default=None,
                            help="share the study: run it in this many worker processes (this one and N-1 more; "
                                 "--n-trials is the total of all), which other machines may join with `storefront "
                                 "tune-worker`; more than 1 needs a database --storage (default: an ordinary study)")

