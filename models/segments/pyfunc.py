"""The pyfunc "model from code" that assigns customers to segments (``storefront-segments``).

Logged by ``pipelines.segments.train`` with one artifact, ``segments`` (JSON: the log-standardisation, the
centroids and the segment names; see :class:`models.segments.model.Segmenter`). Numpy only on the request path.

Serving contract: input rows with the feature columns ``total_spending``, ``frequency_days``,
``avg_spend_per_item``, ``recency_days`` (non-negative numbers; other columns are ignored); output one row
per input row: ``segment_id`` (int), ``segment_name``. A missing column, a non-numeric, missing, infinite or
negative value raises :func:`models.serving.bad_request` (HTTP 400) naming the column and the row.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd

from models.segments.model import FEATURES, Segmenter
from models.serving import as_frame, bad_request, require_columns

SEGMENTS_ARTIFACT = "segments"
OUTPUT_COLUMNS = ("segment_id", "segment_name")


def checked_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The feature columns as floats; raises ``bad_request`` naming the first bad column and row."""
    require_columns(frame, FEATURES)
    out = {}
    for col in FEATURES:
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() | ~np.isfinite(values.to_numpy(float, na_value=np.nan)) | (values < 0)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise bad_request(f"column {col!r} must hold non-negative numbers; row {row} has "
                              f"{frame[col].iloc[row]!r}")
        out[col] = values.to_numpy(float)
    return pd.DataFrame(out)


class SegmentsModel(mlflow.pyfunc.PythonModel):
    """Nearest-centroid segment for each request row."""

    def __init__(self):
        self.segmenter: Segmenter | None = None

    def load_context(self, context):
        self.segmenter = Segmenter.load(context.artifacts[SEGMENTS_ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:  # noqa: ARG002
        features = checked_features(as_frame(model_input))
        ids = self.segmenter.predict(features) if len(features) else np.array([], dtype=int)
        names = np.asarray(self.segmenter.names_, dtype=object)
        return pd.DataFrame({"segment_id": ids.astype("int64"), "segment_name": names[ids] if len(ids) else []})


mlflow.models.set_model(SegmentsModel())
