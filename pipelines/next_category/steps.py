"""The steps of one ``train_next_category`` run, on a typed :class:`NextCategoryConfig`: the snapshots at the
cutoffs of :func:`evaluation.splits.snapshot_plan`, the study's objective, the refit scored on the test snapshot,
the per-category report and the served model."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from evaluation.multiclass import mean_ovr_auc, per_class_scores
from evaluation.splits import SnapshotPlan, SplitError, snapshot_plan
from models.next_category.contract import PYFUNC_FILE, signature
from models.next_category.model import (DEFAULT_LOOKBACK_DAYS, FEATURE_SETS, ID_COLUMN, NextCategoryClassifier,
                                        build_features, feature_columns, next_category_labels, probability_columns,
                                        slugs)
from pipelines.analytics import figures as figs
from pipelines.data.tables import Tables
from pipelines.errors import ConfigurationError, DataValidationError
from pipelines.families import get
from pipelines.mlflow_logging import check_round_trip, columns_agree, log_figure, log_pyfunc_model
from pipelines.options import TrainConfig
from pipelines.rescoring import log_holdout

logger = logging.getLogger(__name__)

FAMILY = get("next_category")
DEFAULT_HORIZON_DAYS = 30
DEFAULT_SNAPSHOTS = 4
DEFAULT_TRIAL = {"C": 1.0, "class_weight": "none", "log_counts": True, "feature_set": "shares_events"}
MIN_ROWS = 20
ROUND_TRIP_ATOL = 1e-9


@dataclass(frozen=True)
class NextCategoryConfig(TrainConfig):
    """What one ``train_next_category`` run does (the options of :mod:`pipelines.next_category.train`)."""

    horizon_days: int = DEFAULT_HORIZON_DAYS
    cutoff: str | None = None
    snapshots: int = DEFAULT_SNAPSHOTS
    lookback_days: int = DEFAULT_LOOKBACK_DAYS


def check_config(config: NextCategoryConfig) -> None:
    if config.study.n_trials is not None and config.study.n_trials < 1:
        raise ConfigurationError(f"--n-trials must be at least 1, got {config.study.n_trials}")
    if config.horizon_days < 1:
        raise ConfigurationError(f"--horizon-days must be at least 1, got {config.horizon_days}")
    if config.lookback_days < 30:
        raise ConfigurationError(f"--lookback-days must be at least 30, got {config.lookback_days}")
    if config.snapshots < 1:
        raise ConfigurationError(f"--snapshots must be at least 1, got {config.snapshots}")


def shop_categories(tables: Tables) -> list[str]:
    """The products' categories, sorted; at least two, each with a usable column slug."""
    categories = sorted(tables["products"]["category"].unique())
    try:
        slugs(categories)
    except ValueError as exc:
        raise DataValidationError(f"products: column 'category': {exc}") from None
    if len(categories) < 2:
        raise DataValidationError(f"products: column 'category' has {len(categories)} value(s), need at least two")
    return categories


def plan(tables: Tables, config: NextCategoryConfig) -> SnapshotPlan:
    """The cutoffs; a test window that runs past the data is allowed, with a warning."""
    dates = tables["transactions"]["purchase_date"]
    try:
        cutoffs = snapshot_plan(dates, config.horizon_days, config.cutoff, config.snapshots, open_test=True)
    except SplitError as exc:
        raise ConfigurationError(f"--{exc}" if str(exc).startswith("cutoff") else str(exc)) from None
    end = dates.max().normalize() + pd.Timedelta(days=1)
    if cutoffs.test_end > end:
        logger.warning("the test window %s + %d days runs past the data (ends %s)", cutoffs.test.date(),
                       config.horizon_days, end.date())
    return cutoffs


@dataclass
class Snapshot:
    cutoff: pd.Timestamp
    ids: np.ndarray  # customer ids
    X: pd.DataFrame  # feature columns
    y: np.ndarray  # category names

    @property
    def size(self) -> int:
        return len(self.y)


def snapshot(tables: Tables, cutoff, categories, horizon_days: int, lookback_days: int) -> Snapshot:
    """Features at ``cutoff`` joined with the next category in the horizon (customers who buy then)."""
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
    return Snapshot(parts[0].cutoff, np.concatenate([p.ids for p in parts]),
                    pd.concat([p.X for p in parts], ignore_index=True), np.concatenate([p.y for p in parts]))


@dataclass
class Snapshots:
    tuning: Snapshot
    validation: Snapshot
    final: Snapshot
    test: Snapshot


def build_snapshots(tables: Tables, cutoffs: SnapshotPlan, categories, config: NextCategoryConfig) -> Snapshots:
    """Each cutoff's snapshot once (the validation snapshot is also the first refit snapshot)."""
    built = {c: snapshot(tables, c, categories, config.horizon_days, config.lookback_days)
             for c in (cutoffs.validation, *cutoffs.tuning_fit, *cutoffs.final_fit)}
    test = snapshot(tables, cutoffs.test, categories, config.horizon_days, config.lookback_days)
    return Snapshots(stack([built[c] for c in cutoffs.tuning_fit]), built[cutoffs.validation],
                     stack([built[c] for c in cutoffs.final_fit]), test)


def suggest(trial) -> dict:
    weight = trial.suggest_categorical("class_weight", ["none", "balanced"])
    return {"C": trial.suggest_float("C", 1e-3, 100.0, log=True),
            "class_weight": None if weight == "none" else "balanced",
            "log_counts": trial.suggest_categorical("log_counts", [True, False]),
            "feature_set": trial.suggest_categorical("feature_set", list(FEATURE_SETS))}


def model_params(best: dict) -> dict:
    return {"C": float(best["C"]), "class_weight": None if best["class_weight"] == "none" else "balanced",
            "log_counts": bool(best["log_counts"]), "feature_set": str(best.get("feature_set", "all"))}


def make_objective(fit: Snapshot, val: Snapshot, categories):
    """Validation mean one-vs-rest ROC AUC of the model fitted on ``fit`` with the trial's parameters."""

    def objective(trial) -> float:
        model = NextCategoryClassifier(categories=list(categories), **suggest(trial)).fit(fit.X, fit.y)
        trial.set_user_attr("convergence_warnings", model.convergence_warnings_)
        return mean_ovr_auc(val.y, model.predict_proba(val.X), categories)

    return objective


def log_report(model: NextCategoryClassifier, test: Snapshot, p_test: np.ndarray, p_base: np.ndarray,
               categories) -> pd.DataFrame:
    """The per-category table and figure, and the coefficients; returns the table."""
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
    return table


def log_model(model: NextCategoryClassifier, test: Snapshot, p_test: np.ndarray, categories, digest: str,
              test_cutoff: pd.Timestamp, horizon_days: int):
    """The test rows as ``holdout/`` and the pyfunc model, checked by loading it back."""
    requests = pd.DataFrame({ID_COLUMN: test.ids.astype(str)}).join(test.X)
    truth = pd.DataFrame({ID_COLUMN: test.ids.astype(str), "category": test.y.astype(str)})
    log_holdout(requests, truth, {"family": FAMILY.name, "metric": FAMILY.primary_metric, "categories": categories,
                                  "test_cutoff": test_cutoff.isoformat(), "horizon_days": horizon_days,
                                  "data_digest": digest})
    with tempfile.TemporaryDirectory() as tmp:
        path = model.save(Path(tmp) / "next_category.json")
        info = log_pyfunc_model(PYFUNC_FILE, name=FAMILY.logged_model, artifacts={"classifier": str(path)},
                                input_example=requests.head(5).reset_index(drop=True), requirements=("numpy", "pandas"),
                                signature=signature(list(test.X.columns), categories))
    columns = probability_columns(categories)
    expected = pd.DataFrame(p_test, columns=columns).assign(**{ID_COLUMN: test.ids.astype(str)})
    check_round_trip(info.model_uri, requests, expected, columns_agree(columns, atol=ROUND_TRIP_ATOL, exact=[ID_COLUMN]))
    return info
