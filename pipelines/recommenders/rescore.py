"""Re-scoring a registered recommender model on a challenger's test data (``holdout/``), for promotion."""

from __future__ import annotations

import pandas as pd

from evaluation import metrics
from pipelines.mlflow_logging import predict_in_batches


def score(requests: pd.DataFrame, truth: pd.DataFrame, spec: dict, model) -> float:
    """precision@k of the model's top-k (purchased products excluded) against what the test customers bought."""
    k = int(spec.get("k", 10))
    recs = predict_in_batches(model, requests, {"k": k, "exclude_purchased": True})
    recs = recs.sort_values(["customer_id", "rank"])
    recommended = recs.groupby("customer_id")["product_id"].apply(list).to_dict()
    relevant = truth.groupby("customer_id")["product_id"].apply(set).to_dict()
    return metrics.precision_at_k(relevant, recommended, k)
