"""Choosing the model of one series: the plan, the stepwise AICc search and the members the series serves.

Only the training periods (everything before the test) ever reach this module; a missing period is NaN and
stays NaN (the Kalman filter skips it). The rules and the measurements behind them are in docs/sarima.md.

* :func:`plan_series` decides how a series is searched. Fewer than ``MIN_OBSERVED`` observed values, or a
  constant series: the seasonal naive forecast. Otherwise the transforms (none, and log when every observed value
  is positive) and, per transform, the differencing from the classic tests, as R's ``auto.arima`` and pmdarima:
  D = 1 when the STL seasonal strength exceeds 0.64 (Wang, Smith & Hyndman 2006), then d = the number of
  differences (at most ``MAX_D``) after which the KPSS test no longer rejects level stationarity at 5% (the tests
  see missing values linearly interpolated). A series with fewer than two seasons and one of observed values
  gets no seasonal terms at all (a non-seasonal search), and seasonal AR/MA terms need two seasons and one of
  values *after* the seasonal difference (with 30 months and D = 1, 18 seasonal differences cannot identify a
  seasonal lag of 12).
* The search (:func:`stepwise_next`, one Optuna trial per candidate, :func:`make_objective`) is the
  Hyndman-Khandakar stepwise search of ``auto.arima``, per transform: the starting models (p, q)(P, Q) =
  (2, 2)(1, 1), (0, 0)(0, 0), (1, 0)(1, 0), (0, 1)(0, 1), then moves of +-1 on p, q, P, Q, on (p, q) and on
  (P, Q) together and switching the constant, taking the first move that lowers the AICc, until none does.
  The space: p, q <= 2, P, Q <= 1, a constant (drift) only when d + D <= 1 (with d + D = 2 a constant is a
  quadratic trend). Every candidate is fitted on the whole training range; its AICc is that of the original
  values (the log model's likelihood with the Jacobian), so log and raw models compare, and the transform is
  chosen by it. No cross-validation: on the panel of real series it chose worse models than the AICc.
* The members (:func:`combine`): the Akaike-weighted average of the ``AVERAGE_TOP`` best candidates of the
  winner's transform and differencing (weights ``exp(-delta/2)``, those under ``MIN_WEIGHT`` of the best left
  out). A *short* series, whose values after the chosen seasonal difference cover fewer than two seasons and
  one, serves that average and the seasonal naive forecast in equal parts: the AICc has too little to go on
  there, and the model's own interval ignores its parameters' uncertainty (on the generated shops' 30 training
  months the 95% interval covered 0.84 of the test, 0.95 with the seasonal naive in the mixture).
* :func:`choose_model` runs the search through the ``search`` it is given (the caller tracks it in MLflow:
  :func:`pipelines.sarima.steps.series_search`; :func:`plain_search` runs the same objective in memory, for the
  benchmarks) and falls back to the seasonal naive forecast when no candidate can be fitted. This module only
  scores: it opens no MLflow run and logs nothing.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import optuna

from models.sarima.model import (SEASONAL_NAIVE, FitError, Member, SarimaFit, SarimaSpec, SeasonalNaive,
                                 fit_sarima, transform_values)
from pipelines.errors import StudyFailedError
from pipelines.study import StudyResult

logger = logging.getLogger(__name__)

SEASONAL = "seasonal"
NONSEASONAL = "nonseasonal"
NAIVE = "seasonal_naive"
MIN_OBSERVED = 10
MAX_PQ = 2
MAX_SEASONAL_PQ = 1
MAX_D = 1
SEASONAL_STRENGTH_THRESHOLD = 0.64
KPSS_ALPHA = 0.05
AVERAGE_TOP = 20
MIN_WEIGHT = 1e-3  # Akaike weight relative to the best (an AICc 13.8 above it) below which a model is left out
HEDGE_WEIGHT = 0.5  # the seasonal naive forecast's share on a short series
STARTS = ((2, 2, 1, 1), (0, 0, 0, 0), (1, 0, 1, 0), (0, 1, 0, 1))
MOVES = ((-1, 0, 0, 0), (1, 0, 0, 0), (0, -1, 0, 0), (0, 1, 0, 0), (-1, -1, 0, 0), (1, 1, 0, 0),
         (0, 0, -1, 0), (0, 0, 1, 0), (0, 0, 0, -1), (0, 0, 0, 1), (0, 0, -1, -1), (0, 0, 1, 1))


@dataclass(frozen=True)
class TuningPlan:
    """How one series is searched: mode, seasonal period, transforms with their tested (d, D), observed values."""

    mode: str
    season: int
    n_observed: int = 0
    differencing: tuple[tuple[str, int, int], ...] = ()  # (transform, d, D)
    reason: str = ""

    @property
    def transforms(self) -> tuple[str, ...]:
        return tuple(t for t, _, _ in self.differencing)

    def orders_for(self, transform: str) -> tuple[int, int]:
        return next((d, D) for t, d, D in self.differencing if t == transform)

    def seasonal_terms(self, transform: str) -> bool:
        """Seasonal AR/MA terms are identifiable: two seasons and one of values after the seasonal difference."""
        return self.mode == SEASONAL and not self.short(self.orders_for(transform)[1])

    def short(self, D: int) -> bool:
        """Fewer than two seasons and one of observed values after ``D`` seasonal differences."""
        return self.season > 1 and self.n_observed - D * self.season < 2 * self.season + 1

    def describe(self) -> str:
        if self.mode == NAIVE:
            return f"seasonal naive: {self.reason}"
        diffs = ", ".join(f"{t}: d={d} D={D}" for t, d, D in self.differencing)
        return (f"{self.mode} stepwise AICc search on {self.n_observed} observed training periods, season "
                f"{self.season}; differencing {diffs}")


def interpolated(y: np.ndarray) -> np.ndarray:
    """Missing values linearly interpolated (the ends carried), for the differencing tests only."""
    y = np.asarray(y, dtype=float)
    missing = ~np.isfinite(y)
    if not missing.any():
        return y
    index = np.arange(y.size)
    out = y.copy()
    out[missing] = np.interp(index[missing], index[~missing], y[~missing])
    return out


def seasonal_strength(y: np.ndarray, season: int) -> float:
    """STL seasonal strength ``max(0, 1 - var(remainder) / var(seasonal + remainder))``, in [0, 1]."""
    from statsmodels.tsa.seasonal import STL

    y = interpolated(y)
    if season < 2 or y.size < 2 * season + 1:
        return 0.0
    result = STL(y, period=season, robust=True).fit()
    total = np.var(result.resid + result.seasonal)
    return 0.0 if total == 0 else float(max(0.0, 1.0 - np.var(result.resid) / total))


def kpss_differences(y: np.ndarray, max_d: int = MAX_D) -> int:
    """Differences needed until KPSS (level) no longer rejects stationarity at 5%, at most ``max_d``."""
    from statsmodels.tsa.stattools import kpss

    y, d = interpolated(y), 0
    while d < max_d and y.size > 3 and np.ptp(y) > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # InterpolationWarning: p-value outside the table (0.01 or 0.1)
            p_value = kpss(y, regression="c", nlags="auto")[1]
        if p_value >= KPSS_ALPHA:
            break
        y, d = np.diff(y), d + 1
    return d


def tested_differencing(y: np.ndarray, season: int, transform: str, seasonal: bool) -> tuple[int, int]:
    """(d, D) for ``y`` under ``transform`` from the seasonal-strength and KPSS tests."""
    z = interpolated(transform_values(y, transform))
    D = int(seasonal and seasonal_strength(z, season) > SEASONAL_STRENGTH_THRESHOLD)
    if D:
        z = z[season:] - z[:-season]
    return kpss_differences(z), D


def plan_series(y_train: np.ndarray, season: int) -> TuningPlan:
    """How to search ``y_train`` (see the module docstring)."""
    y = np.asarray(y_train, dtype=float)
    observed = y[np.isfinite(y)]
    n = int(observed.size)
    if n < MIN_OBSERVED:
        return TuningPlan(NAIVE, season, n, reason=f"too short for a model: {n} observed training periods, a "
                                                   f"search needs {MIN_OBSERVED}")
    if np.all(observed == observed[0]):
        return TuningPlan(NAIVE, season, n, reason=f"constant series: all {n} observed training periods are "
                                                   f"{observed[0]:g}")
    seasonal = season > 1 and n >= 2 * season + 1
    reason = "" if seasonal or season == 1 else (
        f"too short for the seasonal period {season}: {n} observed training periods, seasonal terms need "
        f"{2 * season + 1} (two seasons and one); a non-seasonal search")
    transforms = ("none", "log") if (observed > 0).all() else ("none",)
    diffs = tuple((t, *tested_differencing(y, season, t, seasonal)) for t in transforms)
    return TuningPlan(SEASONAL if seasonal else NONSEASONAL, season, n, diffs, reason)


# ------------------------------------------------------------------------------------------ candidates


def make_spec(plan: TuningPlan, transform: str, p: int, q: int, P: int = 0, Q: int = 0, trend: str = "n") -> SarimaSpec:
    d, D = plan.orders_for(transform)
    if not plan.seasonal_terms(transform):
        P = Q = 0
    if d + D > 1:
        trend = "n"
    seasonal = (P, D, Q, plan.season) if plan.mode == SEASONAL else (0, 0, 0, 0)
    return SarimaSpec((p, d, q), seasonal, trend, transform)


def params_of(spec: SarimaSpec, plan: TuningPlan) -> dict:
    """A candidate as the Optuna trial's parameters (d and D follow from the transform)."""
    params = {"transform": spec.transform, "p": spec.order[0], "q": spec.order[2]}
    if plan.seasonal_terms(spec.transform):
        params.update(P=spec.seasonal_order[0], Q=spec.seasonal_order[2])
    params["trend"] = spec.trend
    return params


def suggest_spec(trial: optuna.Trial, plan: TuningPlan) -> SarimaSpec:
    """The candidate of a trial: the enqueued parameters of the stepwise search (a trial the search did not
    enqueue, e.g. the first of a resumed study, samples the same space)."""
    transform = trial.suggest_categorical("transform", list(plan.transforms))
    p, q = trial.suggest_int("p", 0, MAX_PQ), trial.suggest_int("q", 0, MAX_PQ)
    P = Q = 0
    if plan.seasonal_terms(transform):
        P, Q = trial.suggest_int("P", 0, MAX_SEASONAL_PQ), trial.suggest_int("Q", 0, MAX_SEASONAL_PQ)
    trend = trial.suggest_categorical("trend", ["n", "c"])
    return make_spec(plan, transform, p, q, P, Q, trend)


def _stepwise(plan: TuningPlan, transform: str, results: Mapping[SarimaSpec, float],
              cap: int | None) -> SarimaSpec | None:
    """The next candidate of ``transform``'s stepwise search given the AICc of those fitted so far (``inf``: failed),
    or None when that search is over (no move improves, or ``cap`` candidates of this transform are fitted)."""
    d, D = plan.orders_for(transform)
    trend = "c" if d + D <= 1 else "n"
    done = sum(1 for spec in results if spec.transform == transform)
    best: SarimaSpec | None = None

    def needed(spec):
        return spec not in results and (cap is None or done < cap)

    for p, q, P, Q in STARTS:
        spec = make_spec(plan, transform, p, q, P, Q, trend)
        if needed(spec):
            return spec
        if spec in results and math.isfinite(results[spec]) and (best is None or results[spec] < results[best]):
            best = spec
    while best is not None:
        p, _, q = best.order
        P, _, Q, _ = best.seasonal_order
        moves = [(p + a, q + b, P + c, Q + e, best.trend) for a, b, c, e in MOVES]
        if d + D <= 1:
            moves.append((p, q, P, Q, "n" if best.trend == "c" else "c"))
        seasonal = plan.seasonal_terms(transform)
        improved = False
        for p2, q2, P2, Q2, trend2 in moves:
            if not (0 <= p2 <= MAX_PQ and 0 <= q2 <= MAX_PQ):
                continue
            if not (0 <= P2 <= MAX_SEASONAL_PQ * seasonal and 0 <= Q2 <= MAX_SEASONAL_PQ * seasonal):
                continue
            spec = make_spec(plan, transform, p2, q2, P2, Q2, trend2)
            if needed(spec):
                return spec
            if spec in results and results[spec] < results[best] - 1e-6:
                best, improved = spec, True
                break
        if not improved:
            return None
    return None


def stepwise_next(plan: TuningPlan, results: Mapping[SarimaSpec, float], budget: int | None = None) -> SarimaSpec | None:
    """The next candidate of the whole search: the transforms' stepwise searches one after the other, each with
    an even share of ``budget`` candidates; None when every one is over. A pure function of the results so far,
    so a resumed study continues where it stopped."""
    cap = None if budget is None else max(len(STARTS), math.ceil(budget / len(plan.transforms)))
    for transform in plan.transforms:
        spec = _stepwise(plan, transform, results, cap)
        if spec is not None:
            return spec
    return None


def make_objective(y_train: np.ndarray, plan: TuningPlan, budget: int | None = None):
    """The Optuna objective of the stepwise search on ``y_train`` (a private copy): it fits the trial's candidate
    on the whole training range and returns its AICc, then enqueues the search's next candidate or stops the
    study. Its ``fits`` attribute maps every candidate fitted to its :class:`SarimaFit` (or :class:`FitError`)."""
    y = np.array(y_train, dtype=float, copy=True)
    fits: dict[SarimaSpec, SarimaFit | FitError] = {}

    def results() -> dict[SarimaSpec, float]:
        return {s: (f.aicc if isinstance(f, SarimaFit) else math.inf) for s, f in fits.items()}

    def objective(trial: optuna.Trial) -> float:
        spec = suggest_spec(trial, plan)
        trial.set_user_attr("spec", spec.label())
        trial.set_user_attr("d", spec.order[1])
        trial.set_user_attr("D", spec.seasonal_order[1])
        try:
            if spec not in fits:
                try:
                    fits[spec] = fit_sarima(y, spec)
                except FitError as exc:
                    fits[spec] = exc
            fit = fits[spec]
            if isinstance(fit, FitError):
                raise FitError(str(fit))
            trial.set_user_attr("n_warnings", fit.n_warnings)
            trial.set_user_attr("converged", fit.converged)
            trial.set_user_attr("fit_seconds", round(fit.seconds, 4))
            trial.set_user_attr("n_eff", fit.n_eff)
            return fit.aicc
        finally:
            following = stepwise_next(plan, results(), budget)
            if following is None:
                trial.study.stop()
            else:
                trial.study.enqueue_trial(params_of(following, plan))

    objective.fits = fits
    return objective


def plain_search(objective, plan: TuningPlan, *, enqueue, timeout: float | None, budget: int | None) -> StudyResult:
    """The search in an in-memory Optuna study without tracking (the benchmarks time exactly this part)."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a candidate that cannot be fitted is an outcome here
    study = optuna.create_study(direction="minimize")
    for params in enqueue:
        study.enqueue_trial(params)
    study.optimize(objective, n_trials=budget, timeout=timeout, catch=(Exception,))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise StudyFailedError(f"none of {len(study.trials)} candidates could be fitted")
    return StudyResult(study, [study.best_trial], len(complete), 0, len(study.trials) - len(complete))


Search = Callable[..., StudyResult]
"""``search(objective, plan, enqueue=..., timeout=..., budget=...)``: runs the study of one series (the caller decides
where its trials are tracked: :func:`pipelines.sarima.steps.series_search`, or :func:`plain_search`)."""


# ------------------------------------------------------------------------------------------ the choice


def combine(plan: TuningPlan, fits: Mapping[SarimaSpec, SarimaFit | FitError], y_train: np.ndarray) -> list[Member]:
    """The members the series serves (see the module docstring): the Akaike-weighted best candidates of the
    winner's group, and on a short series the seasonal naive forecast with ``HEDGE_WEIGHT``."""
    good = sorted((f for f in fits.values() if isinstance(f, SarimaFit) and math.isfinite(f.aicc)),
                  key=lambda f: f.aicc)
    best = good[0]
    group = [f for f in good if f.spec.transform == best.spec.transform][:AVERAGE_TOP]  # same transform: same d, D
    weights = np.exp(-(np.array([f.aicc for f in group]) - best.aicc) / 2)
    chosen = [(f, w) for f, w in zip(group, weights) if w >= MIN_WEIGHT]
    total = sum(w for _, w in chosen)
    share = 1 - HEDGE_WEIGHT if plan.short(best.spec.seasonal_order[1]) else 1.0
    members = [Member.of_fit(f, share * w / total) for f, w in chosen]
    if share < 1:
        members.append(Member.of_naive(SeasonalNaive(plan.season).fit(y_train), HEDGE_WEIGHT))
    return members


@dataclass
class SeriesChoice:
    """What one series serves and why."""

    kind: str  # "sarima" or "seasonal_naive"
    plan: TuningPlan
    members: list[Member] = field(default_factory=list)
    best: SarimaFit | None = None  # the AICc-best candidate
    fits: dict = field(default_factory=dict)
    reason: str = ""
    study: StudyResult | None = None

    @property
    def n_candidates(self) -> int:
        return len(self.fits)

    @property
    def hedged(self) -> bool:
        return any(m.kind == SEASONAL_NAIVE for m in self.members) and self.kind != NAIVE


def choose_model(y_train: np.ndarray, season: int, search: Search, *, timeout: float | None,
                 budget: int | None = None, name: str = "series") -> SeriesChoice:
    """Search ``y_train`` with ``search`` and combine the result (see the module docstring). No MLflow here."""
    y = np.asarray(y_train, dtype=float)
    plan = plan_series(y, season)
    if plan.mode == NAIVE:
        return SeriesChoice("seasonal_naive", plan, [Member.of_naive(SeasonalNaive(season).fit(y))],
                            reason=plan.reason)
    started = time.monotonic()
    logger.info("series %s: %s", name, plan.describe())
    objective = make_objective(y, plan, budget)
    first = stepwise_next(plan, {}, budget)
    try:
        study = search(objective, plan, enqueue=[params_of(first, plan)], timeout=timeout, budget=budget)
    except StudyFailedError as exc:
        reason = "; ".join(r for r in (plan.reason, f"no candidate model could be fitted ({exc})") if r)
        return SeriesChoice("seasonal_naive", plan, [Member.of_naive(SeasonalNaive(season).fit(y))],
                            fits=dict(objective.fits), reason=reason)
    members = combine(plan, objective.fits, y)
    best = min((f for f in objective.fits.values() if isinstance(f, SarimaFit)), key=lambda f: f.aicc)
    logger.info("series %s: %d candidates in %.1f s, AICc-best %s", name, len(objective.fits),
                time.monotonic() - started, best.spec.label())
    return SeriesChoice("sarima", plan, members, best, dict(objective.fits), plan.reason, study)
