"""SARIMA for one series: specs, fitting with counted warnings, forecasts with intervals, compact export.

* :class:`SarimaSpec` is a model choice: ``order`` (p, d, q), ``seasonal_order`` (P, D, Q, s), ``trend``
  (``n``, ``c``, ``t``, ``ct``; applied to the differenced series as in statsmodels' SARIMAX) and a value
  ``transform`` (``none`` or ``log``).
* :func:`fit_sarima` estimates the parameters by maximum likelihood on the differenced series (statsmodels
  ``simple_differencing=True``: the same parameters as the full model, a smaller state and about three times
  faster). statsmodels warnings (too few observations for starting parameters, non-invertible or
  non-stationary starting parameters, convergence) are caught and counted in :attr:`SarimaFit.warnings`,
  never printed; a fit that fails raises :class:`FitError`.
* :func:`forecast_sarima` rebuilds the full state-space model (differencing in the state) with *fixed*
  parameters, runs the Kalman filter over the observations and forecasts with the exact Gaussian
  intervals; for ``log`` the mean and the bounds are transformed back with ``exp``, so the point forecast
  is the median of the log-normal predictive distribution and the interval is exact.
* :class:`SeasonalNaive` is the last rung of the fallback chain and the baseline: the value one season ago,
  with the interval ``sigma * sqrt(k + 1)`` after ``k`` whole seasons (``sigma`` the RMS of the in-sample
  seasonal differences).
* :class:`SeriesModel` is what a served model keeps per series, as plain JSON: the spec, the fitted
  parameters and just enough recent observations to reproduce the full-data forecast (checked when it is
  built, see :func:`export_sarima`), never a pickled results object.

This module never imports ``pipelines`` or ``evaluation``: it travels with the served model.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

SEASONAL_PERIODS = {"M": 12, "W": 52, "D": 7}
TRENDS = ("n", "c", "t", "ct")
TRANSFORMS = ("none", "log")
SARIMA = "sarima"
SEASONAL_NAIVE = "seasonal_naive"
EXPORT_TOLERANCE = 1e-10
PRECOMPUTED_STEPS = 36  # forecast steps a prepared SeriesModel keeps (the served maximum horizon)


class FitError(ValueError):
    """A model could not be fitted or used on a series; the message says why."""


# --------------------------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class SarimaSpec:
    order: tuple[int, int, int] = (0, 1, 1)
    seasonal_order: tuple[int, int, int, int] = (0, 0, 0, 0)
    trend: str = "n"
    transform: str = "none"

    def __post_init__(self) -> None:
        order, seasonal = tuple(int(v) for v in self.order), tuple(int(v) for v in self.seasonal_order)
        if len(order) != 3 or min(order) < 0:
            raise ValueError(f"order must be three non-negative integers (p, d, q), got {self.order!r}")
        if len(seasonal) != 4 or min(seasonal) < 0:
            raise ValueError(f"seasonal_order must be four non-negative integers (P, D, Q, s), got {self.seasonal_order!r}")
        if any(seasonal[:3]) and seasonal[3] < 2:
            raise ValueError(f"seasonal_order {seasonal} needs a seasonal period s >= 2")
        if self.trend not in TRENDS:
            raise ValueError(f"trend must be one of {', '.join(TRENDS)}, got {self.trend!r}")
        if self.transform not in TRANSFORMS:
            raise ValueError(f"transform must be one of {', '.join(TRANSFORMS)}, got {self.transform!r}")
        object.__setattr__(self, "order", order)
        object.__setattr__(self, "seasonal_order", seasonal if any(seasonal[:3]) else (0, 0, 0, 0))

    @property
    def n_diff(self) -> int:
        """Observations lost to differencing: ``d + D * s``."""
        return self.order[1] + self.seasonal_order[1] * self.seasonal_order[3]

    @property
    def n_params(self) -> int:
        """Estimated parameters: trend terms, AR, MA, seasonal AR, seasonal MA and the variance."""
        p, _, q = self.order
        P, _, Q, _ = self.seasonal_order
        return len(self.trend.replace("n", "")) + p + q + P + Q + 1

    def min_observations(self) -> int:
        """Fewest observations this spec is fitted on: after differencing, more than the longest ARMA lag
        (so the seasonal terms are identified) and at least three more than the parameters."""
        p, _, q = self.order
        P, _, Q, s = self.seasonal_order
        longest_lag = max(p + P * s, q + Q * s)
        return self.n_diff + max(longest_lag + 2, self.n_params + 3)

    def label(self) -> str:
        p, d, q = self.order
        text = f"ARIMA({p},{d},{q})"
        if any(self.seasonal_order[:3]):
            text = "S" + text + "({},{},{},{})".format(*self.seasonal_order)
        return f"{text} trend={self.trend} transform={self.transform}"

    def to_dict(self) -> dict[str, Any]:
        return {"order": list(self.order), "seasonal_order": list(self.seasonal_order), "trend": self.trend,
                "transform": self.transform}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SarimaSpec":
        return cls(tuple(data["order"]), tuple(data["seasonal_order"]), data["trend"], data["transform"])


def transform_values(y: np.ndarray, transform: str) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    if transform == "log":
        if (y <= 0).any():
            raise FitError(f"the log transform needs positive values; the series has {int((y <= 0).sum())} "
                           "zero or negative value(s)")
        return np.log(y)
    return y


def inverse_transform(values: np.ndarray, transform: str) -> np.ndarray:
    """Back to the original scale; always a new array (never a view of ``values``)."""
    return np.exp(values) if transform == "log" else np.array(values, dtype=float)


def is_constant(y: Sequence[float]) -> bool:
    y = np.asarray(y, dtype=float)
    return y.size == 0 or bool(np.all(y == y[0]))


def z_value(confidence: float) -> float:
    """The standard normal quantile for a central interval of ``confidence`` (0.95 -> 1.96).

    ``scipy.special.ndtri`` is what ``scipy.stats.norm.ppf`` computes, without its argument handling
    (about a microsecond instead of a tenth of a millisecond: it is on the serving path)."""
    from scipy.special import ndtri

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    return float(ndtri(0.5 + confidence / 2))


@dataclass
class Forecast:
    """Point forecasts and interval bounds on the original scale, one value per step."""

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


# --------------------------------------------------------------------------------------------- fitting


class _CountedWarnings:
    """Catch every warning inside the block and count it by category (nothing is printed)."""

    def __init__(self, counts: Counter | None = None):
        self.counts = Counter() if counts is None else counts
        self._catcher = warnings.catch_warnings(record=True)

    def __enter__(self) -> Counter:
        self._records = self._catcher.__enter__()
        warnings.simplefilter("always")
        return self.counts

    def __exit__(self, *exc) -> None:
        for record in self._records:
            self.counts[record.category.__name__] += 1
        self._catcher.__exit__(*exc)


def _sarimax(y: np.ndarray, spec: SarimaSpec, *, simple_differencing: bool, trend_offset: int):
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    return SARIMAX(y, order=spec.order, seasonal_order=spec.seasonal_order, trend=spec.trend,
                   simple_differencing=simple_differencing, trend_offset=trend_offset)


@dataclass
class SarimaFit:
    spec: SarimaSpec
    params: np.ndarray
    param_names: list[str]
    n_obs: int
    loglike: float
    aic: float
    converged: bool
    warnings: Counter = field(default_factory=Counter)

    @property
    def n_warnings(self) -> int:
        return int(sum(self.warnings.values()))


def fit_sarima(y: Sequence[float], spec: SarimaSpec, *, start_params: np.ndarray | None = None,
               maxiter: int = 50) -> SarimaFit:
    """Estimate ``spec`` on the series ``y`` (oldest first); raises :class:`FitError` when it cannot."""
    values = transform_values(np.asarray(y, dtype=float), spec.transform)
    if not np.isfinite(values).all():
        raise FitError("the series has missing or infinite values")
    needed = spec.min_observations()
    if values.size < needed:
        raise FitError(f"{spec.label()} needs at least {needed} observations, the series has {values.size}")
    counts: Counter = Counter()
    try:
        with _CountedWarnings(counts):
            # The trend offset keeps the time index of the differenced observations aligned with the full model.
            model = _sarimax(values, spec, simple_differencing=True, trend_offset=1 + spec.n_diff)
            result = model.fit(start_params=start_params, disp=False, maxiter=maxiter)
    except (ValueError, np.linalg.LinAlgError, IndexError, OverflowError, ZeroDivisionError) as exc:
        raise FitError(f"{spec.label()} failed to fit: {type(exc).__name__}: {exc}") from exc
    params = np.asarray(result.params, dtype=float)
    if not np.isfinite(params).all() or not math.isfinite(float(result.llf)):
        raise FitError(f"{spec.label()} gave non-finite parameters or likelihood")
    converged = bool(result.mle_retvals.get("converged", True)) if result.mle_retvals else True
    return SarimaFit(spec, params, list(model.param_names), int(values.size), float(result.llf),
                     float(result.aic), converged, counts)


def _filtered(y: np.ndarray, spec: SarimaSpec, params: Sequence[float], trend_offset: int, counts: Counter):
    values = transform_values(np.asarray(y, dtype=float), spec.transform)
    try:
        with _CountedWarnings(counts):
            model = _sarimax(values, spec, simple_differencing=False, trend_offset=trend_offset)
            return model.filter(np.asarray(params, dtype=float))
    except (ValueError, np.linalg.LinAlgError, IndexError, OverflowError) as exc:
        raise FitError(f"{spec.label()} cannot be filtered: {type(exc).__name__}: {exc}") from exc


def _forecast_moments(results, steps: int, counts: Counter) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of the next ``steps`` periods in the transformed space."""
    with _CountedWarnings(counts):
        prediction = results.get_forecast(steps)
        mean = np.asarray(prediction.predicted_mean, dtype=float)
        se = np.asarray(prediction.se_mean, dtype=float)
    return mean, se


def _gaussian_forecast(mean: np.ndarray, se: np.ndarray, transform: str, confidence: float) -> Forecast:
    """The point forecast and the central ``confidence`` interval of N(mean, se^2), back-transformed."""
    z = z_value(confidence)
    return Forecast(inverse_transform(mean, transform), inverse_transform(mean - z * se, transform),
                    inverse_transform(mean + z * se, transform))


def _forecast_from_results(results, spec: SarimaSpec, steps: int, confidence: float, counts: Counter) -> Forecast:
    mean, se = _forecast_moments(results, steps, counts)
    return _gaussian_forecast(mean, se, spec.transform, confidence)


def forecast_sarima(y: Sequence[float], spec: SarimaSpec, params: Sequence[float], steps: int,
                    confidence: float = 0.95, trend_offset: int = 1) -> Forecast:
    """Forecast ``steps`` periods after ``y`` with fixed ``params`` (see the module docstring)."""
    counts: Counter = Counter()
    results = _filtered(np.asarray(y, dtype=float), spec, params, trend_offset, counts)
    return _forecast_from_results(results, spec, steps, confidence, counts)


def fitted_values(y: Sequence[float], spec: SarimaSpec, params: Sequence[float]) -> np.ndarray:
    """One-step-ahead in-sample predictions on the original scale (NaN for the first ``d + D*s`` periods)."""
    counts: Counter = Counter()
    results = _filtered(np.asarray(y, dtype=float), spec, params, 1, counts)
    values = inverse_transform(np.asarray(results.fittedvalues, dtype=float), spec.transform)
    values[: spec.n_diff] = np.nan
    return values


# --------------------------------------------------------------------------------------------- seasonal naive


@dataclass
class SeasonalNaive:
    """The value one season ago (one period ago when the series is not longer than a season)."""

    season: int

    def fit(self, y: Sequence[float]) -> "SeasonalNaive":
        y = np.asarray(y, dtype=float)
        if y.size == 0:
            raise FitError("the seasonal naive forecast needs at least one observation")
        self.lag_ = self.season if y.size > self.season else 1
        diffs = y[self.lag_:] - y[: -self.lag_] if y.size > self.lag_ else np.zeros(0)
        self.sigma_ = float(np.sqrt(np.mean(diffs**2))) if diffs.size else 0.0
        self.last_ = y[-self.lag_:].copy()
        return self

    def forecast(self, steps: int, confidence: float = 0.95) -> Forecast:
        h = np.arange(steps)
        mean = self.last_[h % self.lag_]
        se = self.sigma_ * np.sqrt(h // self.lag_ + 1)
        z = z_value(confidence)
        return Forecast(mean.astype(float), mean - z * se, mean + z * se)


# --------------------------------------------------------------------------------------------- served state


def next_periods(last_period: str, freq: str, steps: int) -> list[str]:
    """ISO start dates of the ``steps`` periods after the period starting at ``last_period``."""
    start = pd.Period(pd.Timestamp(last_period), freq=freq)
    return [(start + k).start_time.date().isoformat() for k in range(1, steps + 1)]


@dataclass
class SeriesModel:
    """A series' served model: JSON-able, rebuilt with fixed parameters; forecasts start after ``last_period``.

    ``observations`` are the most recent values on the original scale; the first of them is observation
    number ``trend_offset`` (1-based) of the full series, so a time trend continues where it left off.
    """

    name: str
    kind: str
    freq: str
    season: int
    last_period: str
    observations: list[float]
    spec: SarimaSpec | None = None
    params: list[float] = field(default_factory=list)
    param_names: list[str] = field(default_factory=list)
    trend_offset: int = 1
    n_obs: int = 0
    sigma: float = 0.0
    lag: int = 1
    reason: str = ""

    def __post_init__(self) -> None:
        if self.kind not in (SARIMA, SEASONAL_NAIVE):
            raise ValueError(f"unknown series model kind {self.kind!r}")
        self._results = None
        self._mean = self._se = None  # precomputed forecast moments (transformed space), see prepare()
        self._periods: list[str] = []

    # -- serialisation
    def to_dict(self) -> dict[str, Any]:
        data = {"name": self.name, "kind": self.kind, "freq": self.freq, "season": self.season,
                "last_period": self.last_period, "observations": [float(v) for v in self.observations],
                "trend_offset": self.trend_offset, "n_obs": self.n_obs, "reason": self.reason}
        if self.kind == SARIMA:
            data.update(spec=self.spec.to_dict(), params=[float(v) for v in self.params],
                        param_names=list(self.param_names))
        else:
            data.update(sigma=float(self.sigma), lag=int(self.lag))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SeriesModel":
        spec = SarimaSpec.from_dict(data["spec"]) if data.get("spec") else None
        return cls(name=data["name"], kind=data["kind"], freq=data["freq"], season=int(data["season"]),
                   last_period=data["last_period"], observations=list(map(float, data["observations"])),
                   spec=spec, params=list(map(float, data.get("params", []))),
                   param_names=list(data.get("param_names", [])), trend_offset=int(data.get("trend_offset", 1)),
                   n_obs=int(data.get("n_obs", 0)), sigma=float(data.get("sigma", 0.0)), lag=int(data.get("lag", 1)),
                   reason=data.get("reason", ""))

    # -- forecasting
    def prepare(self, steps: int = PRECOMPUTED_STEPS) -> "SeriesModel":
        """Precompute what forecasts of up to ``steps`` periods need, once: the Kalman filter over the stored
        observations, the forecast mean and standard error of the next ``steps`` periods in the transformed
        space, and the period labels. A forecast then only slices these and applies the normal quantile of
        its confidence and the back-transform (the step-``k`` moments do not depend on the horizon asked)."""
        if len(self._periods) < steps:
            self._periods = next_periods(self.last_period, self.freq, steps)
        if self.kind == SARIMA:
            if self._results is None:
                self._results = _filtered(np.asarray(self.observations), self.spec, self.params, self.trend_offset,
                                          Counter())
            if self._mean is None or self._mean.size < steps:
                self._mean, self._se = _forecast_moments(self._results, steps, Counter())
        return self

    def forecast(self, steps: int, confidence: float = 0.95) -> Forecast:
        if self.kind == SEASONAL_NAIVE:
            model = SeasonalNaive(self.season)
            model.lag_, model.sigma_, model.last_ = self.lag, self.sigma, np.asarray(self.observations, dtype=float)
            return model.forecast(steps, confidence)
        self.prepare(max(steps, PRECOMPUTED_STEPS))
        return _gaussian_forecast(self._mean[:steps], self._se[:steps], self.spec.transform, confidence)

    def forecast_from_history(self, history: Sequence[float], steps: int, confidence: float = 0.95) -> Forecast:
        """Forecast ``steps`` periods after another ``history`` of this series (from its first period) with
        this model's spec and fixed parameters (no refit), e.g. to re-score it on another test window."""
        history = np.asarray(history, dtype=float)
        if self.kind == SEASONAL_NAIVE:
            if history.size < self.lag:
                raise FitError(f"series {self.name!r}: the history has {history.size} values, the model needs {self.lag}")
            model = SeasonalNaive(self.season)
            model.lag_, model.sigma_, model.last_ = self.lag, self.sigma, history[-self.lag:]
            return model.forecast(steps, confidence)
        return forecast_sarima(history, self.spec, self.params, steps, confidence)

    def periods(self, steps: int) -> list[str]:
        if len(self._periods) < steps:
            self._periods = next_periods(self.last_period, self.freq, max(steps, PRECOMPUTED_STEPS))
        return self._periods[:steps]

    def describe(self) -> str:
        if self.kind == SARIMA:
            return self.spec.label()
        return f"seasonal naive (lag {self.lag})"


def export_sarima(name: str, y: Sequence[float], spec: SarimaSpec, fit: SarimaFit, *, freq: str, last_period: str,
                  reason: str = "", horizon: int = 36, tolerance: float = EXPORT_TOLERANCE) -> SeriesModel:
    """The compact served form of a SARIMA fitted on the whole series ``y``.

    Keeps the fewest recent observations (trying 2, 3, 4, 6, 8, ... times ``min_observations``, at most the
    whole series) whose filtered state reproduces the full-series forecast (mean and interval width over
    ``horizon`` steps) to a relative ``tolerance``; the stored model therefore serves the same forecasts as
    the full-data model.
    """
    y = np.asarray(y, dtype=float)
    reference = forecast_sarima(y, spec, fit.params, horizon)
    base = max(spec.min_observations(), 2 * max(spec.seasonal_order[3], 1) + spec.n_diff, 12)
    windows = sorted({min(y.size, int(base * f)) for f in (2, 3, 4, 6, 8, 12, 16, 24, 32)} | {y.size})
    for window in windows:
        offset = 1 + y.size - window
        candidate = forecast_sarima(y[-window:], spec, fit.params, horizon, trend_offset=offset)
        if all(np.allclose(a, b, rtol=tolerance, atol=tolerance * max(1.0, float(np.abs(b).max())))
               for a, b in ((candidate.mean, reference.mean), (candidate.lower, reference.lower),
                            (candidate.upper, reference.upper))):
            break
    return SeriesModel(name=name, kind=SARIMA, freq=freq, season=spec.seasonal_order[3] or SEASONAL_PERIODS[freq],
                       last_period=last_period, observations=y[-window:].tolist(), spec=spec,
                       params=fit.params.tolist(), param_names=fit.param_names, trend_offset=1 + y.size - window,
                       n_obs=int(y.size), reason=reason)


def export_seasonal_naive(name: str, y: Sequence[float], *, freq: str, season: int, last_period: str,
                          reason: str) -> SeriesModel:
    model = SeasonalNaive(season).fit(y)
    return SeriesModel(name=name, kind=SEASONAL_NAIVE, freq=freq, season=season, last_period=last_period,
                       observations=model.last_.tolist(), n_obs=len(y), sigma=model.sigma_, lag=model.lag_,
                       reason=reason)
