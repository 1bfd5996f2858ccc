"""SARIMA for one series: specs, fitting with counted warnings, forecasts with intervals, compact export.

* :class:`SarimaSpec` is a model choice: ``order`` (p, d, q), ``seasonal_order`` (P, D, Q, s), ``trend``
  (``n``, ``c``, ``t``, ``ct``; applied to the differenced series as in statsmodels' SARIMAX) and a value
  ``transform`` (``none`` or ``log``).
* :func:`fit_sarima` estimates the parameters by maximum likelihood on the differenced series (statsmodels
  ``simple_differencing=True``: the same parameters as the full model, a smaller state and about three times
  faster) with the variance concentrated out of the likelihood (``concentrate_scale=True``: one parameter less
  to search, about twice as fast again; the variance estimate is appended to the parameters, so they serve the
  full model). Missing values (NaN) stay missing: the Kalman filter skips them. The fit also records what the
  AICc needs (:attr:`SarimaFit.n_eff` observations in the likelihood, and the log Jacobian of a log transform so
  that log and raw models compare). statsmodels warnings (too few observations for starting parameters,
  non-invertible or non-stationary starting parameters, convergence) are caught and counted in
  :attr:`SarimaFit.warnings`, never printed; a fit that fails raises :class:`FitError`.
* :func:`forecast_sarima` rebuilds the full state-space model (differencing in the state) with *fixed*
  parameters, runs the Kalman filter over the observations and forecasts with the exact Gaussian
  intervals; for ``log`` the mean and the bounds are transformed back with ``exp``, so the point forecast
  is the median of the log-normal predictive distribution and the interval is exact.
* :class:`SeasonalNaive` is the last rung of the fallback chain and the baseline: the value one season ago
  (the latest observed value of that season position when it is missing), with the interval
  ``sigma * sqrt(k + 1)`` after ``k`` whole seasons (``sigma`` the RMS of the observed in-sample seasonal
  differences).
* :class:`SeriesModel` is what a served model keeps per series, as plain JSON: its *members* (one SARIMA, the
  Akaike-weighted SARIMA models of an average, or a SARIMA and the seasonal naive forecast in equal parts) with
  their weights, specs and fitted parameters, and just enough recent observations to reproduce the full-data
  forecast (checked when it is built, see :func:`export_model`), never a pickled results object. Several members
  forecast the weighted mean of their point forecasts and the central interval of the mixture of their predictive
  distributions (:func:`mixture_interval`).

This module never imports ``pipelines`` or ``evaluation``: it travels with the served model.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from models.sarima.frequency import FREQUENCIES, next_periods

TRENDS = ("n", "c", "t", "ct")
TRANSFORMS = ("none", "log")
SARIMA = "sarima"
SEASONAL_NAIVE = "seasonal_naive"
KINDS = (SARIMA, SEASONAL_NAIVE)
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


def _sarimax(y: np.ndarray, spec: SarimaSpec, *, simple_differencing: bool, trend_offset: int,
             concentrate_scale: bool = False):
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    return SARIMAX(y, order=spec.order, seasonal_order=spec.seasonal_order, trend=spec.trend,
                   simple_differencing=simple_differencing, trend_offset=trend_offset,
                   concentrate_scale=concentrate_scale)


@dataclass
class SarimaFit:
    spec: SarimaSpec
    params: np.ndarray  # the full model's parameters, the variance last
    param_names: list[str]
    n_obs: int  # observed (non-missing) values of the series
    loglike: float  # of the transformed values
    aic: float
    converged: bool
    warnings: Counter = field(default_factory=Counter)
    n_eff: int = 0  # observations in the likelihood: observed values of the differenced series
    log_jacobian: float = 0.0  # sum of log(y) over those observations (log transform), else 0
    seconds: float = 0.0

    @property
    def n_warnings(self) -> int:
        return int(sum(self.warnings.values()))

    @property
    def aicc(self) -> float:
        """The corrected AIC of the *original* values: ``-2 (loglike - log_jacobian) + 2k + 2k(k+1)/(n-k-1)`` with
        ``k`` the estimated parameters (variance included) and ``n`` = :attr:`n_eff`; ``inf`` when ``n <= k + 1``.
        The Jacobian makes a log model and a raw model of the same differencing comparable (Hyndman &
        Athanasopoulos, FPP 3, 5.6)."""
        k, n = self.spec.n_params, self.n_eff
        if n - k - 1 <= 0:
            return float("inf")
        return -2 * (self.loglike - self.log_jacobian) + 2 * k + 2 * k * (k + 1) / (n - k - 1)


def observed_count(y: Sequence[float]) -> int:
    return int(np.isfinite(np.asarray(y, dtype=float)).sum())


def fit_sarima(y: Sequence[float], spec: SarimaSpec, *, start_params: np.ndarray | None = None,
               maxiter: int = 50) -> SarimaFit:
    """Estimate ``spec`` on the series ``y`` (oldest first, NaN = missing); raises :class:`FitError` when it cannot."""
    import time

    started = time.perf_counter()
    values = transform_values(np.asarray(y, dtype=float), spec.transform)
    if np.isinf(values).any():
        raise FitError("the series has infinite values")
    needed = spec.min_observations()
    observed = observed_count(values)
    if observed < needed:
        raise FitError(f"{spec.label()} needs at least {needed} observations, the series has {observed}")
    counts: Counter = Counter()
    try:
        with _CountedWarnings(counts):
            # The trend offset keeps the time index of the differenced observations aligned with the full model.
            # Concentrating the variance out needs another parameter to search (a pure random walk has none).
            concentrate = spec.n_params > 1
            model = _sarimax(values, spec, simple_differencing=True, trend_offset=1 + spec.n_diff,
                             concentrate_scale=concentrate)
            result = model.fit(start_params=start_params, disp=False, maxiter=maxiter)
    except (ValueError, np.linalg.LinAlgError, IndexError, OverflowError, ZeroDivisionError) as exc:
        raise FitError(f"{spec.label()} failed to fit: {type(exc).__name__}: {exc}") from exc
    params = np.asarray(result.params, dtype=float)
    names = list(model.param_names)
    if concentrate:
        params, names = np.append(params, float(result.scale)), [*names, "sigma2"]
    if not np.isfinite(params).all() or not math.isfinite(float(result.llf)) or params[-1] <= 0:
        raise FitError(f"{spec.label()} gave non-finite parameters or likelihood")
    used = np.isfinite(np.asarray(model.endog, dtype=float).ravel())  # the differenced observations in the likelihood
    jacobian = float(np.sum(values[spec.n_diff:][used])) if spec.transform == "log" else 0.0
    converged = bool(result.mle_retvals.get("converged", True)) if result.mle_retvals else True
    return SarimaFit(spec, params, names, observed, float(result.llf), float(result.aic),
                     converged, counts, int(used.sum()), jacobian, time.perf_counter() - started)


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
    """The value one season ago (one period ago when the series is not longer than a season).

    A missing value one season ago is replaced by the latest observed value of the same season position (two,
    three ... seasons ago), else by the last observed value; ``sigma`` is the RMS of the observed seasonal
    differences (pairs with a missing value are left out)."""

    season: int

    def fit(self, y: Sequence[float]) -> "SeasonalNaive":
        y = np.asarray(y, dtype=float)
        finite = np.isfinite(y)
        if not finite.any():
            raise FitError("the seasonal naive forecast needs at least one observed value")
        self.lag_ = self.season if y.size > self.season else 1
        last = np.full(self.lag_, np.nan)
        for j in range(self.lag_):
            positions = np.arange(y.size - self.lag_ + j, -1, -self.lag_)
            seen = positions[finite[positions]]
            if seen.size:
                last[j] = y[seen[0]]
        last[~np.isfinite(last)] = y[finite][-1]
        diffs = y[self.lag_:] - y[: -self.lag_] if y.size > self.lag_ else np.zeros(0)
        diffs = diffs[np.isfinite(diffs)]
        self.sigma_ = float(np.sqrt(np.mean(diffs**2))) if diffs.size else 0.0
        self.last_ = last
        return self

    def moments(self, steps: int) -> tuple[np.ndarray, np.ndarray]:
        h = np.arange(steps)
        return self.last_[h % self.lag_].astype(float), self.sigma_ * np.sqrt(h // self.lag_ + 1)

    def forecast(self, steps: int, confidence: float = 0.95) -> Forecast:
        mean, se = self.moments(steps)
        return _gaussian_forecast(mean, se, "none", confidence)


# --------------------------------------------------------------------------------------------- mixtures

MAX_CACHED_BANDS = 16  # confidences whose served forecasts a series model keeps
BISECTION_STEPS = 80  # halvings of the bracket of a mixture quantile (2^-80: far below float precision)


def _normal_cdf(x: np.ndarray, mean: np.ndarray, se: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(se > 0, ndtr((x - mean) / np.where(se > 0, se, 1.0)), (x >= mean).astype(float))


def mixture_interval(moments: Sequence[tuple[np.ndarray, np.ndarray, str]], weights: Sequence[float],
                     confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """The central ``confidence`` interval of the mixture ``sum_i w_i F_i`` of the members' predictive
    distributions, each normal in its transformed space (``(mean, se, transform)``, so log-normal on the original
    scale for ``log``), step by step: its two quantiles, found by bisection between the members' own quantiles
    (both ends and every member at once, as arrays: a served request runs this)."""
    w = (np.asarray(weights, dtype=float) / float(np.sum(weights)))[None, :, None]  # (1, members, 1)
    z = z_value(confidence)
    mean = np.array([m for m, _, _ in moments], dtype=float)[None]  # (1, members, steps)
    se = np.array([s for _, s, _ in moments], dtype=float)[None]
    log = np.array([t == "log" for _, _, t in moments])[None, :, None]
    sign = np.array([-1.0, 1.0])[:, None]  # (ends, 1): the lower and the upper quantile
    target = 0.5 + sign * confidence / 2
    own = np.stack([np.array([inverse_transform(m + g * z * s, t) for m, s, t in moments]) for g in (-1.0, 1.0)])
    lo, hi = own.min(axis=1), own.max(axis=1)  # (ends, steps)
    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            logged = np.where(mid > 0, np.log(np.where(mid > 0, mid, 1.0)), -np.inf)
        x = np.where(log, logged[:, None, :], mid[:, None, :])
        cdf = np.sum(w * _normal_cdf(x, mean, se), axis=1)
        below = cdf < target
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    bounds = (lo + hi) / 2
    return bounds[0], bounds[1]


def mixture_forecast(moments: Sequence[tuple[np.ndarray, np.ndarray, str]], weights: Sequence[float],
                     confidence: float) -> Forecast:
    """One member: its Gaussian forecast, back-transformed (the median and the exact interval for ``log``).
    Several: the weighted mean of the members' point forecasts and the central interval of their mixture."""
    if len(moments) == 1:
        mean, se, transform = moments[0]
        return _gaussian_forecast(mean, se, transform, confidence)
    w = np.asarray(weights, dtype=float) / float(np.sum(weights))
    point = np.sum([wi * inverse_transform(m, t) for wi, (m, _, t) in zip(w, moments)], axis=0)
    lower, upper = mixture_interval(moments, w, confidence)
    return Forecast(point, lower, upper)


# --------------------------------------------------------------------------------------------- served state


def _floats(values) -> list:
    """JSON-able floats, ``None`` for a missing value."""
    return [float(v) if math.isfinite(float(v)) else None for v in values]


def _array(values) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


@dataclass
class Member:
    """One part of a served forecast: a SARIMA (spec and fitted parameters) or the seasonal naive forecast
    (``lag``, ``sigma`` and the ``last`` values it repeats), with its weight."""

    kind: str
    weight: float = 1.0
    spec: SarimaSpec | None = None
    params: list[float] = field(default_factory=list)
    param_names: list[str] = field(default_factory=list)
    lag: int = 1
    sigma: float = 0.0
    last: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown member kind {self.kind!r}")

    @classmethod
    def of_fit(cls, fit: SarimaFit, weight: float = 1.0) -> "Member":
        return cls(SARIMA, float(weight), fit.spec, [float(v) for v in fit.params], list(fit.param_names))

    @classmethod
    def of_naive(cls, naive: SeasonalNaive, weight: float = 1.0) -> "Member":
        return cls(SEASONAL_NAIVE, float(weight), lag=int(naive.lag_), sigma=float(naive.sigma_),
                   last=[float(v) for v in naive.last_])

    def naive(self, history: np.ndarray | None = None) -> SeasonalNaive:
        """The seasonal naive forecast of this member: its stored last values, or those of ``history``."""
        model = SeasonalNaive(self.lag)
        if history is None:
            model.lag_, model.last_ = self.lag, np.asarray(self.last, dtype=float)
        else:
            model.fit(history)
            if model.lag_ != self.lag:
                raise FitError(f"the history has {np.asarray(history).size} values, the seasonal naive member "
                               f"needs more than {self.lag}")
        model.sigma_ = self.sigma
        return model

    def moments(self, y: np.ndarray | None, steps: int, trend_offset: int = 1,
                counts: Counter | None = None) -> tuple[np.ndarray, np.ndarray, str]:
        """``(mean, se, transform)`` of the next ``steps`` periods after ``y`` (the seasonal naive: after its stored
        values when ``y`` is None)."""
        if self.kind == SEASONAL_NAIVE:
            return (*self.naive(y).moments(steps), "none")
        counts = Counter() if counts is None else counts
        results = _filtered(np.asarray(y, dtype=float), self.spec, self.params, trend_offset, counts)
        return (*_forecast_moments(results, steps, counts), self.spec.transform)

    def label(self) -> str:
        return self.spec.label() if self.kind == SARIMA else f"seasonal naive (lag {self.lag})"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "weight": self.weight}
        if self.kind == SARIMA:
            data.update(spec=self.spec.to_dict(), params=[float(v) for v in self.params],
                        param_names=list(self.param_names))
        else:
            data.update(lag=self.lag, sigma=self.sigma, last=_floats(self.last))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Member":
        spec = SarimaSpec.from_dict(data["spec"]) if data.get("spec") else None
        return cls(data["kind"], float(data.get("weight", 1.0)), spec, list(map(float, data.get("params", []))),
                   list(data.get("param_names", [])), int(data.get("lag", 1)), float(data.get("sigma", 0.0)),
                   list(_array(data.get("last", []))))


def describe_members(members: Sequence[Member]) -> str:
    """One line: the SARIMA (the heaviest of an Akaike average, and how many more), and the seasonal naive share."""
    sarima = sorted((m for m in members if m.kind == SARIMA), key=lambda m: -m.weight)
    naive = [m for m in members if m.kind == SEASONAL_NAIVE]
    if not sarima:
        return naive[0].label()
    total = sum(m.weight for m in sarima)
    text = sarima[0].label()
    if len(sarima) > 1:
        text += f" + {len(sarima) - 1} more, Akaike-weighted"
    if naive:
        share = sum(m.weight for m in naive) / (total + sum(m.weight for m in naive))
        text += f"; {share:.0%} seasonal naive"
    return text


@dataclass
class SeriesModel:
    """A series' served model: JSON-able, rebuilt with fixed parameters; forecasts start after ``last_period``.

    ``observations`` are the most recent values on the original scale (NaN for a missing one); the first of them is
    observation number ``trend_offset`` (1-based) of the full series, so a time trend continues where it left off.
    ``kind`` is ``sarima`` when a SARIMA takes part, else ``seasonal_naive``.
    """

    name: str
    freq: str
    season: int
    last_period: str
    observations: list[float]
    members: list[Member]
    trend_offset: int = 1
    n_obs: int = 0
    reason: str = ""

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("a series model needs at least one member")
        self._mean = None  # precomputed forecast moments per member, see prepare()
        self._bands: dict[float, Forecast] = {}  # forecasts of all prepared steps per confidence, see forecast()
        self._periods: list[str] = []

    @property
    def kind(self) -> str:
        return SARIMA if any(m.kind == SARIMA for m in self.members) else SEASONAL_NAIVE

    @property
    def top(self) -> Member:
        """The heaviest member (the SARIMA one when there is one)."""
        return max(self.members, key=lambda m: (m.kind == SARIMA, m.weight))

    @property
    def spec(self) -> SarimaSpec | None:
        return self.top.spec

    @property
    def weights(self) -> list[float]:
        return [m.weight for m in self.members]

    # -- serialisation
    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "freq": self.freq, "season": self.season,
                "last_period": self.last_period, "observations": _floats(self.observations),
                "trend_offset": self.trend_offset, "n_obs": self.n_obs, "reason": self.reason,
                "members": [m.to_dict() for m in self.members]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SeriesModel":
        return cls(name=data["name"], freq=data["freq"], season=int(data["season"]), last_period=data["last_period"],
                   observations=list(_array(data["observations"])),
                   members=[Member.from_dict(m) for m in data["members"]],
                   trend_offset=int(data.get("trend_offset", 1)), n_obs=int(data.get("n_obs", 0)),
                   reason=data.get("reason", ""))

    # -- forecasting
    def _moments(self, steps: int) -> list[tuple[np.ndarray, np.ndarray, str]]:
        y = np.asarray(self.observations, dtype=float)
        return [m.moments(None if m.kind == SEASONAL_NAIVE else y, steps, self.trend_offset) for m in self.members]

    def prepare(self, steps: int = PRECOMPUTED_STEPS) -> "SeriesModel":
        """Precompute what forecasts of up to ``steps`` periods need, once: each member's Kalman filter over the
        stored observations and its forecast mean and standard error of the next ``steps`` periods in its
        transformed space, and the period labels. A forecast then only slices these and applies the normal
        quantile of its confidence, the back-transform and (several members) the mixture."""
        if len(self._periods) < steps:
            self._periods = next_periods(self.last_period, self.freq, steps)
        if self._mean is None or self._mean[0][0].size < steps:
            self._mean = self._moments(steps)
            self._bands = {}
        return self

    def forecast(self, steps: int, confidence: float = 0.95) -> Forecast:
        """The next ``steps`` periods (copies). Each step's interval depends only on its own members' moments, so
        the forecast of every prepared step is computed once per confidence (the last ``MAX_CACHED_BANDS``
        confidences are kept) and a request slices it: a mixture's quantiles cost a bisection."""
        self.prepare(max(steps, PRECOMPUTED_STEPS))
        band = self._bands.get(confidence)
        if band is None:
            band = mixture_forecast(self._mean, self.weights, confidence)
            if len(self._bands) >= MAX_CACHED_BANDS:
                self._bands.pop(next(iter(self._bands)))
            self._bands[confidence] = band
        return Forecast(band.mean[:steps].copy(), band.lower[:steps].copy(), band.upper[:steps].copy())

    def forecast_from_history(self, history: Sequence[float], steps: int, confidence: float = 0.95) -> Forecast:
        """Forecast ``steps`` periods after another ``history`` of this series (from its first period) with
        this model's members and fixed parameters (no refit), e.g. to re-score it on another test window."""
        history = np.asarray(history, dtype=float)
        moments = [m.moments(history, steps) for m in self.members]
        return mixture_forecast(moments, self.weights, confidence)

    def periods(self, steps: int) -> list[str]:
        if len(self._periods) < steps:
            self._periods = next_periods(self.last_period, self.freq, max(steps, PRECOMPUTED_STEPS))
        return self._periods[:steps]

    def describe(self) -> str:
        return describe_members(self.members)


def export_model(name: str, y: Sequence[float], members: Sequence[Member], *, freq: str, last_period: str,
                 season: int | None = None, reason: str = "", horizon: int = PRECOMPUTED_STEPS,
                 tolerance: float = EXPORT_TOLERANCE) -> SeriesModel:
    """The compact served form of ``members`` fitted on the whole series ``y``.

    Keeps the fewest recent observations (trying 2, 3, 4, 6, 8, ... times the longest ``min_observations`` of
    the SARIMA members, at most the whole series) whose filtered states reproduce every member's full-series
    forecast moments over ``horizon`` steps to a relative ``tolerance``; the stored model therefore serves the
    same forecasts as the full-data models.
    """
    y = np.asarray(y, dtype=float)
    # a seasonal naive member repeats the last season of the whole series (its sigma stays the training one's)
    members = [replace(m, last=[float(v) for v in m.naive(y).last_]) if m.kind == SEASONAL_NAIVE else m
               for m in members]
    season = season or FREQUENCIES[freq].season
    sarima = [m for m in members if m.kind == SARIMA]
    window = y.size
    if sarima:
        references = [m.moments(y, horizon) for m in sarima]
        base = max(max(m.spec.min_observations(), 2 * max(m.spec.seasonal_order[3], 1) + m.spec.n_diff, 12)
                   for m in sarima)
        for window in sorted({min(y.size, int(base * f)) for f in (2, 3, 4, 6, 8, 12, 16, 24, 32)} | {y.size}):
            offset = 1 + y.size - window
            if all(np.allclose(a, b, rtol=tolerance, atol=tolerance * max(1.0, float(np.abs(b).max())))
                   for m, ref in zip(sarima, references)
                   for a, b in zip(m.moments(y[-window:], horizon, offset)[:2], ref[:2])):
                break
    else:
        window = min(y.size, season)
    return SeriesModel(name=name, freq=freq, season=season, last_period=last_period,
                       observations=y[-window:].tolist(), members=members, trend_offset=1 + y.size - window,
                       n_obs=int(y.size), reason=reason)


def export_sarima(name: str, y: Sequence[float], spec: SarimaSpec, fit: SarimaFit, *, freq: str, last_period: str,
                  reason: str = "", season: int | None = None) -> SeriesModel:
    """One SARIMA fitted on the whole series ``y`` (see :func:`export_model`)."""
    if fit.spec != spec:
        raise ValueError(f"the fit is of {fit.spec.label()}, not {spec.label()}")
    return export_model(name, y, [Member.of_fit(fit)], freq=freq, last_period=last_period, season=season,
                        reason=reason)


def export_seasonal_naive(name: str, y: Sequence[float], *, freq: str, season: int, last_period: str,
                          reason: str) -> SeriesModel:
    return export_model(name, y, [Member.of_naive(SeasonalNaive(season).fit(y))], freq=freq, season=season,
                        last_period=last_period, reason=reason)
