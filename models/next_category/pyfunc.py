"""The pyfunc "model from code" that predicts a customer's next category (``storefront-next-category``).

Logged by ``pipelines.next_category.train`` with one artifact, ``classifier`` (JSON: the feature transform,
the multinomial coefficients and the categories; :class:`models.next_category.model.NextCategoryClassifier`).
Numpy only on the request path.

Serving contract: input rows with ``customer_id`` (string) and the feature columns of the signature
(:func:`models.next_category.model.feature_columns`, built by :func:`models.next_category.model.build_features` at the
scoring date; non-negative numbers, shares in [0, 1]). Output one row per input row: ``customer_id``,
``top_category`` (the category name), ``top_probability`` and ``prob_<category slug>`` for every category
(rows sum to 1). A missing column, a missing, non-numeric (text, boolean), infinite, huge or negative value, an id
that is neither text nor an integer, or more rows than the row limit raises :func:`models.serving.bad_request`
(HTTP 400) naming the column and the row.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd

from models.contracts import MAX_ROWS, row_limit
from models.next_category.model import ID_COLUMN, NextCategoryClassifier, probability_columns
from models.serving import as_frame, check_rows, number_values, require_columns, string_column

CLASSIFIER_ARTIFACT = "classifier"


def checked_features(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    require_columns(frame, [ID_COLUMN, *columns])
    return pd.DataFrame({col: number_values(frame[col].tolist(), col, low=0) for col in columns})


def answer(classifier: NextCategoryClassifier, ids: np.ndarray, X: pd.DataFrame) -> pd.DataFrame:
    """The output frame for feature rows ``X`` (module docstring)."""
    p = classifier.predict_proba(X)
    categories = np.asarray(classifier.categories, dtype=object)
    top = p.argmax(axis=1) if len(p) else np.array([], dtype=int)
    out = pd.DataFrame({ID_COLUMN: ids, "top_category": categories[top] if len(top) else [],
                        "top_probability": p[np.arange(len(p)), top] if len(p) else []})
    for j, col in enumerate(probability_columns(classifier.categories)):
        out[col] = p[:, j]
    return out


class NextCategoryModel(mlflow.pyfunc.PythonModel):
    """Probability of each category for a customer's next purchase, and the most likely one."""

    def __init__(self):
        self.classifier: NextCategoryClassifier | None = None
        self.max_rows = MAX_ROWS

    def load_context(self, context):
        self.classifier = NextCategoryClassifier.load(context.artifacts[CLASSIFIER_ARTIFACT])
        self.max_rows = row_limit(context.model_config)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:  # noqa: ARG002
        frame = as_frame(model_input)
        check_rows(len(frame), self.max_rows)
        X = checked_features(frame, self.classifier.input_columns)
        ids = string_column(frame, ID_COLUMN).to_numpy(dtype=object)
        return answer(self.classifier, ids, X)


mlflow.models.set_model(NextCategoryModel())
