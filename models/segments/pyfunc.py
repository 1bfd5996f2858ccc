"""The pyfunc "model from code" that assigns customers to segments (``storefront-segments``).

Logged by ``pipelines.segments.train`` with one artifact, ``segments`` (JSON: the log-standardisation, the
centroids and the segment names; see :class:`models.segments.model.Segmenter`). Numpy only on the request path.

Serving contract: input rows with the feature columns ``total_spending``, ``frequency_days``,
``avg_spend_per_item``, ``recency_days`` (non-negative numbers; other columns are ignored); output one row
per input row: ``segment_id`` (int), ``segment_name``. A missing column, a value that is not a number (text, a
boolean: the columns are ``Any`` in the signature so that MLflow does not cast them first), a missing, infinite,
huge or negative value, or more rows than the row limit raises :func:`models.serving.bad_request` (HTTP 400)
naming the column and the row.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd

from models.contracts import MAX_ROWS, row_limit
from models.segments.model import FEATURES, Segmenter
from models.serving import as_frame, check_rows, number_values, require_columns

SEGMENTS_ARTIFACT = "segments"
OUTPUT_COLUMNS = ("segment_id", "segment_name")


def checked_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The feature columns as floats; raises ``bad_request`` naming the first bad column and row."""
    require_columns(frame, FEATURES)
    return pd.DataFrame({col: number_values(frame[col].tolist(), col, low=0) for col in FEATURES})


class SegmentsModel(mlflow.pyfunc.PythonModel):
    """Nearest-centroid segment for each request row."""

    def __init__(self):
        self.segmenter: Segmenter | None = None
        self.max_rows = MAX_ROWS

    def load_context(self, context):
        self.segmenter = Segmenter.load(context.artifacts[SEGMENTS_ARTIFACT])
        self.max_rows = row_limit(context.model_config)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:  # noqa: ARG002
        frame = as_frame(model_input)
        check_rows(len(frame), self.max_rows)
        features = checked_features(frame)
        ids = self.segmenter.predict(features) if len(features) else np.array([], dtype=int)
        names = np.asarray(self.segmenter.names_, dtype=object)
        return pd.DataFrame({"segment_id": ids.astype("int64"), "segment_name": names[ids] if len(ids) else []})


mlflow.models.set_model(SegmentsModel())
