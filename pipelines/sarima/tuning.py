"""Choosing a model for one series: the search space, rolling-origin cross-validation and the fallbacks.

Only the training periods (everything before the test) ever reach this module.

* :func:`plan_series` decides how a series is tuned and on which folds. A *seasonal* search needs two
  seasons plus one validation window (``2 s + h`` training periods, ``h`` the test length); a shorter
  series gets a *non-seasonal* ARIMA search (at least ``MIN_NONSEASONAL_TRAIN + h`` periods), and a
  still shorter or a constant one the seasonal naive forecast. Folds are expanding windows of ``h``
  periods, at most ``MAX_FOLDS``, the last ending with the training periods
  (:func:`evaluation.splits.rolling_origin_folds`).
* Differencing (``differencing="tests"``, the default): the orders d and D are not searched but set per
  transform by the classic tests on the training periods, as R's ``auto.arima`` and pmdarima do: D = 1 when
  the STL seasonal strength exceeds 0.64 (Wang, Smith & Hyndman 2006), then d = the number of differences
  (at most ``MAX_D``) after which the KPSS test no longer rejects level stationarity at 5%. Rolling-origin
  scores of models with different differencing are noisy on short series, and on AirPassengers they favour
  over-differenced models that forecast worse (see docs/sarima.md). With ``differencing="search"`` d and D
  are searched like the other orders.
* The search space: p, q in 0..3, the seasonal P, Q in {0, 1} restricted to the forms the shortest fold can
  identify, the trend (n, c, t, ct; on the differenced series, as in SARIMAX) and the transform (none, or
  log when every value is positive).
* :func:`cv_score` fits a spec on each fold's training part (warm-started from the previous fold) and
  scores the forecast of the fold's validation window: MAPE, or sMAPE when the series has a zero.
* Information-criterion screen (``ic_margin``, default ``IC_MARGIN`` = 2): each trial first fits its spec on
  all training periods and computes the AICc, as auto.arima/pmdarima rank models. AICc values compare only
  models of the same likelihood, i.e. the same transform and differencing (a *group*); a spec whose AICc is
  more than ``ic_margin`` above the best AICc of its group seen so far is pruned without cross-validation
  (Optuna state PRUNED, its ``aicc`` logged). The chosen model is the best rolling-origin score among the
  completed specs whose AICc is within ``ic_margin`` of their group's final best: the AICc keeps the orders
  the whole training history supports, the out-of-sample score decides among them and between groups
  (transforms), which the AICc cannot compare. ``ic_margin=None`` turns the screen off (CV score only).
  The full-data fits are kept and reused for the refit of the chosen spec.
* :func:`choose_model` runs the Optuna studies through the ``search`` it is given (the caller tracks them in
  MLflow) and walks the fallback chain seasonal -> non-seasonal ARIMA -> seasonal naive when a search is
  impossible, every trial fails, or no good trial can be refit; the reason is returned. This module only
  scores: it opens no MLflow run and logs nothing.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from itertools import product
from typing import Callable

import numpy as np
import optuna

from evaluation import metrics as M
from evaluation.splits import rolling_origin_folds
from models.sarima.model import (TRENDS, FitError, SarimaFit, SarimaSpec, fit_sarima, forecast_sarima, is_constant,
                           transform_values)
from pipelines.errors import StudyFailedError
from pipelines.sarima import IC_MARGIN
from pipelines.study import StudyResult

logger = logging.getLogger(__name__)

SEASONAL = "seasonal"
NONSEASONAL = "nonseasonal"
NAIVE = "seasonal_naive"
DIFFERENCING = ("tests", "search")
MAX_FOLDS = 3
MIN_NONSEASONAL_TRAIN = 8
MAX_ORDER = 3  # p and q at most 3, fewer on short series (see order_cap)
OBS_PER_ORDER = 8
MAX_D = 1
SEASONAL_STRENGTH_THRESHOLD = 0.64
KPSS_ALPHA = 0.05
REFIT_CANDIDATES = 5


@dataclass(frozen=True)
class TuningPlan:
    """How one series is searched: mode, folds, objective metric, and the static parts of the search space.

    ``differencing`` maps each transform to its (d, D) from the tests; empty when d and D are searched.
    ``seasonal_forms`` are the identifiable seasonal choices: ``"P,Q"`` with tested differencing, ``"P,D,Q"``
    when D is searched.
    """

    mode: str
    season: int
    horizon: int
    folds: tuple[tuple[int, int], ...] = ()
    metric: str = "mape"
    seasonal_forms: tuple[str, ...] = ()
    transforms: tuple[str, ...] = ("none",)
    differencing: tuple[tuple[str, int, int], ...] = ()
    max_order: int = MAX_ORDER
    trends: tuple[str, ...] = TRENDS
    reason: str = ""

    def orders_for(self, transform: str) -> tuple[int, int]:
        return next((d, D) for t, d, D in self.differencing if t == transform)

    def describe(self) -> str:
        if self.mode == NAIVE:
            return f"seasonal naive: {self.reason}"
        diffs = ", ".join(f"{t}: d={d} D={D}" for t, d, D in self.differencing) or "d and D searched"
        return (f"{self.mode} search on {len(self.folds)} fold(s) of {self.folds[0][1] - self.folds[0][0]} periods "
                f"(first training window {self.folds[0][0]}), scored by {self.metric}; differencing {diffs}")


def seasonal_strength(y: np.ndarray, season: int) -> float:
    """STL seasonal strength ``max(0, 1 - var(remainder) / var(seasonal + remainder))``, in [0, 1]."""
    from statsmodels.tsa.seasonal import STL

    if y.size < 2 * season + 1:
        return 0.0
    result = STL(y, period=season, robust=True).fit()
    total = np.var(result.resid + result.seasonal)
    return 0.0 if total == 0 else float(max(0.0, 1.0 - np.var(result.resid) / total))


def kpss_differences(y: np.ndarray, max_d: int = MAX_D) -> int:
    """Differences needed until KPSS (level) no longer rejects stationarity at 5%, at most ``max_d``."""
    from statsmodels.tsa.stattools import kpss

    d = 0
    while d < max_d and y.size > 3 and not is_constant(y):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # InterpolationWarning: p-value outside the table (0.01 or 0.1)
            p_value = kpss(y, regression="c", nlags="auto")[1]
        if p_value >= KPSS_ALPHA:
            break
        y, d = np.diff(y), d + 1
    return d


def tested_differencing(y: np.ndarray, season: int, transform: str, seasonal: bool) -> tuple[int, int]:
    """(d, D) for ``y`` under ``transform`` from the seasonal-strength and KPSS tests."""
    z = transform_values(y, transform)
    D = int(seasonal and seasonal_strength(z, season) > SEASONAL_STRENGTH_THRESHOLD)
    if D:
        z = z[season:] - z[:-season]
    return kpss_differences(z), D


def order_cap(shortest_train: int, diffs: tuple[tuple[str, int, int], ...], season: int) -> int:
    """Largest p and q: one per ``OBS_PER_ORDER`` differenced observations of the shortest fold, 1 to 3."""
    lost = max((d + D * season for _, d, D in diffs), default=0)
    return int(np.clip((shortest_train - lost) // OBS_PER_ORDER, 1, MAX_ORDER))


def trend_choices(diffs: tuple[tuple[str, int, int], ...]) -> tuple[str, ...]:
    """With tested differencing, as in auto.arima: a constant (drift) at most when the series is differenced, a
    linear time trend only when it is not."""
    if diffs and all(d + D >= 1 for _, d, D in diffs):
        return ("n", "c")
    return TRENDS


def _folds(n: int, horizon: int, min_train: int) -> tuple[tuple[int, int], ...]:
    n_folds = min(MAX_FOLDS, (n - min_train) // horizon)
    return tuple(rolling_origin_folds(n, n_folds, horizon, min_train)) if n_folds >= 1 else ()


def _seasonal_forms(shortest_train: int, season: int, Ds: tuple[int, ...] | None) -> tuple[str, ...]:
    """Seasonal choices identifiable on ``shortest_train`` periods: ``"P,Q"`` for the tested ``Ds`` (all must
    work), or ``"P,D,Q"`` when ``Ds`` is None (D searched)."""
    forms = []
    for P, D, Q in product((0, 1), repeat=3):
        if Ds is not None and D != 0:
            continue
        needs = [D] if Ds is None else list(Ds)
        if all(SarimaSpec((0, 0, 0), (P, d_, Q, season)).min_observations() <= shortest_train for d_ in needs):
            forms.append(f"{P},{D},{Q}" if Ds is None else f"{P},{Q}")
    return tuple(forms)


def plan_series(y_train: np.ndarray, season: int, horizon: int, mode: str = SEASONAL,
                differencing: str = "tests") -> TuningPlan:
    """How to tune ``y_train``, starting from ``mode`` and falling back as the data require."""
    if differencing not in DIFFERENCING:
        raise ValueError(f"differencing must be one of {', '.join(DIFFERENCING)}, got {differencing!r}")
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
        if folds:
            diffs = tuple((t, *tested_differencing(y, season, t, True)) for t in transforms) \
                if differencing == "tests" else ()
            if diffs and not any(D for _, _, D in diffs):
                reasons.append(f"no seasonality of period {season} found (STL seasonal strength <= "
                               f"{SEASONAL_STRENGTH_THRESHOLD})")
            else:
                forms = _seasonal_forms(folds[0][0], season, tuple(D for _, _, D in diffs) if diffs else None)
                if forms and (diffs or len(forms) > 1):
                    return TuningPlan(SEASONAL, season, horizon, folds, metric, forms, transforms, diffs,
                                      order_cap(folds[0][0], diffs, season), trend_choices(diffs))
                reasons.append(f"no seasonal order is identifiable on the {folds[0][0]} periods of the first fold")
        else:
            reasons.append(f"too short for the seasonal period {season}: {n} training periods, a seasonal search "
                           f"needs {needed} (two seasons and a validation window of {horizon})")
        mode = NONSEASONAL
    if mode == NONSEASONAL:
        needed = MIN_NONSEASONAL_TRAIN + horizon
        folds = _folds(n, horizon, MIN_NONSEASONAL_TRAIN) if n >= needed else ()
        if folds:
            diffs = tuple((t, *tested_differencing(y, season, t, False)) for t in transforms) \
                if differencing == "tests" else ()
            return TuningPlan(NONSEASONAL, season, horizon, folds, metric, (), transforms, diffs,
                              order_cap(folds[0][0], diffs, season), trend_choices(diffs), "; ".join(reasons))
        reasons.append(f"too short for ARIMA: {n} training periods, a non-seasonal search needs {needed}")
    return TuningPlan(NAIVE, season, horizon, reason="; ".join(reasons))


def suggest_spec(trial: optuna.Trial, plan: TuningPlan) -> SarimaSpec:
    """The search space of ``plan`` (see the module docstring)."""
    p = trial.suggest_int("p", 0, plan.max_order)
    q = trial.suggest_int("q", 0, plan.max_order)
    params = {"p": p, "q": q}
    if not plan.differencing:
        params["d"] = trial.suggest_int("d", 0, MAX_D)
    if plan.mode == SEASONAL:
        params["seasonal"] = trial.suggest_categorical("seasonal", list(plan.seasonal_forms))
    params["trend"] = trial.suggest_categorical("trend", list(plan.trends))
    params["transform"] = trial.suggest_categorical("transform", list(plan.transforms))
    return spec_from_params(params, plan)


def starting_params(plan: TuningPlan) -> list[dict]:
    """Trials run first: the four Hyndman-Khandakar starting models (p, q)(P, Q) = (2, 2)(1, 1), (0, 0)(0, 0),
    (1, 0)(1, 0), (0, 1)(0, 1) with a constant (orders capped at the plan's), for each transform, so that the search explores every
    transform before the sampler narrows down (where a seasonal form is not identifiable, (0, 0) instead)."""
    starts, seen = [], set()
    for transform in plan.transforms:
        for p, q, P, Q in ((2, 2, 1, 1), (0, 0, 0, 0), (1, 0, 1, 0), (0, 1, 0, 1)):
            params: dict = {"p": min(p, plan.max_order), "q": min(q, plan.max_order)}
            if not plan.differencing:
                params["d"] = 1
            if plan.mode == SEASONAL:
                form = f"{P},{Q}" if plan.differencing else f"{P},1,{Q}"
                fallback = "0,0" if plan.differencing else "0,1,0"
                params["seasonal"] = form if form in plan.seasonal_forms else (
                    fallback if fallback in plan.seasonal_forms else plan.seasonal_forms[0])
            params.update(trend="c", transform=transform)
            key = tuple(sorted(params.items()))
            if key not in seen:
                seen.add(key)
                starts.append(params)
    return starts


def spec_from_params(params: dict, plan: TuningPlan) -> SarimaSpec:
    """The spec of a trial's params under ``plan`` (d and D from the plan's tests when not searched)."""
    transform = params["transform"]
    d, D = plan.orders_for(transform) if plan.differencing else (int(params["d"]), 0)
    seasonal = (0, 0, 0, 0)
    if plan.mode == SEASONAL:
        parts = [int(v) for v in str(params["seasonal"]).split(",")]
        P, Q = (parts[0], parts[1]) if plan.differencing else (parts[0], parts[2])
        D = D if plan.differencing else parts[1]
        seasonal = (P, D, Q, plan.season)
    return SarimaSpec((int(params["p"]), d, int(params["q"])), seasonal, params["trend"], transform)


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


def aicc(fit: SarimaFit) -> float:
    """The corrected AIC of a fit: ``aic + 2k(k+1)/(n-k-1)`` with ``n`` the observations in the likelihood
    (after differencing) and ``k`` the estimated parameters; ``inf`` when ``n <= k + 1``."""
    k = len(fit.params)
    n = fit.n_obs - fit.spec.n_diff
    return fit.aic + 2 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else float("inf")


def ic_group(spec: SarimaSpec) -> tuple[str, int, int]:
    """Specs whose AICc values compare: the same transform and the same differencing (d, D)."""
    return spec.transform, spec.order[1], spec.seasonal_order[1]


class ICScreen:
    """The AICc screen of one study (see the module docstring): full-data fits by spec, best AICc by group."""

    def __init__(self, y_train: np.ndarray, margin: float | None = IC_MARGIN):
        self.y = y_train
        self.margin = margin
        self.fits: dict[SarimaSpec, SarimaFit | FitError] = {}
        self.best: dict[tuple[str, int, int], float] = {}

    def fit(self, spec: SarimaSpec) -> SarimaFit:
        """The spec fitted on all training periods (once; a failure is remembered and raised again)."""
        if spec not in self.fits:
            try:
                self.fits[spec] = fit_sarima(self.y, spec)
            except FitError as exc:
                self.fits[spec] = exc
        result = self.fits[spec]
        if isinstance(result, FitError):
            raise FitError(str(result))
        return result

    def check(self, spec: SarimaSpec) -> tuple[float, float]:
        """AICc of ``spec`` and the best of its group so far (this one included); raises FitError."""
        value = aicc(self.fit(spec))
        group = ic_group(spec)
        best = min(self.best.get(group, float("inf")), value)
        self.best[group] = best
        return value, best

    def plausible(self, spec: SarimaSpec) -> bool:
        """Within the margin of its group's best AICc (always true without a screen or a full-data fit)."""
        fit = self.fits.get(spec)
        if self.margin is None or not isinstance(fit, SarimaFit):
            return True
        return aicc(fit) <= self.best.get(ic_group(spec), float("inf")) + self.margin


def make_objective(y_train: np.ndarray, plan: TuningPlan, ic_margin: float | None = IC_MARGIN):
    """An Optuna objective scoring specs by :func:`cv_score` on ``y_train`` only (a private copy), after the
    AICc screen (``ic_margin``; None for none). Its ``screen`` attribute holds the :class:`ICScreen`.

    A spec the sampler proposes again is not refitted: its score (or its failure) is reused.
    """
    y = np.array(y_train, dtype=float, copy=True)
    cache: dict[SarimaSpec, CVResult | FitError] = {}
    screen = ICScreen(y, ic_margin)

    def objective(trial: optuna.Trial) -> float:
        spec = suggest_spec(trial, plan)
        trial.set_user_attr("spec", spec.label())
        if ic_margin is not None:
            value, best = screen.check(spec)  # a spec that cannot be fitted on all periods fails here
            trial.set_user_attr("aicc", value)
            if value > best + ic_margin:
                raise optuna.TrialPruned(f"AICc {value:.2f} is more than {ic_margin:g} above the best {best:.2f} "
                                         f"of its group (transform {spec.transform}, d={spec.order[1]}, "
                                         f"D={spec.seasonal_order[1]})")
        if spec not in cache:
            try:
                cache[spec] = cv_score(y, spec, plan.folds, plan.metric)
            except FitError as exc:
                cache[spec] = exc
        else:
            trial.set_user_attr("cached", 1)
        result = cache[spec]
        if isinstance(result, FitError):
            raise FitError(str(result))
        trial.set_user_attr("n_warnings", sum(result.warnings.values()))
        trial.set_user_attr("n_convergence_warnings", result.warnings.get("ConvergenceWarning", 0))
        trial.set_user_attr("n_not_converged", result.not_converged)
        for i, value in enumerate(result.fold_values):
            trial.set_user_attr(f"val_{plan.metric}_fold{i + 1}", value)
        return result.value

    objective.screen = screen
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


def _refit_best(y_train: np.ndarray, study: StudyResult, plan: TuningPlan,
                screen: ICScreen | None = None) -> tuple[SarimaSpec, SarimaFit] | None:
    """The best completed trial whose spec fits all training periods (trying the top few); with a ``screen``,
    among the specs within its margin of their group's final best AICc first (the others after them)."""
    complete = [t for t in study.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    complete.sort(key=lambda t: t.values[0])
    screen = screen or ICScreen(y_train, None)
    complete.sort(key=lambda t: not screen.plausible(spec_from_params(t.params, plan)))  # stable: by score inside
    seen = set()
    for trial in complete:
        spec = spec_from_params(trial.params, plan)
        if spec in seen:
            continue
        seen.add(spec)
        if len(seen) > REFIT_CANDIDATES:
            break
        try:
            return spec, screen.fit(spec)
        except FitError as exc:
            logger.warning("refit of trial %d (%s) on all training periods failed: %s", trial.number, spec.label(), exc)
    return None


Search = Callable[..., StudyResult]
"""``search(objective, plan, enqueue=..., first=..., timeout=...)``: runs one Optuna study of ``plan`` (the caller
decides where its trials are tracked: :func:`pipelines.sarima.steps.series_search`)."""


def choose_model(y_train: np.ndarray, season: int, horizon: int, search: Search, *, timeout: float | None,
                 differencing: str = "tests", ic_margin: float | None = IC_MARGIN, name: str = "series") -> SeriesChoice:
    """Tune ``y_train`` with ``search``; see the module docstring for the fallback chain. No MLflow here."""
    y = np.asarray(y_train, dtype=float)
    deadline = time.monotonic() + timeout if timeout else None
    plan = plan_series(y, season, horizon, differencing=differencing)
    reasons = [plan.reason] if plan.reason else []
    studies: list[StudyResult] = []
    first = True
    while plan.mode != NAIVE:
        remaining = None if deadline is None else max(1.0, deadline - time.monotonic())
        logger.info("series %s: %s", name, plan.describe())
        objective = make_objective(y, plan, ic_margin)
        try:
            study = search(objective, plan, enqueue=starting_params(plan), first=first, timeout=remaining)
        except StudyFailedError as exc:
            reasons.append(f"{plan.mode} search failed: {exc}")
            study = None
        first = False
        if study is not None:
            studies.append(study)
            refit = _refit_best(y, study, plan, objective.screen)
            if refit is not None:
                spec, fit = refit
                return SeriesChoice("sarima", plan, spec, fit, "; ".join(reasons), studies)
            reasons.append(f"{plan.mode} search: no good trial could be refit on all {y.size} training periods")
        next_mode = NONSEASONAL if plan.mode == SEASONAL else NAIVE
        plan = (plan_series(y, season, horizon, next_mode, differencing) if next_mode != NAIVE
                else TuningPlan(NAIVE, season, horizon))
        if plan.reason and plan.reason not in reasons:
            reasons.append(plan.reason)
    return SeriesChoice("seasonal_naive", plan, reason="; ".join(reasons) or "fallback", studies=studies)
