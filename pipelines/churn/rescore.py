"""Re-scoring a registered churn model on a challenger's test data (``holdout/``), for promotion."""

from __future__ import annotations

import pandas as pd

from evaluation import metrics
from pipelines.errors import RescoreError
from pipelines.mlflow_logging import predict_in_batches


def score(requests: pd.DataFrame, truth: pd.DataFrame, spec: dict, model) -> float:
    """ROC AUC of the model's probabilities on the test customers' labels."""
    schema = model.metadata.get_input_schema()
    needed = [] if schema is None else [c for c in schema.input_names() if c not in requests.columns]
    if needed:
        raise RescoreError(f"it expects column(s) {', '.join(needed)} that the test data does not have")
    column = spec.get("probability_column", "churn_probability")  # purchase_probability for the purchase target
    scores = predict_in_batches(model, requests)
    if column not in scores.columns:
        raise RescoreError(f"it answers {', '.join(map(str, scores.columns))}, not {column}")
    merged = truth.merge(scores[["customer_id", column]], on="customer_id", how="inner")
    if len(merged) != len(truth):
        raise RescoreError(f"it scored {len(merged)} of {len(truth)} test customers")
    return metrics.auc(merged["label"].to_numpy(), merged[column].to_numpy())
