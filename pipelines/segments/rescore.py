"""Re-scoring a registered segments model on a challenger's test data (``holdout/``), for promotion."""

from __future__ import annotations

import pandas as pd

from models.segments.model import FEATURES, evaluation_silhouette
from pipelines.errors import RescoreError
from pipelines.mlflow_logging import predict_in_batches


def score(requests: pd.DataFrame, truth: pd.DataFrame, spec: dict, model) -> float:
    """Silhouette of the model's assignment of the test customers."""
    missing = [c for c in FEATURES if c not in requests.columns]
    if missing:
        raise RescoreError(f"the test data lacks the feature column(s) {', '.join(missing)}")
    answer = predict_in_batches(model, requests)
    if "segment_id" not in answer.columns or len(answer) != len(requests):
        raise RescoreError(f"it answers {', '.join(map(str, answer.columns))} for {len(answer)} of {len(requests)} rows, "
                           "not one segment_id per customer")
    return evaluation_silhouette(requests, answer["segment_id"].to_numpy())
