"""Re-scoring a registered SARIMA model on a challenger's test data (``holdout/``), for promotion."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation import metrics
from pipelines.errors import RescoreError


def score(requests: pd.DataFrame, truth: pd.DataFrame, spec: dict, model) -> float:
    """Mean MAPE of the model's forecasts of the test periods (the observed ones), from each series' training history."""
    python_model = model.unwrap_python_model()
    errors = []
    for category, test in truth.groupby("category", sort=True):
        history = requests[requests["category"] == category].sort_values("period")
        try:
            forecast = python_model.forecast_from_history(category, history["value"].to_numpy(float),
                                                          steps=len(test))
        except KeyError as exc:
            raise RescoreError(f"it has no series {category!r}") from exc
        actual, predicted = metrics.observed(test.sort_values("period")["value"].to_numpy(float), np.asarray(forecast))
        errors.append(metrics.mape(actual, predicted))
    return float(np.mean(errors))
