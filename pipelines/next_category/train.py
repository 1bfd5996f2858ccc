"""Predict the category of a customer's next purchase with multinomial logistic regression (``train_next_category``).

Reads the four canonical tables from ``--data-dir`` (default ``data/generated``). At a cutoff date T every
customer with a purchase in the ``--lookback-days`` before T gets features built only from rows dated before T
(``models/next_category/model.py``: purchase shares per category overall and in the last 90 days, days since the
last purchase in each category, events on each category's products in the last 30 days, the category of the
last purchase, purchase count and recency); the label is the category of their first purchase in
``[T, T + --horizon-days)`` (customers who buy nothing then are left out). The test cutoff T is ``--cutoff``
or the day after the last purchase minus the horizon. Optuna (C, class_weight, log1p of counts, feature set) fits on the
``--snapshots`` snapshots at T - 2·horizon, T - 3·horizon, ... and scores the mean one-vs-rest ROC AUC on the
snapshot at T - horizon (its labels end at T); the winner is refit on the snapshots at T - horizon, ...,
T - snapshots·horizon and scored once at T (:func:`evaluation.splits.snapshot_plan`).

Logs one parent run in the experiment ``storefront-next-category``: the data inputs, the baseline "most
frequent category in history" (the customer's purchase shares, ``baseline_test_auc_ovr``,
``baseline_test_mean_ap``, ...), one nested run per trial (``val_auc_ovr``), the best params, ``test_auc_ovr``
(mean one-vs-rest ROC AUC over categories), ``test_mean_ap`` (mean average precision), ``test_accuracy``,
``test_log_loss``, the per-category table and figure (``tables/per_category.csv``,
``plots/per_category_scores.png``), the test rows as ``holdout/`` (champion re-scoring) and the pyfunc model
``model`` (``models/next_category/pyfunc.py``: probability per category and the top category), checked by
loading it back. :func:`train` registers nothing and returns a ``TrainResult``; the command registers
``storefront-next-category@challenger`` when it beats the baseline on test auc_ovr and prints the verdict.
"""

from __future__ import annotations

import argparse
import logging

from pipelines.families import get


logger = logging.getLogger(__name__)

FAMILY = get("next_category")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from models.next_category.model import DEFAULT_LOOKBACK_DAYS
    from pipelines.options import add_study_options, whole_number

    add_study_options(parser, FAMILY, study_name="next-category")
    parser.add_argument("--horizon-days", type=whole_number, default=30,
                        help="the label is the first purchase's category in this many days after the cutoff "
                             "(default 30)")
    parser.add_argument("--cutoff", default=None,
                        help="test cutoff date T (default: the day after the last purchase minus the horizon)")
    parser.add_argument("--snapshots", type=whole_number, default=4,
                        help="monthly-spaced training snapshots (one per horizon) stacked for tuning and for the "
                             "refit (default 4)")
    parser.add_argument("--lookback-days", type=whole_number, default=DEFAULT_LOOKBACK_DAYS,
                        help=f"history read before each cutoff, in days (default {DEFAULT_LOOKBACK_DAYS})")


def config_from_args(args: argparse.Namespace):
    """The checked :class:`pipelines.next_category.steps.NextCategoryConfig` of the parsed options."""
    from pipelines.next_category.steps import NextCategoryConfig, check_config
    from pipelines.options import StudyOptions

    config = NextCategoryConfig(study=StudyOptions.from_args(args), data_dir=args.data_dir,
                                horizon_days=args.horizon_days, cutoff=args.cutoff, snapshots=args.snapshots,
                                lookback_days=args.lookback_days)
    check_config(config)
    return config


def train(config):
    """The steps of :mod:`pipelines.next_category.steps` in the family's parent run; returns the ``TrainResult``."""
    import mlflow

    from evaluation.multiclass import evaluate
    from models.next_category.model import NextCategoryClassifier, history_baseline
    from pipelines.data.tables import dataset_digest, load_tables
    from pipelines.mlflow_logging import TrainResult, family_run, log_tables_input
    from pipelines.next_category import steps
    from pipelines.study import run_study
    from pipelines.tracking import default_data_dir

    data_dir = config.data_dir or default_data_dir()
    tables = load_tables(data_dir)
    digest = dataset_digest(tables)
    categories = steps.shop_categories(tables)
    cutoffs = steps.plan(tables, config)
    snaps = steps.build_snapshots(tables, cutoffs, categories, config)
    tx = tables["transactions"]
    before = tx[tx["purchase_date"] < cutoffs.test]
    prior = before["category"].value_counts(normalize=True).reindex(categories, fill_value=0.0).to_numpy(float)
    params = {"data_dir": str(data_dir), "horizon_days": config.horizon_days, "lookback_days": config.lookback_days,
              "snapshots": config.snapshots, "final_fit_cutoffs": cutoffs.describe()["final_fit_cutoffs"],
              "test_cutoff": cutoffs.test.isoformat(), "validation_cutoff": cutoffs.validation.isoformat(),
              "tuning_fit_cutoffs": cutoffs.describe()["tuning_fit_cutoffs"], "categories": " | ".join(categories),
              "baseline": "most frequent category in history"}
    with family_run(FAMILY.name, f"next category within {config.horizon_days} days", params=params) as run:
        log_tables_input(tables, data_dir, digest, names=("transactions", "events", "products"))
        mlflow.log_metrics({"n_tuning_rows": snaps.tuning.size, "n_validation_rows": snaps.validation.size,
                            "n_final_fit_rows": snaps.final.size, "n_test_rows": snaps.test.size})
        p_base = history_baseline(snaps.test.X, categories, prior)
        baseline = evaluate(snaps.test.y, p_base, categories)
        study = run_study(steps.make_objective(snaps.tuning, snaps.validation, categories),
                          options=config.study.named("next-category"), metrics=FAMILY.primary_metric,
                          directions="maximize", baseline=baseline, enqueue=[steps.DEFAULT_TRIAL])
        best = steps.model_params(study.best_params)
        model = NextCategoryClassifier(categories=categories, **best).fit(snaps.final.X, snaps.final.y)
        p_test = model.predict_proba(snaps.test.X)
        scores = evaluate(snaps.test.y, p_test, categories)
        mlflow.log_metrics({f"test_{k}": v for k, v in scores.items()})
        mlflow.log_metric("final_convergence_warnings", model.convergence_warnings_)
        table = steps.log_report(model, snaps.test, p_test, p_base, categories)
        info = steps.log_model(model, snaps.test, p_test, categories, digest, cutoffs.test, config.horizon_days)
        logger.info("next category: test auc_ovr %.4f (baseline %.4f), mean_ap %.4f (baseline %.4f), accuracy %.3f "
                    "(baseline %.3f)", scores["auc_ovr"], baseline["auc_ovr"], scores["mean_ap"], baseline["mean_ap"],
                    scores["accuracy"], baseline["accuracy"])

    return TrainResult(family=FAMILY.name, run_id=run.info.run_id, model_uri=info.model_uri,
                       primary_metric=FAMILY.primary_metric, test_value=scores[FAMILY.primary_metric],
                       baseline_value=baseline[FAMILY.primary_metric], higher_is_better=FAMILY.higher_is_better,
                       data_digest=digest,
                       extra={"test_metrics": scores, "baseline_test_metrics": baseline, "params": best,
                              "categories": categories, "test_cutoff": cutoffs.test, "per_category": table},
                       split=(f"tuning fits on the snapshot(s) at {params['tuning_fit_cutoffs']} and scores the one at "
                              f"{cutoffs.validation.date()}; the winner is refit on the snapshot(s) at "
                              f"{params['final_fit_cutoffs']} and scored once at {cutoffs.test.date()}"),
                       baseline="the most frequent category in the customer's history")


def summary(result, verdict: str) -> str:
    """The command's closing line (after :func:`train` and the registration gate)."""
    m, b = result.extra["test_metrics"], result.extra["baseline_test_metrics"]
    return (f"next category: test auc_ovr {result.test_value:.4f} (baseline {result.baseline_value:.4f}), mean_ap "
            f"{m['mean_ap']:.4f} (baseline {b['mean_ap']:.4f}); {verdict}; run {result.run_id}")
