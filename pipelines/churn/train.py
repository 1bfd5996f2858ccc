"""Tune, calibrate, evaluate and log the churn classifier (``train_churn``).

Reads either the four canonical tables from ``--data-dir`` (default ``data/generated``) or, with
``--table``, a bring-your-own customer table (one row per customer, ``--label-column`` Yes/No or 1/0,
``--id-column``, mixed numeric and categorical columns). In a table, blank cells and the markers of
``--na-values`` (default ``? NA N/A null -``, case-insensitive) are missing values: a column of numbers with
some markers stays numeric with missing values (median-imputed, plus a missing indicator), a row without a label
is dropped and counted, and the run logs how every column was read (``tables/column_types.csv``: kind, missing
count, markers, reason) and prints how many columns of each kind there were.

Shop tables: leakage-free snapshots (:mod:`pipelines.churn.data`). ``--target churn`` labels customers with
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
model ``model`` (``models/churn/pyfunc.py``), checked by loading it back. :func:`train` registers
nothing: it returns a ``TrainResult`` (primary metric auc). :func:`run` (the command) passes it through
``pipelines.registry.register_if_better``: a model that beats its baseline becomes a new version with the alias
``challenger`` of ``storefront-churn``; a table's model goes under ``--registered-model`` (default
``storefront-churn-<table name>``), a purchase model under ``storefront-purchase``, never over a shop model
(:func:`pipelines.families.own_model_name`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.families import get

FAMILY = get("churn")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pipelines.budget import add_tuning_option
    from pipelines.options import add_na_values, add_study_options, whole_number

    add_study_options(parser, FAMILY, seed_help="sampler, split and solver seed")
    parser.add_argument("--target", choices=("churn", "purchase"), default="churn",
                        help="churn: no purchase in the window after the cutoff; purchase: a purchase in it "
                             "(shop tables only; default churn)")
    parser.add_argument("--window-days", type=whole_number, default=None,
                        help="label window after the cutoff in days (default 90 for churn, 7 for purchase)")
    parser.add_argument("--cutoff", default=None,
                        help="test cutoff date T (default: the end of the data minus the window)")
    parser.add_argument("--lookback-days", type=whole_number, default=365,
                        help="customers with a purchase in this many days before a cutoff are scored (default 365)")
    parser.add_argument("--snapshots", type=whole_number, default=1,
                        help="training snapshots stacked for tuning and for the refit (default 1)")
    add_tuning_option(parser, FAMILY.name)
    parser.add_argument("--table", type=Path, default=None,
                        help="bring-your-own customer table (CSV or Parquet), instead of --data-dir")
    parser.add_argument("--label-column", default=None,
                        help="label column of --table (Yes/No, True/False, 1/0)")
    parser.add_argument("--id-column", default=None,
                        help="id column of --table (default customer_id when present, else the row number)")
    add_na_values(parser, "--table")
    parser.add_argument("--registered-model", default=None,
                        help="registry name for the model (default: storefront-churn for shop churn, "
                             "storefront-purchase for the purchase target, storefront-churn-<table name> for --table)")
    parser.add_argument("--cost-ratio", type=float, default=None,
                        help="cost of a missed positive over the cost of a false alarm; the threshold then "
                             "minimises cost instead of maximising F1")


def config_from_args(args: argparse.Namespace):
    """The checked :class:`pipelines.churn.steps.ChurnConfig` of the parsed options."""
    from pipelines.churn.steps import ChurnConfig
    from pipelines.errors import ConfigurationError
    from pipelines.families import own_model_name
    from pipelines.options import NA_VALUES, StudyOptions

    if args.n_trials is not None and args.n_trials < 1:
        raise ConfigurationError(f"--n-trials must be at least 1, got {args.n_trials}")
    if args.window_days is not None and args.window_days < 1:
        raise ConfigurationError(f"--window-days must be at least 1, got {args.window_days}")
    if args.lookback_days < 60:
        raise ConfigurationError(f"--lookback-days must be at least 60 (the 30/30-day trends), got {args.lookback_days}")
    if args.cost_ratio is not None and not args.cost_ratio > 0:
        raise ConfigurationError(f"--cost-ratio must be positive, got {args.cost_ratio}")
    registered = args.registered_model
    if args.table is not None:
        if not args.label_column:
            raise ConfigurationError("--table needs --label-column (the column with the Yes/No or 1/0 label)")
        if args.target != "churn":
            raise ConfigurationError("--target purchase needs the shop tables (--data-dir), not --table")
        registered = own_model_name(FAMILY.name, args.table, registered)
        if args.tuning_customers is not None:
            raise ConfigurationError("--tuning-customers applies to the shop tables (--data-dir), not --table")
    elif args.label_column or args.id_column or args.na_values is not None:
        raise ConfigurationError("--label-column, --id-column and --na-values apply to --table only")
    return ChurnConfig(study=StudyOptions.from_args(args), data_dir=args.data_dir, target=args.target,
                       window_days=args.window_days, cutoff=args.cutoff, lookback_days=args.lookback_days,
                       snapshots=args.snapshots, tuning_customers=args.tuning_customers, table=args.table, label_column=args.label_column,
                       id_column=args.id_column, registered_model=registered, cost_ratio=args.cost_ratio,
                       na_values=NA_VALUES if args.na_values is None else args.na_values)


def train(config):
    """The steps of :mod:`pipelines.churn.steps` in the family's parent run; returns the ``TrainResult``."""
    from pipelines.churn import steps
    from pipelines.mlflow_logging import TrainResult, family_run

    p = steps.prepare_table(config) if config.table is not None else steps.prepare_shop(config)
    seed = config.study.seed
    with family_run(FAMILY.name, p.run_name, params=p.run_params,
                    tags={"storefront.source": p.source, "storefront.target": p.target}) as run:
        p.log_inputs()
        baseline = steps.score_baseline(p, seed)
        params = steps.tune(p, baseline)
        scored = steps.refit_and_score(p, params, config.cost_ratio, seed)
        steps.log_results(p, scored, baseline, config.cost_ratio)
        info = steps.log_model(p, scored)
    model = scored.final.model
    return TrainResult(
        family=FAMILY.name, run_id=run.info.run_id, model_uri=info.model_uri, primary_metric=FAMILY.primary_metric,
        test_value=scored.metrics["auc"], baseline_value=baseline.metrics["auc"],
        higher_is_better=FAMILY.higher_is_better, data_digest=p.digest, registered_model=p.registered_model,
        extra={"test_metrics": scored.metrics, "baseline_test_metrics": baseline.metrics,
               "params": scored.final.params, "threshold": model.threshold,
               "calibrated": model.calibration is not None, "source": p.source, "target": p.target,
               "test_probabilities": scored.probabilities, "model_id": getattr(info, "model_id", None),
               "table_summary": p.table_summary},
        split=p.split, baseline=baseline.name,
    )


def summary(result, verdict: str) -> str:
    """The command's closing lines (after :func:`train` and the registration gate); a table run first says how
    its rows and columns were read."""
    line = (f"churn ({result.extra['target']}): test auc {result.test_value:.4f} "
            f"(baseline {result.baseline_value:.4f}); {verdict}; run {result.run_id}")
    table = result.extra.get("table_summary")
    return f"{table}\n{line}" if table else line
