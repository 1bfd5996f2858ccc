"""Re-scoring registered models on a challenger's test data, for champion/challenger promotion.

Each training run logs its held-out test data under the run artifact folder ``holdout/`` with
:func:`log_holdout`: ``requests.parquet`` (rows as a client would send them to the served model),
``truth.parquet`` (what really happened) and ``spec.json`` (family, primary metric, parameters).
:func:`rescorer_for` turns a challenger version into a function that scores *any* model URI of the same
kind on exactly that data, so the current champion is judged on the challenger's test window rather than
on the metric it got on older data. A model that cannot take those requests (other features, other series)
raises :class:`RescoreError`, which blocks the promotion with its message.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Callable

import mlflow
import numpy as np
import pandas as pd

from evaluation import metrics
from pipelines.errors import StorefrontError

logger = logging.getLogger(__name__)


class RescoreError(StorefrontError):
    """A model cannot be scored on the given test data."""


def log_holdout(requests: pd.DataFrame, truth: pd.DataFrame, spec: dict) -> None:
    """Log the test data of the active run under ``holdout/`` (see the module docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        requests.to_parquet(folder / "requests.parquet", index=False)
        truth.to_parquet(folder / "truth.parquet", index=False)
        (folder / "spec.json").write_text(json.dumps(spec, indent=2, default=str))
        mlflow.log_artifacts(tmp, "holdout")


def load_holdout(run_id: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    try:
        local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="holdout"))
    except Exception as exc:  # noqa: BLE001 - any store error means the data is not there
        raise RescoreError(f"run {run_id} has no holdout/ test data to re-score on: {exc}") from exc
    return (pd.read_parquet(local / "requests.parquet"), pd.read_parquet(local / "truth.parquet"),
            json.loads((local / "spec.json").read_text()))


def _recommender_score(requests: pd.DataFrame, truth: pd.DataFrame, spec: dict, model) -> float:
    k = int(spec.get("k", 10))
    recs = model.predict(requests, params={"k": k, "exclude_purchased": True})
    recs = recs.sort_values(["customer_id", "rank"])
    recommended = recs.groupby("customer_id")["product_id"].apply(list).to_dict()
    relevant = truth.groupby("customer_id")["product_id"].apply(set).to_dict()
    return metrics.precision_at_k(relevant, recommended, k)


def _churn_score(requests: pd.DataFrame, truth: pd.DataFrame, spec: dict, model) -> float:
    schema = model.metadata.get_input_schema()
    needed = [] if schema is None else [c for c in schema.input_names() if c not in requests.columns]
    if needed:
        raise RescoreError(f"it expects column(s) {', '.join(needed)} that the test data does not have")
    column = spec.get("probability_column", "churn_probability")  # purchase_probability for the purchase target
    scores = model.predict(requests)
    if column not in scores.columns:
        raise RescoreError(f"it answers {', '.join(map(str, scores.columns))}, not {column}")
    merged = truth.merge(scores[["customer_id", column]], on="customer_id", how="inner")
    if len(merged) != len(truth):
        raise RescoreError(f"it scored {len(merged)} of {len(truth)} test customers")
    return metrics.auc(merged["label"].to_numpy(), merged[column].to_numpy())


def _sarima_score(requests: pd.DataFrame, truth: pd.DataFrame, spec: dict, model) -> float:
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


def _segments_score(requests: pd.DataFrame, truth: pd.DataFrame, spec: dict, model) -> float:  # noqa: ARG001
    from models.segments import FEATURES, evaluation_silhouette

    missing = [c for c in FEATURES if c not in requests.columns]
    if missing:
        raise RescoreError(f"the test data lacks the feature column(s) {', '.join(missing)}")
    answer = model.predict(requests)
    if "segment_id" not in answer.columns or len(answer) != len(requests):
        raise RescoreError(f"it answers {', '.join(map(str, answer.columns))} for {len(answer)} of {len(requests)} rows, "
                           "not one segment_id per customer")
    return evaluation_silhouette(requests, answer["segment_id"].to_numpy())


def _next_category_score(requests: pd.DataFrame, truth: pd.DataFrame, spec: dict, model) -> float:
    from evaluation.multiclass import mean_ovr_auc
    from models.next_category import probability_columns

    categories = list(spec["categories"])
    answer = model.predict(requests)
    columns = probability_columns(categories)
    missing = [c for c in ["customer_id", *columns] if c not in answer.columns]
    if missing:
        raise RescoreError(f"it does not answer the column(s) {', '.join(missing)} of the test categories")
    merged = truth.merge(answer[["customer_id", *columns]], on="customer_id", how="inner")
    if len(merged) != len(truth):
        raise RescoreError(f"it scored {len(merged)} of {len(truth)} test customers")
    return mean_ovr_auc(merged["category"].to_numpy(dtype=object), merged[columns].to_numpy(float), categories)


SCORERS: dict[str, Callable] = {
    "svdpp": _recommender_score,
    "itemcf": _recommender_score,
    "recommender": _recommender_score,
    "churn": _churn_score,
    "sarima": _sarima_score,
    "segments": _segments_score,
    "next_category": _next_category_score,
}


def rescorer_for(version) -> Callable[[str], float]:
    """A function scoring a model URI on the test data of the run behind registry ``version``."""
    requests, truth, spec = load_holdout(version.run_id)
    family = spec["family"]
    score = SCORERS[family]

    def rescore(model_uri: str) -> float:
        try:
            model = mlflow.pyfunc.load_model(model_uri)
            value = score(requests, truth, spec, model)
        except RescoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure to score means "cannot be compared"
            raise RescoreError(f"{type(exc).__name__}: {exc}") from exc
        logger.info("re-scored %s on the test data of run %s: %s = %.4f", model_uri, version.run_id,
                    spec["metric"], value)
        return value

    return rescore
