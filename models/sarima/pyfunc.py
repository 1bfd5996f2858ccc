"""The served SARIMA model: one pyfunc for all series (a "model from code").

Artifact ``series``: a JSON file ``{"freq": ..., "series": [SeriesModel.to_dict(), ...]}``
(orders, fitted parameters and the recent observations of each series; see :mod:`models.sarima.model`). At load
every series' state-space model is rebuilt with its fixed parameters and filtered once, and the forecast mean
and standard error of the next ``HORIZON.high`` periods (in the transformed space) and their period labels are
kept (:meth:`SeriesModel.prepare`). A request then only slices these, applies the normal quantile of its
``confidence`` and the back-transform: the same numbers as a statsmodels forecast, without running one.

The serving contract is :data:`models.sarima.contract.CONTRACT`: request rows ``{"category": str, "horizon":
int}``, param ``confidence``, one answer row per step. An unknown category (the message lists the known ones), a
category that is neither text nor an integer, a horizon out of range or not a whole number (``horizon`` is declared
``Any`` in the signature, so 2.5 and ``true`` reach the model instead of being cast to 2 and 1), a missing column or
value, a bad ``confidence`` or more rows than the row limit answers HTTP 400.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from models.contracts import MAX_ROWS, row_limit
from models.sarima.contract import CONFIDENCE, CONTRACT, HORIZON
from models.sarima.model import SeriesModel
from models.serving import as_frame, bad_request, check_rows, require_columns, string_values

def load_series(path: str | Path) -> dict[str, SeriesModel]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {item["name"]: SeriesModel.from_dict(item) for item in data["series"]}


class SarimaForecaster(mlflow.pyfunc.PythonModel):
    """Forecasts every category the model was trained on (see the module docstring).

    ``model_input`` is annotated ``pd.DataFrame`` so MLflow validates requests against the logged signature only.
    """

    max_rows = MAX_ROWS

    def load_context(self, context) -> None:
        self.series = load_series(context.artifacts["series"])
        for model in self.series.values():
            model.prepare(HORIZON.high).forecast(HORIZON.high, CONFIDENCE.default)  # the default band, computed once
        self.max_rows = row_limit(context.model_config)

    @property
    def categories(self) -> list[str]:
        return sorted(self.series)

    def _model(self, category: str) -> SeriesModel:
        try:
            return self.series[category]
        except KeyError:
            raise bad_request(f"unknown category {category!r}; known categories: {', '.join(self.categories)}") \
                from None

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:  # noqa: ARG002
        df = as_frame(model_input)
        require_columns(df, ["category", "horizon"])
        if df.empty:
            raise bad_request("no rows: send at least one {'category': ..., 'horizon': ...}")
        check_rows(len(df), self.max_rows)
        confidence = CONFIDENCE.read(params)
        categories = string_values(df["category"].tolist(), "category")
        horizons = [HORIZON.whole_number(v, i) for i, v in enumerate(df["horizon"].tolist())]
        models = [self._model(c) for c in categories]
        names, periods, steps, means, lowers, uppers = [], [], [], [], [], []
        for category, horizon, model in zip(categories, horizons, models):
            forecast = model.forecast(horizon, confidence)
            names += [category] * horizon
            periods += model.periods(horizon)
            steps.append(np.arange(1, horizon + 1))
            means.append(forecast.mean)
            lowers.append(forecast.lower)
            uppers.append(forecast.upper)
        # one frame built from whole columns (much cheaper than a frame per row and a concat)
        return pd.DataFrame({"category": names, "period": periods, "step": np.concatenate(steps),
                             "forecast": np.concatenate(means), "lower": np.concatenate(lowers),
                             "upper": np.concatenate(uppers)}, columns=CONTRACT.output_names)

    def forecast_from_history(self, category: str, history, steps: int, confidence: float = CONFIDENCE.default):
        """Point forecasts of ``steps`` periods after ``history`` (the category's values from its first period)
        with this model's spec and parameters, without refitting; for re-scoring on another test window.
        Raises ``KeyError`` for an unknown category."""
        if category not in self.series:
            raise KeyError(category)
        return self.series[category].forecast_from_history(np.asarray(history, dtype=float), steps, confidence).mean


mlflow.models.set_model(SarimaForecaster())
