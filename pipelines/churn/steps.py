"""The steps of one ``train_churn`` run, on a typed :class:`ChurnConfig`.

:func:`prepare_shop` and :func:`prepare_table` turn the configuration into a :class:`Prepared` run (tuning
problem, final-fit and test data, baseline kind, what to log). Then, inside the family's parent run:
:func:`score_baseline`, :func:`tune` (the Optuna study), :func:`refit_and_score` (the winner with its
calibration and threshold, scored once on the test data), :func:`log_results` (metrics, params, figures) and
:func:`log_model` (the hold-out for re-scoring, the pyfunc model, loaded back and checked).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import mlflow
import numpy as np
import pandas as pd

from evaluation.splits import stratified_holdout
from models.churn.classifier import DEFAULT_TRIAL, classification_at
from models.churn.columns import FeatureSpec
from models.churn.contract import PYFUNC_FILE, model_metadata, model_signature, output_columns
from models.churn.features import ID_COLUMN
from models.churn.labels import window_days_for
from models.churn.pyfunc import model_config, save_artifacts
from pipelines.churn.data import load_table, plan_cutoffs, shop_snapshot, stack
from pipelines.churn.report import log_report
from pipelines.churn.tuning import (
    CrossValProblem,
    FinalFit,
    TemporalProblem,
    baseline_model,
    fit_final,
    objective_for,
    params_from_trial,
    probability_metrics,
)
from pipelines.data.tables import dataset_digest, load_tables
from pipelines.errors import ConfigurationError
from pipelines.families import get
from pipelines.mlflow_logging import columns_agree, check_round_trip, log_pyfunc_model, log_tables_input, table_dataset
from pipelines.options import NA_VALUES, StudyOptions, TrainConfig
from pipelines.rescoring import log_holdout
from pipelines.study import run_study

logger = logging.getLogger(__name__)

FAMILY = get("churn")
MODEL_REQUIREMENTS = ("numpy", "pandas", "scikit-learn", "joblib")
PURCHASE_MODEL_NAME = FAMILY.other_models[0]  # a purchase-propensity model never lands on storefront-churn
DEFAULT_LOOKBACK_DAYS = 365
TEST_FRACTION = 0.2
CV_FOLDS = 5
ROUND_TRIP_ATOL = 1e-9


@dataclass(frozen=True)
class ChurnConfig(TrainConfig):
    """What one ``train_churn`` run does (the options of :mod:`pipelines.churn.train`, checked)."""

    target: str = "churn"
    window_days: int | None = None
    cutoff: str | None = None
    lookback_days: int = DEFAULT_LOOKBACK_DAYS
    snapshots: int = 1
    tuning_customers: int | None = None  # None: the rule of pipelines.budget; 0: every customer
    table: Path | None = None
    label_column: str | None = None
    id_column: str | None = None
    registered_model: str | None = None
    cost_ratio: float | None = None
    na_values: tuple[str, ...] = NA_VALUES


@dataclass
class Prepared:
    source: str  # "shop" or "table"
    target: str
    problem: TemporalProblem | CrossValProblem
    spec: FeatureSpec
    X_fit: pd.DataFrame
    y_fit: np.ndarray
    X_test: pd.DataFrame
    y_test: np.ndarray
    ids_test: np.ndarray
    baseline: str  # "recency" or "plain"
    digest: str
    log_inputs: Callable[[], None]
    run_params: dict
    config_extra: dict
    study: StudyOptions
    run_name: str
    registered_model: str | None
    split: str = ""
    holdout_spec: dict = field(default_factory=dict)
    table_summary: str = ""  # a table run: how its rows and columns were read (printed by the command)
    tuning_problem: TemporalProblem | CrossValProblem | None = None  # the trials' (sampled) problem; None: problem
    tuning_note: dict = field(default_factory=dict)  # the sample rule's outcome, logged with the run's params

    @property
    def label(self) -> str:
        return output_columns(self.target)[2]


def prepare_shop(config: ChurnConfig) -> Prepared:
    """Snapshots of the shop tables at the cutoffs of :func:`pipelines.churn.data.plan_cutoffs`."""
    from pipelines import tracking

    data_dir = config.data_dir or tracking.default_data_dir()
    tables = load_tables(data_dir)
    digest = dataset_digest(tables)
    window = window_days_for(config.target, config.window_days)
    plan = plan_cutoffs(tables["transactions"]["purchase_date"], window, config.cutoff, config.snapshots,
                        config.lookback_days)
    logger.info("churn snapshots (%s, %d-day window): %s", config.target, window, plan.describe())

    built: dict[pd.Timestamp, object] = {}

    def snap(cutoff):  # the validation snapshot is also a refit snapshot: build each cutoff once
        if cutoff not in built:
            built[cutoff] = shop_snapshot(tables, cutoff, window, config.target, config.lookback_days)
        return built[cutoff]

    tuning = stack([snap(c) for c in plan.tuning_fit])
    validation = snap(plan.validation)
    final = validation if plan.final_fit == (plan.validation,) else stack([snap(c) for c in plan.final_fit])
    test = snap(plan.test)
    spec = FeatureSpec.from_frame(final.frame, exclude=[ID_COLUMN])
    problem = TemporalProblem(spec, tuning.frame[spec.features], tuning.y, validation.frame[spec.features],
                              validation.y, seed=config.study.seed)
    tuning_problem, tuning_note = sampled_problem(problem, tuning.frame[ID_COLUMN], config.tuning_customers,
                                                  config.study.seed)

    def log_inputs():
        log_tables_input(tables, data_dir, digest, names=("transactions", "events", "customers"))
        mlflow.log_metrics({
            "n_tuning_rows": tuning.size, "n_validation_rows": validation.size, "n_final_fit_rows": final.size,
            "n_test_rows": test.size, "tuning_positive_rate": float(tuning.y.mean()),
            "validation_positive_rate": float(validation.y.mean()), "test_positive_rate": float(test.y.mean()),
        })

    name = f"churn-{config.target}-{window}d"  # the default study name
    return Prepared(
        source="shop", target=config.target, problem=problem, spec=spec,
        X_fit=final.frame[spec.features], y_fit=final.y, X_test=test.frame[spec.features], y_test=test.y,
        ids_test=test.frame[ID_COLUMN].to_numpy(dtype=str), baseline="recency", digest=digest, log_inputs=log_inputs,
        run_params={"source": "shop", "data_dir": str(data_dir), "target": config.target, "window_days": window,
                    "lookback_days": config.lookback_days, "snapshots": config.snapshots,
                    "cost_ratio": config.cost_ratio, **plan.describe()},
        config_extra={"source": "shop", "window_days": window, "lookback_days": config.lookback_days,
                      "test_cutoff": plan.test.isoformat()},
        study=config.study.named(name), run_name=f"{config.target}, {window}-day window",
        registered_model=config.registered_model or (PURCHASE_MODEL_NAME if config.target == "purchase" else None),
        split=(f"tuning fits on the snapshot(s) at {', '.join(c.date().isoformat() for c in plan.tuning_fit)} and "
               f"scores the one at {plan.validation.date()}; the winner is refit on the snapshot(s) at "
               f"{', '.join(c.date().isoformat() for c in plan.final_fit)} and scored once at {plan.test.date()} "
               f"({window}-day label windows after each cutoff)"),
        holdout_spec={"target": config.target, "window_days": window, "test_cutoff": plan.test.isoformat()},
        tuning_problem=tuning_problem, tuning_note=tuning_note,
    )


def sampled_problem(problem: TemporalProblem, ids: pd.Series, requested: int | None,
                    seed: int) -> tuple[TemporalProblem | None, dict]:
    """The trials' problem under the sample rule of :mod:`pipelines.budget`: the tuning rows of a random sample of
    customers (all of a customer's snapshots), scored on the whole validation snapshot; None when every customer is
    used. Also the rule's outcome (``tuning_customers``, ``tuning_customers_rule``) for the run's params."""
    from dataclasses import replace

    from pipelines.budget import tuning_customers

    customers = pd.unique(ids.astype(str))
    n_tuning, why = tuning_customers(FAMILY.name, len(customers), requested)
    note = {"tuning_customers": n_tuning, "tuning_customers_rule": why}
    if n_tuning >= len(customers):
        return None, note
    chosen = np.random.default_rng(seed).choice(customers, size=n_tuning, replace=False)
    keep = ids.astype(str).isin(chosen).to_numpy()
    return replace(problem, X_fit=problem.X_fit.loc[keep], y_fit=problem.y_fit[keep]), note


def prepare_table(config: ChurnConfig) -> Prepared:
    """A user's customer table: a stratified hold-out for the test, stratified K-fold CV on the rest."""
    data = load_table(config.table, config.label_column, config.id_column, config.na_values)
    counts = np.bincount(data.y, minlength=2)
    if counts.min() * TEST_FRACTION * (1 - 1 / CV_FOLDS) < 2:
        raise ConfigurationError(f"{data.path}: {counts.min()} rows of the rarer class are too few for a "
                                 f"{int(TEST_FRACTION * 100)}% test split and {CV_FOLDS}-fold tuning")
    dev, test = stratified_holdout(data.y, TEST_FRACTION, config.study.seed)
    X_dev, y_dev = data.X.iloc[dev].reset_index(drop=True), data.y[dev]
    problem = CrossValProblem(data.spec, X_dev, y_dev, folds=CV_FOLDS, seed=config.study.seed)
    digest = dataset_digest({"table": data.raw})

    def log_inputs():
        mlflow.set_tag("data_digest", digest)
        mlflow.set_tag("data_table", str(data.path))
        mlflow.log_input(table_dataset(data.raw, data.path, data.path.stem), context="training")
        mlflow.log_metrics({"n_dev_rows": len(dev), "n_test_rows": len(test),
                            "dev_positive_rate": float(y_dev.mean()), "test_positive_rate": float(data.y[test].mean())})
        log_column_types(data)

    name = f"churn-table-{data.path.stem}"  # the default study name
    return Prepared(
        source="table", target="churn", problem=problem, spec=data.spec, X_fit=X_dev, y_fit=y_dev,
        X_test=data.X.iloc[test].reset_index(drop=True), y_test=data.y[test], ids_test=data.ids[test],
        baseline="plain", digest=digest, log_inputs=log_inputs,
        run_params={"source": "table", "table": str(data.path), "label_column": data.label_column,
                    "id_column": data.id_column or "", "test_fraction": TEST_FRACTION, "cv_folds": CV_FOLDS,
                    "cost_ratio": config.cost_ratio, "lenient_columns": ",".join(data.spec.lenient),
                    "na_values": ",".join(config.na_values) or "none"},
        config_extra={"source": "table", "table": data.path.name, "label_column": data.label_column,
                      "id_column": data.id_column},
        study=config.study.named(name), run_name=f"churn from {data.path.name}",
        registered_model=config.registered_model,
        split=(f"a stratified {TEST_FRACTION:.0%} hold-out of the rows is the test set; {CV_FOLDS}-fold stratified "
               "cross-validation on the rest tunes"),
        holdout_spec={"table": data.path.name, "label_column": data.label_column},
        table_summary=data.summary(),
    )


def log_column_types(data) -> None:
    """How the table's columns were read (``tables/column_types.csv``) and the counts as metrics: rows read and
    dropped without a label, missing values imputed, columns per kind."""
    table = data.reading.table()
    mlflow.log_text(table.to_csv(index=False), "tables/column_types.csv")
    counts = data.reading.counts()
    features = table["read_as"].isin(["numeric", "categorical"])
    mlflow.log_metrics({
        "table_rows_read": data.rows_read, "table_rows_without_label": data.rows_without_label,
        "missing_values": int(table.loc[features, "missing"].sum()),
        "columns_numeric": counts["numeric"], "columns_categorical": counts["categorical"],
        "columns_left_out": counts["left out"],
        "columns_with_missing_values": counts["numeric with missing values"] + counts["categorical with missing values"],
    })


@dataclass
class BaselineScores:
    name: str
    probabilities: np.ndarray
    metrics: dict[str, float]


def score_baseline(p: Prepared, seed: int) -> BaselineScores:
    """The naive reference (recency-only LR on shop data, plain LR on a table), fitted and scored on test."""
    baseline = baseline_model(p.baseline, p.spec, p.X_fit, p.y_fit, seed=seed)
    probabilities = baseline.predict_proba(p.X_test)
    name = "recency-only LR" if p.baseline == "recency" else "plain one-hot + scaled LR"
    return BaselineScores(name, probabilities, probability_metrics(p.y_test, probabilities))


def tune(p: Prepared, baseline: BaselineScores) -> dict:
    """The Optuna study (validation ROC AUC); returns the best trial's full model parameters."""
    if p.tuning_note:
        mlflow.log_params(p.tuning_note)
    study = run_study(objective_for(p.tuning_problem or p.problem), options=p.study, metrics=FAMILY.primary_metric,
                      directions="maximize", baseline=baseline.metrics, enqueue=[DEFAULT_TRIAL])
    if p.tuning_problem is not None:
        check_agreement(p, study)
    return params_from_trial(study.best_params)


def check_agreement(p: Prepared, study) -> dict[str, float] | None:
    """Re-score the sampled study's top :data:`pipelines.budget.AGREEMENT_TRIALS` trials fitted on every customer
    (the whole validation snapshot as before) and log :func:`pipelines.budget.agreement`."""
    import optuna

    from pipelines import budget

    complete = study.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    top = sorted(complete, key=lambda t: -t.value)[:budget.AGREEMENT_TRIALS]
    if len(top) < 2:
        return None
    full = [p.problem.score(params_from_trial(t.params)) for t in top]
    found = budget.agreement([t.value for t in top], full)
    mlflow.log_metrics({"tuning_agreement_kendall_tau": found["kendall_tau"], "tuning_agreement_best": found["best"],
                        "tuning_agreement_trials": found["n"]})
    mlflow.log_text("trial,sample_value,full_value\n" + "".join(
        f"{t.number},{t.value:.6f},{v:.6f}\n" for t, v in zip(top, full)), "study/tuning_agreement.csv")
    logger.info("tuning agreement with every customer: Kendall tau %.2f over the top %d, best %s",
                found["kendall_tau"], len(top), "agrees" if found["best"] else "differs")
    return found


@dataclass
class Scored:
    final: FinalFit
    probabilities: np.ndarray  # calibrated test probabilities
    raw_probabilities: np.ndarray
    metrics: dict[str, float]


def refit_and_score(p: Prepared, params: dict, cost_ratio: float | None, seed: int) -> Scored:
    """Refit the winner on the final-fit data (calibration and threshold from the decision data), score once."""
    final = fit_final(p.problem, params, p.X_fit, p.y_fit, cost_ratio=cost_ratio, seed=seed)
    model = final.model
    p_test = model.predict_proba(p.X_test)
    p_raw = model.pipeline.predict_proba(p.X_test[p.spec.features])[:, 1]
    metrics = {**probability_metrics(p.y_test, p_test), **classification_at(p.y_test, p_test, model.threshold)}
    return Scored(final, p_test, p_raw, metrics)


def log_results(p: Prepared, scored: Scored, baseline: BaselineScores, cost_ratio: float | None) -> None:
    """Test metrics, the decision's params, the figures and tables of :mod:`pipelines.churn.report`."""
    model, final = scored.final.model, scored.final
    mlflow.log_metrics({f"test_{k}": v for k, v in scored.metrics.items()})
    mlflow.log_metrics({"threshold": model.threshold, "val_brier_raw": final.calibration.brier_raw,
                        "val_brier_calibrated": final.calibration.brier_calibrated,
                        "final_convergence_warnings": final.convergence_warnings,
                        **{f"test_raw_{k}": v for k, v in probability_metrics(p.y_test, scored.raw_probabilities).items()
                           if k in ("brier", "log_loss")}})
    mlflow.log_params({"calibration": "platt" if model.calibration else "none",
                       "threshold_rule": "min cost" if cost_ratio else "max F1",
                       "baseline": p.baseline, "n_features": len(p.spec.features),
                       "registered_model": p.registered_model or ""})
    log_report(model, p.X_fit, p.y_test, scored.probabilities, scored.raw_probabilities, baseline.probabilities,
               baseline.name, p.label)
    m = scored.metrics
    logger.info("test auc %.4f (baseline %.4f), pr_auc %.4f, brier %.4f, F1 %.3f at threshold %.3f",
                m["auc"], baseline.metrics["auc"], m["pr_auc"], m["brier"], m["f1"], model.threshold)


def log_model(p: Prepared, scored: Scored):
    """The test rows as ``holdout/`` and the pyfunc model, checked by loading it back; returns the ``ModelInfo``."""
    model = scored.final.model
    probability = output_columns(p.target)[0]
    requests = pd.DataFrame({ID_COLUMN: p.ids_test}).join(p.X_test.reset_index(drop=True))
    truth = pd.DataFrame({ID_COLUMN: p.ids_test, "label": p.y_test.astype(int)})
    log_holdout(requests, truth, {"family": FAMILY.name, "metric": FAMILY.primary_metric, "source": p.source,
                                  "probability_column": probability, "data_digest": p.digest, **p.holdout_spec})
    example = requests.head(5).reset_index(drop=True)
    config = model_config(model, p.target, **p.config_extra)
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = save_artifacts(model, config, tmp)
        info = log_pyfunc_model(PYFUNC_FILE, name=FAMILY.logged_model, artifacts=artifacts, input_example=example,
                                requirements=MODEL_REQUIREMENTS, signature=model_signature(example, p.spec, p.target),
                                metadata=model_metadata(p.spec))
    expected = pd.DataFrame({ID_COLUMN: p.ids_test, probability: scored.probabilities})
    check_round_trip(info.model_uri, requests, expected,
                     columns_agree([probability], atol=ROUND_TRIP_ATOL, exact=[ID_COLUMN]))
    return info
