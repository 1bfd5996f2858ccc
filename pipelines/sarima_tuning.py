"""Choosing a model for one series: the search space, rolling-origin cross-validation and the fallbacks.

Only the training periods (everything before the test) ever reach this module's objective.

* :func:`plan_series` decides how a series is tuned and on which folds. A *seasonal* search needs two
  seasons plus one validation window (``2 s + h`` training periods, ``h`` the test length); a shorter
  series gets a *non-seasonal* ARIMA search (at least ``MIN_NONSEASONAL_TRAIN + h`` periods), and a
  still shorter or a constant one the seasonal naive forecast. Folds are expanding windows of ``h``
  periods, at most ``MAX_FOLDS``, the last ending with the training periods
  (:func:`evaluation.splits.rolling_origin_folds`).
* The search space: p, q in 0..3, d in 0..1, the seasonal (P, D, Q) in {0, 1}^3 restricted to the forms the
  shortest fold can identify, the trend (n, c, t, ct) and the transform (none, or log when every value is
  positive).
* :func:`cv_score` fits a spec on each fold's training part (warm-started from the previous fold) and
  scores the forecast of the fold's validation window: MAPE, or sMAPE when the series has a zero.
* :func:`choose_model` runs the Optuna study (via :func:`pipelines.study.run_study`, inside the active MLflow
  run) and walks the fallback chain seasonal -> non-seasonal ARIMA -> seasonal naive when a search is
  impossible, every trial fails, or no good trial can be refit; the reason is returned.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import product

import mlflow
import numpy as np
import optuna

from evaluation import metrics as M
from evaluation.splits import rolling_origin_folds
from models.sarima import TRENDS, FitError, SarimaFit, SarimaSpec, fit_sarima, forecast_sarima, is_constant
from pipelines.study import StudyFailedError, StudyResult, run_study

logger = logging.getLogger(__name__)

SEASONAL = "seasonal"
NONSEASONAL = "nonseasonal"
NAIVE = "seasonal_naive"
MAX_FOLDS = 3
MIN_NONSEASONAL_TRAIN = 8
MAX_P = MAX_Q = 3
MAX_D = 1
REFIT_CANDIDATES = 5


@dataclass(frozen=True)
class TuningPlan:
    mode: str
    season: int
    horizon: int
    folds: tuple[tuple[int, int], ...] = ()
    metric: str = "mape"
    seasonal_forms: tuple[str, ...] = ()
    transforms: tuple[str, ...] = ("none",)
    reason: str = ""

    def describe(self) -> str:
        if self.mode == NAIVE:
            return f"seasonal naive: {self.reason}"
        return (f"{self.mode} search on {len(self.folds)} fold(s) of {self.folds[0][1] - self.folds[0][0]} periods "
                f"(first training window {self.folds[0][0]}), scored by {self.metric}")


def _folds(n: int, horizon: int, min_train: int) -> tuple[tuple[int, int], ...]:
    n_folds = min(MAX_FOLDS, (n - min_train) // horizon)
    return tuple(rolling_origin_folds(n, n_folds, horizon, min_train)) if n_folds >= 1 else ()


def _seasonal_forms(shortest_train: int, season: int) -> tuple[str, ...]:
    forms = []
    for P, D, Q in product((0, 1), repeat=3):
        spec = SarimaSpec((0, 0, 0), (P, D, Q, season))
        if spec.min_observations() <= shortest_train:
            forms.append(f"{P},{D},{Q}")
    return tuple(forms)


def plan_series(y_train: np.ndarray, season: int, horizon: int, mode: str = SEASONAL) -> TuningPlan:
    """How to tune ``y_train``, starting from ``mode`` and falling back as the data require."""
    y = np.asarray(y_train, dtype=float)
    n = y.size
    metric = "mape" if (y != 0).all() else "smape"
    transforms = ("none", "log") if (y > 0).all() else ("none",)
    reasons = []
    if is_constant(y):
        return TuningPlan(NAIVE, season, horizon, reason=f"constant series: all {n} training periods are {y[0]:g}")
    if mode == SEASONAL:
        needed = 2 * season + horizon
        folds = _folds(n, horizon, 2 * season) if n >= needed else ()
        forms = _seasonal_forms(folds[0][0], season) if folds else ()
        if folds and len(forms) > 1:
            return TuningPlan(SEASONAL, season, horizon, folds, metric, forms, transforms)
        reasons.append(f"too short for the seasonal period {season}: {n} training periods, a seasonal search needs "
                       f"{needed} (two seasons and a validation window of {horizon})")
        mode = NONSEASONAL
    if mode == NONSEASONAL:
        needed = MIN_NONSEASONAL_TRAIN + horizon
        folds = _folds(n, horizon, MIN_NONSEASONAL_TRAIN) if n >= needed else ()
        if folds:
            return TuningPlan(NONSEASONAL, season, horizon, folds, metric, (), transforms, "; ".join(reasons))
        reasons.append(f"too short for ARIMA: {n} training periods, a non-seasonal search needs {needed}")
    return TuningPlan(NAIVE, season, horizon, reason="; ".join(reasons))


def suggest_spec(trial: optuna.Trial, plan: TuningPlan) -> SarimaSpec:
    """The search space of ``plan`` (see the module docstring)."""
    p = trial.suggest_int("p", 0, MAX_P)
    d = trial.suggest_int("d", 0, MAX_D)
    q = trial.suggest_int("q", 0, MAX_Q)
    seasonal = (0, 0, 0, 0)
    if plan.mode == SEASONAL:
        P, D, Q = map(int, trial.suggest_categorical("seasonal", list(plan.seasonal_forms)).split(","))
        seasonal = (P, D, Q, plan.season)
    trend = trial.suggest_categorical("trend", list(TRENDS))
    transform = trial.suggest_categorical("transform", list(plan.transforms))
    return SarimaSpec((p, d, q), seasonal, trend, transform)


def spec_from_params(params: dict, plan: TuningPlan) -> SarimaSpec:
    seasonal = (0, 0, 0, 0)
    if "seasonal" in params:
        P, D, Q = map(int, str(params["seasonal"]).split(","))
        seasonal = (P, D, Q, plan.season)
    return SarimaSpec((params["p"], params["d"], params["q"]), seasonal, params["trend"], params["transform"])


def score(metric: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return M.METRICS[metric](y_true, y_pred)


@dataclass
class CVResult:
    value: float
    fold_values: list[float]
    warnings: Counter = field(default_factory=Counter)
    not_converged: int = 0


def cv_score(y_train: np.ndarray, spec: SarimaSpec, folds, metric: str) -> CVResult:
    """Mean ``metric`` of the forecasts of each fold's validation window; raises FitError when a fold fails."""
    y = np.asarray(y_train, dtype=float)
    counts: Counter = Counter()
    values, start, not_converged = [], None, 0
    for train_end, test_end in folds:
        fit = fit_sarima(y[:train_end], spec, start_params=start)
        counts.update(fit.warnings)
        not_converged += not fit.converged
        start = fit.params
        forecast = forecast_sarima(y[:train_end], spec, fit.params, test_end - train_end)
        try:
            values.append(score(metric, y[train_end:test_end], forecast.mean))
        except M.MetricInputError as exc:
            raise FitError(f"fold ending at {test_end}: {exc}") from exc
    return CVResult(float(np.mean(values)), values, counts, not_converged)


def make_objective(y_train: np.ndarray, plan: TuningPlan):
    """An Optuna objective scoring specs by :func:`cv_score` on ``y_train`` only (a private copy)."""
    y = np.array(y_train, dtype=float, copy=True)

    def objective(trial: optuna.Trial) -> float:
        spec = suggest_spec(trial, plan)
        trial.set_user_attr("spec", spec.label())
        result = cv_score(y, spec, plan.folds, plan.metric)
        trial.set_user_attr("n_warnings", sum(result.warnings.values()))
        trial.set_user_attr("n_convergence_warnings", result.warnings.get("ConvergenceWarning", 0))
        trial.set_user_attr("n_not_converged", result.not_converged)
        for i, value in enumerate(result.fold_values):
            trial.set_user_attr(f"val_{plan.metric}_fold{i + 1}", value)
        return result.value

    return objective


@dataclass
class SeriesChoice:
    """The model chosen for one series and why."""

    kind: str  # "sarima" or "seasonal_naive"
    plan: TuningPlan
    spec: SarimaSpec | None = None
    train_fit: SarimaFit | None = None
    reason: str = ""
    studies: list[StudyResult] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.spec.label() if self.spec else "seasonal naive"


def _refit_best(y_train: np.ndarray, study: StudyResult, plan: TuningPlan) -> tuple[SarimaSpec, SarimaFit] | None:
    """The best completed trial whose spec fits all training periods (trying the top few)."""
    complete = [t for t in study.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    complete.sort(key=lambda t: t.values[0])
    seen = set()
    for trial in complete:
        spec = spec_from_params(trial.params, plan)
        if spec in seen:
            continue
        seen.add(spec)
        if len(seen) > REFIT_CANDIDATES:
            break
        try:
            return spec, fit_sarima(y_train, spec)
        except FitError as exc:
            logger.warning("refit of trial %d (%s) on all training periods failed: %s", trial.number, spec.label(), exc)
    return None


def choose_model(name: str, y_train: np.ndarray, season: int, horizon: int, *, n_trials: int | None,
                 timeout: float | None, seed: int, storage: str | None, study_name: str,
                 baseline: dict[str, float] | None) -> SeriesChoice:
    """Tune ``y_train`` inside the active MLflow run; see the module docstring for the fallback chain.

    The first study runs in the active run (with the baseline); a fallback study runs in a nested run of
    its own (``<name>-nonseasonal``) so each study's parameters stay separate.
    """
    y = np.asarray(y_train, dtype=float)
    deadline = time.monotonic() + timeout if timeout else None
    plan = plan_series(y, season, horizon)
    reasons = [plan.reason] if plan.reason else []
    studies: list[StudyResult] = []
    first = True
    while plan.mode != NAIVE:
        remaining = None if deadline is None else max(1.0, deadline - time.monotonic())
        logger.info("series %s: %s", name, plan.describe())
        kwargs = dict(study_name=f"{study_name}-{plan.mode}", metrics=plan.metric, directions="minimize",
                      n_trials=n_trials, timeout=remaining, seed=seed, storage=storage)
        try:
            if first:
                study = run_study(make_objective(y, plan), baseline=baseline, **kwargs)
            else:
                with mlflow.start_run(run_name=f"{name}-{plan.mode}", nested=True,
                                      tags={"series": name, "fallback_study": plan.mode}):
                    study = run_study(make_objective(y, plan), **kwargs)
        except StudyFailedError as exc:
            reasons.append(f"{plan.mode} search failed: {exc}")
            study = None
        first = False
        if study is not None:
            studies.append(study)
            refit = _refit_best(y, study, plan)
            if refit is not None:
                spec, fit = refit
                return SeriesChoice("sarima", plan, spec, fit, "; ".join(reasons), studies)
            reasons.append(f"{plan.mode} search: no good trial could be refit on all {y.size} training periods")
        next_mode = NONSEASONAL if plan.mode == SEASONAL else NAIVE
        plan = plan_series(y, season, horizon, next_mode) if next_mode != NAIVE else TuningPlan(NAIVE, season, horizon)
        if plan.reason and plan.reason not in reasons:
            reasons.append(plan.reason)
    if first and baseline:
        mlflow.log_metrics({f"baseline_test_{k}": float(v) for k, v in baseline.items()})
    return SeriesChoice("seasonal_naive", plan, reason="; ".join(reasons) or "fallback", studies=studies)
