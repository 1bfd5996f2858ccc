"""Tune, calibrate, evaluate and log the churn classifier (``train_churn``).

Reads either the four canonical tables from ``--data-dir`` (default ``data/generated``) or, with
``--table``, a bring-your-own customer table (one row per customer, ``--label-column`` Yes/No or 1/0,
``--id-column``, mixed numeric and categorical columns; blank strings in numeric columns are missing).

Shop tables: leakage-free snapshots (``pipelines/churn_data.py``). ``--target churn`` labels customers with
no purchase in the ``--window-days`` (default 90) after the cutoff; ``--target purchase`` labels those who
buy in the next ``--window-days`` (default 7). The test cutoff T is ``--cutoff`` or the end of the data
minus the window; tuning fits on snapshots before T - window and scores ROC AUC on the snapshot at
T - window; the winner is refit on snapshots whose label windows end by T and scored once at T. Table: a
stratified 20% hold-out is the test set, stratified 5-fold CV on the rest tunes.

Optuna searches C, the penalty (l1, l2, elasticnet with l1_ratio), class_weight, the numeric transform
(scaling or cubic splines with n_knots) and a signed-log transform. On the validation predictions, Platt
calibration is kept when it lowers the (cross-fitted) Brier score, and the threshold maximises F1 (or
minimises cost with ``--cost-ratio``).

Logs one parent run in the experiment ``storefront-churn``: the data input, the baseline
(``baseline_test_auc``, ..., recency-only logistic regression on shop data, plain one-hot + scaled logistic
regression on a table), one nested run per trial (``val_auc``), the best params, ``test_auc``,
``test_pr_auc``, ``test_brier``, ``test_log_loss``, ``test_precision``/``test_recall``/``test_f1`` at the
``threshold``, figures (ROC and PR curves with the baseline, reliability diagram, score distribution,
odds ratios) and tables, the held-out test rows for champion re-scoring (``holdout/``) and the pyfunc
model ``model`` (``models/churn_pyfunc.py``), checked by loading it back. :func:`train_from_args` registers
nothing: it returns a ``TrainResult`` (primary metric auc). :func:`run` (the command) passes it through
``pipelines.registry.register_if_better``: a model that beats its baseline becomes a new version with the alias
``challenger`` of ``storefront-churn``; a table's model goes under ``--registered-model`` (default
``storefront-churn-<table name>``), a purchase model under ``storefront-purchase``, never over
``storefront-churn``.
"""

from __future__ import annotations

import argparse
import logging
HELP = "tune a calibrated logistic-regression churn (or purchase) model with Optuna and log it to MLflow"

logger = logging.getLogger(__name__)

FAMILY = "churn"
DEFAULT_N_TRIALS = 30
DEFAULT_TIMEOUT = 120  # seconds; 30 trials take ~6 s on the default data (5,000 customers)
DEFAULT_LOOKBACK_DAYS = 365
TEST_FRACTION = 0.2
CV_FOLDS = 5


def optional(kind):
    """An argparse type for MLproject parameters: the empty string means "not set" (None)."""

    def convert(text: str):
        if text is None or str(text).strip() == "":
            return None
        if kind is int:  # MLflow may pass a float parameter as "30.0"
            from pipelines.options import whole_number

            return whole_number(text)
        return kind(text)

    convert.__name__ = kind.__name__
    return convert


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pipelines.options import add_study_options

    text, integer, number = optional(str), optional(int), optional(float)
    add_study_options(parser, n_trials=DEFAULT_N_TRIALS, timeout=DEFAULT_TIMEOUT, study_name=None,
                      seed_help="sampler, split and solver seed")
    parser.add_argument("--target", choices=("churn", "purchase"), default="churn",
                        help="churn: no purchase in the window after the cutoff; purchase: a purchase in it "
                             "(shop tables only; default churn)")
    parser.add_argument("--window-days", type=integer, default=None,
                        help="label window after the cutoff in days (default 90 for churn, 7 for purchase)")
    parser.add_argument("--cutoff", type=text, default=None,
                        help="test cutoff date T (default: the end of the data minus the window)")
    parser.add_argument("--lookback-days", type=integer, default=DEFAULT_LOOKBACK_DAYS,
                        help="customers with a purchase in this many days before a cutoff are scored "
                             f"(default {DEFAULT_LOOKBACK_DAYS})")
    parser.add_argument("--snapshots", type=integer, default=1,
                        help="training snapshots stacked for tuning and for the refit (default 1)")
    parser.add_argument("--table", type=text, default=None,
                        help="bring-your-own customer table (CSV or Parquet), instead of --data-dir")
    parser.add_argument("--label-column", type=text, default=None,
                        help="label column of --table (Yes/No, True/False, 1/0)")
    parser.add_argument("--id-column", type=text, default=None,
                        help="id column of --table (default customer_id when present, else the row number)")
    parser.add_argument("--registered-model", type=text, default=None,
                        help="registry name for the model (default: storefront-churn for shop churn, "
                             "storefront-purchase for the purchase target, storefront-churn-<table name> for --table)")
    parser.add_argument("--cost-ratio", type=number, default=None,
                        help="cost of a missed positive over the cost of a false alarm; the threshold then "
                             "minimises cost instead of maximising F1")


def run(args: argparse.Namespace) -> int:
    """Train, then register the model as ``challenger`` when it passes the gate (it beats its baseline)."""
    from pipelines import registry

    result = train_from_args(args)
    outcome = registry.register_and_say(result)
    print(f"churn ({result.extra['target']}): test auc {result.test_value:.4f} "
          f"(baseline {result.baseline_value:.4f}); {outcome}; run {result.run_id}")
    return 0


def _check_args(args: argparse.Namespace) -> None:
    from pipelines.errors import ConfigurationError

    for name in ("n_trials", "lookback_days", "snapshots", "seed"):
        if getattr(args, name) is None:
            setattr(args, name, {"n_trials": DEFAULT_N_TRIALS, "lookback_days": DEFAULT_LOOKBACK_DAYS,
                                 "snapshots": 1, "seed": 42}[name])
    if args.n_trials < 1:
        raise ConfigurationError(f"--n-trials must be at least 1, got {args.n_trials}")
    if args.window_days is not None and args.window_days < 1:
        raise ConfigurationError(f"--window-days must be at least 1, got {args.window_days}")
    if args.lookback_days < 60:
        raise ConfigurationError(f"--lookback-days must be at least 60 (the 30/30-day trends), got {args.lookback_days}")
    if args.cost_ratio is not None and not args.cost_ratio > 0:
        raise ConfigurationError(f"--cost-ratio must be positive, got {args.cost_ratio}")
    if args.table is not None:
        if not args.label_column:
            raise ConfigurationError("--table needs --label-column (the column with the Yes/No or 1/0 label)")
        if args.target != "churn":
            raise ConfigurationError("--target purchase needs the shop tables (--data-dir), not --table")
    elif args.label_column or args.id_column:
        raise ConfigurationError("--label-column and --id-column apply to --table only")


def train_from_args(args: argparse.Namespace):
    """Run the study and the final fit (no registration); returns the :class:`pipelines.runs.TrainResult`."""
    _check_args(args)
    if args.table is not None:
        from pipelines.churn_run import prepare_table

        prepared = prepare_table(args, test_fraction=TEST_FRACTION, folds=CV_FOLDS)
    else:
        from pipelines.churn_run import prepare_shop

        prepared = prepare_shop(args)
    from pipelines.churn_run import run_training

    return run_training(prepared, args, family=FAMILY)
