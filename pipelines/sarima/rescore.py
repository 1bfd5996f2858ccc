"""Re-scoring a registered SARIMA model on a challenger's test data (``holdout/``), for promotion."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation import metrics
from pipelines.errors import RescoreError


def score(requests: pd.DataFrame, truth: pd.DataFrame, spec: dict, model) -> float:
    """Mean MAPE of the model's forecasts of the test periods, from each series' training history."""
    python_model = model.unwrap_python_model()
    errors = []
    for category, test in truth.groupby("category", sort=True):
        history = requests[requests["category"] == category].sort_values("period")
        try:
            forecast = python_model.forecast_from_history(category, history["value"].to_numpy(float),
                                                          steps=len(test))
        except KeyError as exc:
            raise RescoreError(f"it has no series {category!r}") from exc
        errors.append(metrics.mape(test.sort_values("period")["value"].to_numpy(float), np.asarray(forecast)))
    return float(np.mean(errors))
