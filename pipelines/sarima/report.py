"""Test scores and figures of the SARIMA job.

* :func:`score_forecast` scores a forecast of the held-out periods: ``mape``, ``smape``, ``mase`` (scaled by
  the in-sample seasonal-naive error of the training periods), ``rmse`` and ``interval_coverage`` (share of
  actuals inside the interval). Missing test periods are skipped (:func:`evaluation.metrics.observed`), and
  missing training values are left out of the MASE scale. A metric that is undefined for the data (MAPE with a zero actual, MASE of a
  constant training series) is left out and named in the returned notes, never faked.
* :func:`series_figure` draws one series: the training actuals with the in-sample one-step fit, the test
  actuals, the forecast with its interval band and the seasonal-naive forecast; :func:`grid_figure` puts
  several series side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from evaluation import metrics as M
from models.sarima.model import Forecast

TEST_METRICS = ("mape", "smape", "mase", "rmse", "interval_coverage")


def score_forecast(y_train: np.ndarray, y_test: np.ndarray, forecast: Forecast,
                   season: int) -> tuple[dict[str, float], dict[str, str]]:
    """``(scores, undefined)``: the test metrics over the observed test periods, and for each one left out the
    reason."""
    try:
        y_test, mean, lower, upper = M.observed(y_test, forecast.mean, forecast.lower, forecast.upper)
    except M.MetricInputError as exc:
        return {}, {name: str(exc) for name in TEST_METRICS}
    forecast = Forecast(mean, lower, upper)
    calls = {
        "mape": lambda: M.mape(y_test, forecast.mean),
        "smape": lambda: M.smape(y_test, forecast.mean),
        "mase": lambda: M.mase(y_test, forecast.mean, y_train, season),
        "rmse": lambda: M.rmse(y_test, forecast.mean),
        "interval_coverage": lambda: M.interval_coverage(y_test, forecast.lower, forecast.upper),
    }
    scores, undefined = {}, {}
    for name, call in calls.items():
        try:
            scores[name] = float(call())
        except M.MetricInputError as exc:
            undefined[name] = str(exc)
    return scores, undefined


@dataclass
class SeriesPanel:
    """What one series' figure shows."""

    name: str
    train: pd.Series
    test: pd.Series
    fitted: np.ndarray
    forecast: Forecast
    baseline: np.ndarray
    label: str
    confidence: float = 0.95


def _draw(ax, panel: SeriesPanel, legend: bool) -> None:
    ax.plot(panel.train.index, panel.train.to_numpy(), color="black", lw=1.2, label="actual (training)")
    ax.plot(panel.train.index, panel.fitted, color="tab:blue", lw=1, alpha=0.7, ls="--", label="fit (one step ahead)")
    ax.plot(panel.test.index, panel.test.to_numpy(), color="black", lw=1.2, marker="o", ms=3,
            label="actual (test)")
    ax.plot(panel.test.index, panel.forecast.mean, color="tab:red", lw=1.5, label="forecast")
    ax.fill_between(panel.test.index, panel.forecast.lower, panel.forecast.upper, color="tab:red", alpha=0.18,
                    label=f"{panel.confidence:.0%} interval")
    ax.plot(panel.test.index, panel.baseline, color="tab:gray", lw=1, ls=":", label="seasonal naive")
    ax.axvline(panel.test.index[0], color="gray", lw=0.6)
    ax.set_title(f"{panel.name}: {panel.label}", fontsize=8)
    ax.tick_params(labelsize=7)
    if legend:
        ax.legend(fontsize=7, loc="upper left")


def series_figure(panel: SeriesPanel):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    _draw(ax, panel, legend=True)
    fig.tight_layout()
    return fig


def grid_figure(panels: Sequence[SeriesPanel]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.4 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < len(panels):
            _draw(ax, panels[i], legend=i == 0)
        else:
            ax.set_visible(False)
    fig.tight_layout()
    return fig
