"""The options both recommender commands share, and their typed form (light: no pandas or MLflow imports)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from models.recommenders.contract import K
from pipelines.families import Family
from pipelines.options import StudyOptions, TrainConfig, add_study_options, whole_number, within

DEFAULT_TEST_DAYS = 60
DEFAULT_VAL_DAYS = 60
DEFAULT_BLEND_TRIALS = 30  # pipelines.recommenders.hybrid.BLEND_TRIALS (that module is heavy to import here)


@dataclass(frozen=True)
class RecommenderConfig(TrainConfig):
    """The options of ``train_itemcf`` and ``train_svdpp`` that every recommender run has."""

    k: int = K.default
    test_days: int = DEFAULT_TEST_DAYS
    val_days: int = DEFAULT_VAL_DAYS
    blend_trials: int = DEFAULT_BLEND_TRIALS


def add_recommender_options(parser: argparse.ArgumentParser, family: Family, *, study_name: str | None,
                            seed_help: str = "sampler seed") -> None:
    """The study options plus ``--k``, the two windows and the content blend's budget."""
    add_study_options(parser, family, study_name=study_name, seed_help=seed_help)
    parser.add_argument("--k", type=within(K, "--k"), default=K.default,
                        help=f"length of the recommendation lists scored, {K.low}..{K.high} (default {K.default})")
    parser.add_argument("--test-days", type=whole_number, default=DEFAULT_TEST_DAYS,
                        help=f"days at the end of the data held out as the test window (default {DEFAULT_TEST_DAYS})")
    parser.add_argument("--val-days", type=whole_number, default=DEFAULT_VAL_DAYS,
                        help=f"days before the test window used to tune (default {DEFAULT_VAL_DAYS})")
    parser.add_argument("--blend-trials", type=whole_number, default=DEFAULT_BLEND_TRIALS,
                        help="Optuna trials choosing the content blend on validation after the study, 0 = no blend "
                             f"(default {DEFAULT_BLEND_TRIALS})")


def recommender_config(args: argparse.Namespace) -> dict:
    """The shared fields of a :class:`RecommenderConfig` from the parsed options."""
    from pipelines.errors import ConfigurationError

    if args.blend_trials < 0:
        raise ConfigurationError(f"--blend-trials must be 0 (no blend) or a positive integer, got {args.blend_trials}")
    return {"study": StudyOptions.from_args(args), "data_dir": args.data_dir, "k": args.k,
            "test_days": args.test_days, "val_days": args.val_days, "blend_trials": args.blend_trials}
