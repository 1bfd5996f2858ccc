"""Predict the category of a customer's next purchase with multinomial logistic regression (``train_next_category``).

Reads the four canonical tables from ``--data-dir`` (default ``data/generated``). At a cutoff date T every
customer with a purchase in the ``--lookback-days`` before T gets features built only from rows dated before T
(``models/next_category.py``: purchase shares per category overall and in the last 90 days, days since the
last purchase in each category, events on each category's products in the last 30 days, the category of the
last purchase, purchase count and recency); the label is the category of their first purchase in
``[T, T + --horizon-days)`` (customers who buy nothing then are left out). The test cutoff T is ``--cutoff``
or the day after the last purchase minus the horizon. Optuna (C, class_weight, log1p of counts, feature set) fits on the
``--snapshots`` snapshots at T - 2·horizon, T - 3·horizon, ... and scores the mean one-vs-rest ROC AUC on the
snapshot at T - horizon (its labels end at T); the winner is refit on the snapshots at T - horizon, ...,
T - snapshots·horizon and scored once at T.

Logs one parent run in the experiment ``storefront-next-category``: the data inputs, the baseline "most
frequent category in history" (the customer's purchase shares, ``baseline_test_auc_ovr``,
``baseline_test_mean_ap``, ...), one nested run per trial (``val_auc_ovr``), the best params, ``test_auc_ovr``
(mean one-vs-rest ROC AUC over categories), ``test_mean_ap`` (mean average precision), ``test_accuracy``,
``test_log_loss``, the per-category table and figure (``tables/per_category.csv``,
``plots/per_category_scores.png``), the test rows as ``holdout/`` (champion re-scoring) and the pyfunc model
``model`` (``models/next_category_pyfunc.py``: probability per category and the top category), checked by
loading it back. ``train_from_args`` registers nothing and returns a ``TrainResult``; the command registers
``storefront-next-category@challenger`` when it beats the baseline on test auc_ovr and prints the verdict.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

HELP = "tune a multinomial logistic regression for the next purchase's category with Optuna and log it to MLflow"

logger = logging.getLogger(__name__)

FAMILY = "next_category"
PRIMARY_METRIC = "auc_ovr"
DEFAULT_N_TRIALS = 15
DEFAULT_TIMEOUT = 300
DEFAULT_HORIZON_DAYS = 30
DEFAULT_TRIAL = {"C": 1.0, "class_weight": "none", "log_counts": True, "feature_set": "shares_events"}
DEFAULT_SNAPSHOTS = 4
PYFUNC_FILE = Path(__file__).resolve().parent.parent / "models" / "next_category_pyfunc.py"
MIN_ROWS = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from models.next_category import DEFAULT_LOOKBACK_DAYS
    from pipelines.options import add_study_options, whole_number

    add_study_options(parser, n_trials=DEFAULT_N_TRIALS, timeout=DEFAULT_TIMEOUT, study_name="next-category")
    parser.add_argument("--horizon-days", type=whole_number, default=DEFAULT_HORIZON_DAYS,
                        help=f"the label is the first purchase's category in this many days after the cutoff "
                             f"(default {DEFAULT_HORIZON_DAYS})")
    parser.add_argument("--cutoff", default=None,
                        help="test cutoff date T (default: the day after the last purchase minus the horizon)")
    parser.add_argument("--snapshots", type=whole_number, default=DEFAULT_SNAPSHOTS,
                        help="monthly-spaced training snapshots (one per horizon) stacked for tuning and for the "
                             f"refit (default {DEFAULT_SNAPSHOTS})")
    parser.add_argument("--lookback-days", type=whole_number, default=DEFAULT_LOOKBACK_DAYS,
                        help=f"history read before each cutoff, in days (default {DEFAULT_LOOKBACK_DAYS})")


@dataclass
class Snapshot:
    cutoff: object
    ids: object  # np.ndarray of customer ids
    X: object  # DataFrame of feature columns
    y: object  # np.ndarray of category names

    @property
    def size(self) -> int:
        return len(self.y)


def snapshot(tables, cutoff, categories, horizon_days: int, lookback_days: int) -> Snapshot:
    """Features at ``cutoff`` joined with the next category in the horizon (customers who buy then)."""
    from models.next_category import ID_COLUMN, build_features, feature_columns, next_category_labels
    from pipelines.errors import DataValidationError

    features = build_features(tables, cutoff, categories, lookback_days=lookback_days)
    labels = next_category_labels(tables["transactions"], cutoff, horizon_days, categories)
    frame = features.merge(labels.rename_axis(ID_COLUMN).reset_index(), on=ID_COLUMN, how="inner")
    if len(frame) < MIN_ROWS or frame["category"].nunique() < 2:
        raise DataValidationError(
            f"transactions: only {len(frame)} customers with history before {cutoff.date()} buy in the "
            f"{horizon_days} days after it ({frame['category'].nunique()} categories); need at least {MIN_ROWS} "
            "and two categories (more data, a later --cutoff or a longer --horizon-days)")
    return Snapshot(cutoff, frame[ID_COLUMN].to_numpy(dtype=object),
                    frame[feature_columns(categories)].reset_index(drop=True), frame["category"].to_numpy(dtype=object))


def stack(parts: list[Snapshot]) -> Snapshot:
    """Several snapshots as one training set (a customer may appear once per cutoff)."""
    import numpy as np
    import pandas as pd

    return Snapshot(parts[0].cutoff, np.concatenate([p.ids for p in parts]),
                    pd.concat([p.X for p in parts], ignore_index=True), np.concatenate([p.y for p in parts]))


def make_objective(fit: Snapshot, val: Snapshot, categories):
    """Validation mean one-vs-rest ROC AUC of the model fitted on ``fit`` with the trial's parameters."""
    from evaluation.multiclass import mean_ovr_auc
    from models.next_category import NextCategoryClassifier

    def objective(trial) -> float:
        params = suggest(trial)
        model = NextCategoryClassifier(categories=list(categories), **params).fit(fit.X, fit.y)
        trial.set_user_attr("convergence_warnings", model.convergence_warnings_)
        return mean_ovr_auc(val.y, model.predict_proba(val.X), categories)

    return objective


def suggest(trial) -> dict:
    from models.next_category import FEATURE_SETS

    weight = trial.suggest_categorical("class_weight", ["none", "balanced"])
    return {"C": trial.suggest_float("C", 1e-3, 100.0, log=True),
            "class_weight": None if weight == "none" else "balanced",
            "log_counts": trial.suggest_categorical("log_counts", [True, False]),
            "feature_set": trial.suggest_categorical("feature_set", list(FEATURE_SETS))}


def model_params(best: dict) -> dict:
    return {"C": float(best["C"]), "class_weight": None if best["class_weight"] == "none" else "balanced",
            "log_counts": bool(best["log_counts"]), "feature_set": str(best.get("feature_set", "all"))}


def train(data_dir=None, *, n_trials: int | None = DEFAULT_N_TRIALS, timeout: float | None = DEFAULT_TIMEOUT,
          seed: int = 42, storage: str | None = None, study_name: str = "next-category",
          horizon_days: int = DEFAULT_HORIZON_DAYS, cutoff=None, lookback_days: int | None = None,
          snapshots: int = DEFAULT_SNAPSHOTS):
    """Run the whole entry point (no registration); returns the :class:`pipelines.runs.TrainResult`."""
    import tempfile
    import warnings

    import mlflow
    import numpy as np
    import pandas as pd

    from evaluation.multiclass import evaluate, per_class_scores
    from models.next_category import (DEFAULT_LOOKBACK_DAYS, ID_COLUMN, NextCategoryClassifier,
                                      history_baseline, probability_columns, slugs)
    from models.next_category_pyfunc import answer
    from pipelines import analytics_figures as figs
    from pipelines.errors import ConfigurationError, DataValidationError, StorefrontError
    from pipelines.rescoring import log_holdout
    from pipelines.runs import TrainResult, family_run, log_figure, log_pyfunc_model, log_tables_input
    from pipelines.study import run_study
    from pipelines.tables import dataset_digest, load_tables
    from pipelines.tracking import default_data_dir

    lookback_days = DEFAULT_LOOKBACK_DAYS if lookback_days is None else lookback_days
    if n_trials is not None and n_trials < 1:
        raise ConfigurationError(f"--n-trials must be at least 1, got {n_trials}")
    if horizon_days < 1:
        raise ConfigurationError(f"--horizon-days must be at least 1, got {horizon_days}")
    if lookback_days < 30:
        raise ConfigurationError(f"--lookback-days must be at least 30, got {lookback_days}")
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    tables = load_tables(data_dir)
    digest = dataset_digest(tables)
    categories = sorted(tables["products"]["category"].unique())
    try:
        slugs(categories)
    except ValueError as exc:
        raise DataValidationError(f"products: column 'category': {exc}") from None
    if len(categories) < 2:
        raise DataValidationError(f"products: column 'category' has {len(categories)} value(s), need at least two")
    tx = tables["transactions"]
    end = tx["purchase_date"].max().normalize() + pd.Timedelta(days=1)
    try:
        test_cutoff = pd.Timestamp(cutoff) if cutoff else end - pd.Timedelta(days=horizon_days)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"--cutoff {cutoff!r} is not a date: {exc}") from None
    h = pd.Timedelta(days=horizon_days)
    if test_cutoff + h > end:
        logger.warning("the test window %s + %d days runs past the data (ends %s)", test_cutoff.date(),
                       horizon_days, end.date())
    if snapshots < 1:
        raise ConfigurationError(f"--snapshots must be at least 1, got {snapshots}")
    # tuning fits on the snapshots at T - 2h, ..., T - (snapshots + 1)h and validates at T - h; the refit adds T - h
    built = [snapshot(tables, test_cutoff - (i + 1) * h, categories, horizon_days, lookback_days)
             for i in range(snapshots + 1)]
    val, fit = built[0], stack(built[1:])
    final = stack(built[:snapshots])
    test = snapshot(tables, test_cutoff, categories, horizon_days, lookback_days)
    final_X, final_y = final.X, final.y
    before = tx[tx["purchase_date"] < test_cutoff]
    prior = before["category"].value_counts(normalize=True).reindex(categories, fill_value=0.0).to_numpy(float)

    params = {"data_dir": str(data_dir), "horizon_days": horizon_days, "lookback_days": lookback_days,
              "snapshots": snapshots, "final_fit_cutoffs": ",".join(s.cutoff.date().isoformat() for s in built[:snapshots]),
              "test_cutoff": test_cutoff.isoformat(), "validation_cutoff": val.cutoff.isoformat(),
              "tuning_fit_cutoffs": ",".join(s.cutoff.date().isoformat() for s in built[1:]), "categories": " | ".join(categories),
              "baseline": "most frequent category in history"}
    with family_run(FAMILY, "next-category-lr", params=params) as run:
        log_tables_input(tables, data_dir, digest, names=("transactions", "events", "products"))
        mlflow.log_metrics({"n_tuning_rows": fit.size, "n_validation_rows": val.size, "n_final_fit_rows": len(final_y),
                            "n_test_rows": test.size})
        p_base = history_baseline(test.X, categories, prior)
        baseline = evaluate(test.y, p_base, categories)
        study = run_study(make_objective(fit, val, categories), study_name=study_name, metrics=PRIMARY_METRIC,
                          directions="maximize", n_trials=n_trials, timeout=timeout, seed=seed, storage=storage,
                          baseline=baseline, enqueue=[DEFAULT_TRIAL])
        best = model_params(study.best_params)
        model = NextCategoryClassifier(categories=categories, **best).fit(final_X, final_y)
        p_test = model.predict_proba(test.X)
        scores = evaluate(test.y, p_test, categories)
        mlflow.log_metrics({f"test_{k}": v for k, v in scores.items()})
        mlflow.log_metric("final_convergence_warnings", model.convergence_warnings_)
        model_rows = per_class_scores(test.y, p_test, categories)
        base_rows = per_class_scores(test.y, p_base, categories)
        table = pd.DataFrame({"category": categories, "support": [r["support"] for r in model_rows],
                              "model_auc": [r["auc"] for r in model_rows],
                              "baseline_auc": [r["auc"] for r in base_rows],
                              "model_average_precision": [r["average_precision"] for r in model_rows],
                              "baseline_average_precision": [r["average_precision"] for r in base_rows]})
        mlflow.log_text(table.to_csv(index=False), "tables/per_category.csv")
        coef = pd.DataFrame(model.coef_, index=categories, columns=model.design_columns).rename_axis("category")
        mlflow.log_text(coef.reset_index().to_csv(index=False), "tables/coefficients.csv")
        log_figure(figs.per_category_scores(table), "plots/per_category_scores.png")

        requests = pd.DataFrame({ID_COLUMN: test.ids.astype(str)}).join(test.X)
        truth = pd.DataFrame({ID_COLUMN: test.ids.astype(str), "category": test.y.astype(str)})
        log_holdout(requests, truth, {"family": FAMILY, "metric": PRIMARY_METRIC, "categories": categories,
                                      "test_cutoff": test_cutoff.isoformat(), "horizon_days": horizon_days,
                                      "data_digest": digest})
        example = requests.head(5).reset_index(drop=True)
        output = answer(model, example[ID_COLUMN].to_numpy(dtype=object), example.drop(columns=[ID_COLUMN]))
        from mlflow.models import infer_signature

        with warnings.catch_warnings():  # all feature columns are floats; the hint is about integer columns
            warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer", UserWarning)
            signature = infer_signature(example, output)
        with tempfile.TemporaryDirectory() as tmp:
            path = model.save(Path(tmp) / "next_category.json")
            info = log_pyfunc_model(PYFUNC_FILE, artifacts={"classifier": str(path)}, input_example=example,
                                    requirements=("numpy", "pandas"), signature=signature)
        served = mlflow.pyfunc.load_model(info.model_uri).predict(requests)
        if not np.allclose(served[probability_columns(categories)].to_numpy(float), p_test, rtol=0, atol=1e-9):
            raise StorefrontError(f"the logged model {info.model_uri} does not reproduce the test probabilities")
        logger.info("next category: test auc_ovr %.4f (baseline %.4f), mean_ap %.4f (baseline %.4f), accuracy %.3f "
                    "(baseline %.3f)", scores["auc_ovr"], baseline["auc_ovr"], scores["mean_ap"], baseline["mean_ap"],
                    scores["accuracy"], baseline["accuracy"])

    return TrainResult(family=FAMILY, run_id=run.info.run_id, model_uri=info.model_uri, primary_metric=PRIMARY_METRIC,
                       test_value=scores[PRIMARY_METRIC], baseline_value=baseline[PRIMARY_METRIC],
                       higher_is_better=True, data_digest=digest,
                       extra={"test_metrics": scores, "baseline_test_metrics": baseline, "params": best,
                              "categories": categories, "test_cutoff": test_cutoff, "per_category": table})


def train_from_args(args: argparse.Namespace):
    """The study and the final fit from the parsed options (no registration); returns the ``TrainResult``."""
    return train(args.data_dir, n_trials=args.n_trials, timeout=args.timeout, seed=args.seed, storage=args.storage,
                 study_name=args.study_name or "next-category", horizon_days=args.horizon_days, cutoff=args.cutoff,
                 lookback_days=args.lookback_days, snapshots=args.snapshots)


def run(args: argparse.Namespace) -> int:
    """Train, then register the model as ``challenger`` when it beats the baseline on test auc_ovr."""
    from pipelines import registry

    result = train_from_args(args)
    outcome = registry.register_and_say(result)
    m, b = result.extra["test_metrics"], result.extra["baseline_test_metrics"]
    print(f"next category: test auc_ovr {result.test_value:.4f} (baseline {result.baseline_value:.4f}), mean_ap "
          f"{m['mean_ap']:.4f} (baseline {b['mean_ap']:.4f}); {outcome}; run {result.run_id}")
    return 0
