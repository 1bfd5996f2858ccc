"""Re-scoring a registered next-category model on a challenger's test data (``holdout/``), for promotion."""

from __future__ import annotations

import pandas as pd

from evaluation.multiclass import mean_ovr_auc
from models.next_category.model import probability_columns
from pipelines.errors import RescoreError
from pipelines.mlflow_logging import predict_in_batches


def score(requests: pd.DataFrame, truth: pd.DataFrame, spec: dict, model) -> float:
    """Mean one-vs-rest ROC AUC of the model's category probabilities on the test customers."""
    categories = list(spec["categories"])
    answer = predict_in_batches(model, requests)
    columns = probability_columns(categories)
    missing = [c for c in ["customer_id", *columns] if c not in answer.columns]
    if missing:
        raise RescoreError(f"it does not answer the column(s) {', '.join(missing)} of the test categories")
    merged = truth.merge(answer[["customer_id", *columns]], on="customer_id", how="inner")
    if len(merged) != len(truth):
        raise RescoreError(f"it scored {len(merged)} of {len(truth)} test customers")
    return mean_ovr_auc(merged["category"].to_numpy(dtype=object), merged[columns].to_numpy(float), categories)
