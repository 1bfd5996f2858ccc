"""Tuning problems and the final fit of the churn classifier, shared by ``train_churn`` and the benchmark.

A *problem* knows how to score one parameter set (validation ROC AUC, the Optuna objective's value) and how
to produce the *decision data* for the best one (validation labels and predictions of a model that did not
see them), from which the calibration and the threshold are chosen:

* :class:`TemporalProblem` (shop snapshots): fit on the tuning snapshots, score on the validation snapshot.
* :class:`CrossValProblem` (bring-your-own table): stratified K-fold CV on the development rows; the
  decision data are the out-of-fold predictions.

:func:`fit_final` refits the best parameters on the final-fit data and attaches calibration and threshold.
No MLflow here: objectives only compute scores.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from evaluation import metrics
from evaluation.splits import stratified_folds
from models.churn.classifier import (
    DEFAULT_PARAMS,
    CalibrationChoice,
    ChurnClassifier,
    choose_calibration,
    complete_params,
    fit_pipeline,
    make_pipeline,
    positive_probability,
    suggest_params,
    tune_threshold,
)
from models.churn.columns import FeatureSpec

logger = logging.getLogger(__name__)

BASELINE_FEATURE = "recency_days"


@dataclass
class TemporalProblem:
    """Fit on ``X_fit``/``y_fit`` (tuning snapshots), score on ``X_val``/``y_val`` (validation snapshot)."""

    spec: FeatureSpec
    X_fit: pd.DataFrame
    y_fit: np.ndarray
    X_val: pd.DataFrame
    y_val: np.ndarray
    seed: int = 0

    def predictions(self, params: dict) -> np.ndarray:
        pipeline = make_pipeline(params, self.spec, self.seed)
        fit_pipeline(pipeline, self.X_fit, self.y_fit)
        return positive_probability(pipeline, self.X_val)

    def score(self, params: dict) -> float:
        return metrics.auc(self.y_val, self.predictions(params))

    def decision_data(self, params: dict) -> tuple[np.ndarray, np.ndarray]:
        return self.y_val, self.predictions(params)


@dataclass
class CrossValProblem:
    """Stratified ``folds``-fold cross-validation on ``X``/``y``: mean fold AUC, out-of-fold decision data."""

    spec: FeatureSpec
    X: pd.DataFrame
    y: np.ndarray
    folds: int = 5
    seed: int = 0

    def __post_init__(self):
        self.splits = stratified_folds(self.y, self.folds, self.seed)

    def _fold_predictions(self, params: dict):
        for fit_idx, val_idx in self.splits:
            pipeline = make_pipeline(params, self.spec, self.seed)
            fit_pipeline(pipeline, self.X.iloc[fit_idx], self.y[fit_idx])
            yield val_idx, positive_probability(pipeline, self.X.iloc[val_idx])

    def score(self, params: dict) -> float:
        return float(np.mean([metrics.auc(self.y[idx], p) for idx, p in self._fold_predictions(params)]))

    def decision_data(self, params: dict) -> tuple[np.ndarray, np.ndarray]:
        oof = np.empty(len(self.y))
        for idx, p in self._fold_predictions(params):
            oof[idx] = p
        return self.y, oof


def objective_for(problem):
    """The Optuna objective: sample parameters, return the problem's validation AUC."""

    def objective(trial) -> float:
        return problem.score(suggest_params(trial))

    return objective


def params_from_trial(trial_params: dict) -> dict:
    """Full model parameters from an Optuna trial's params (the search space fills in the fixed ones)."""
    import optuna

    return complete_params(suggest_params(optuna.trial.FixedTrial(dict(trial_params))))


@dataclass
class FinalFit:
    model: ChurnClassifier
    params: dict
    calibration: CalibrationChoice
    decision_y: np.ndarray
    decision_p: np.ndarray  # raw (uncalibrated) decision-data predictions
    convergence_warnings: int


def fit_final(problem, params: dict, X_fit: pd.DataFrame, y_fit: np.ndarray, *, cost_ratio: float | None = None,
              seed: int = 0, calibrate: bool = True) -> FinalFit:
    """Refit ``params`` on ``X_fit``/``y_fit``; calibration and threshold from the problem's decision data."""
    params = complete_params(params)
    y_dec, p_dec = problem.decision_data(params)
    choice = choose_calibration(y_dec, p_dec, seed=seed) if calibrate else CalibrationChoice(None, np.nan, np.nan)
    p_cal = p_dec if choice.calibration is None else choice.calibration.apply(p_dec)
    threshold = tune_threshold(y_dec, p_cal, cost_ratio)
    pipeline = make_pipeline(params, problem.spec, seed)
    warnings_count = fit_pipeline(pipeline, X_fit[problem.spec.features], y_fit)
    model = ChurnClassifier(pipeline, problem.spec, threshold, choice.calibration)
    logger.info("final model: %s; calibration %s (decision Brier %.4f raw, %.4f calibrated); threshold %.3f",
                params, "platt" if choice.calibration else "none", choice.brier_raw, choice.brier_calibrated, threshold)
    return FinalFit(model, params, choice, y_dec, p_dec, warnings_count)


def baseline_model(kind: str, spec: FeatureSpec, X_fit: pd.DataFrame, y_fit: np.ndarray, seed: int = 0) -> ChurnClassifier:
    """The naive reference, fitted on the final-fit data.

    ``recency``: logistic regression on ``recency_days`` alone (shop snapshots). ``plain``: one-hot +
    scaled logistic regression with default parameters on every feature (bring-your-own tables).
    """
    if kind == "recency":
        spec = FeatureSpec((BASELINE_FEATURE,), (), (BASELINE_FEATURE,))
    elif kind != "plain":
        raise ValueError(f"baseline must be recency or plain, got {kind!r}")
    pipeline = make_pipeline(DEFAULT_PARAMS, spec, seed)
    fit_pipeline(pipeline, X_fit[spec.features], y_fit)
    return ChurnClassifier(pipeline, spec, threshold=0.5)


def probability_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """The probability metrics of the DESIGN (``auc``, ``pr_auc``, ``brier``, ``log_loss``)."""
    return {"auc": metrics.auc(y, p), "pr_auc": metrics.pr_auc(y, p), "brier": metrics.brier(y, p),
            "log_loss": metrics.log_loss(y, p)}
