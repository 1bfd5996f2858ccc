"""The pyfunc "model from code" that serves both recommender families (item-CF and SVD++).

Logged by ``pipelines.recommenders.training.log_recommender_model`` with one artifact, ``recommender``:
a compact ``.npz`` written by :meth:`models.recommenders.engine.Recommender.save` (ids, purchase histories as
CSR arrays, popularity, and the family's scorer arrays). Loading it needs numpy, pandas and scipy only:
no Surprise, no pandas pivot, no pickle.

The serving contract is :data:`models.recommenders.contract.CONTRACT`: input rows ``{"customer_id": str}`` plus
the optional demographic columns ``age``, ``gender``, ``location``, ``profession`` (read only for customers unknown
to the model), params ``k`` and ``exclude_purchased``, one output row per recommendation. An unknown customer gets
the products popular with customers like them when the model holds a segment table and the row names a segment,
else the popular products with reason ``popular`` (never an error); a missing ``customer_id`` column, a missing
id, an id that is neither a string nor an integer, a malformed demographic value
(:func:`models.recommenders.coldstart.request_demographics`), a parameter out of its limits (``k`` 2.5) or more
rows than the row limit (:func:`models.contracts.row_limit`) raises :func:`models.serving.bad_request` (HTTP 400
naming the problem).

The scorers (``itemcf``, ``svdpp``, ``popularity``) and their protocol are described in
:mod:`models.recommenders.engine`.
"""

from __future__ import annotations

import mlflow
import pandas as pd

from models.contracts import MAX_ROWS, row_limit
from models.recommenders.coldstart import request_demographics
from models.recommenders.contract import EXCLUDE_PURCHASED, K
from models.recommenders.engine import Recommender
from models.serving import as_frame, check_rows, require_columns, string_values


class RecommenderModel(mlflow.pyfunc.PythonModel):
    """Top-k recommendations for the customers of each request row.

    ``model_input`` is annotated ``pd.DataFrame``: MLflow then validates requests against the logged
    signature only (a DataFrame hint infers no schema of its own).
    """

    def __init__(self):
        self.recommender: Recommender | None = None
        self.max_rows = MAX_ROWS

    def load_context(self, context):
        self.recommender = Recommender.load(context.artifacts["recommender"])
        self.max_rows = row_limit(context.model_config)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:  # noqa: ARG002
        frame = as_frame(model_input)
        check_rows(len(frame), self.max_rows)
        k = K.read(params)
        exclude = EXCLUDE_PURCHASED.read(params)
        require_columns(frame, ["customer_id"])
        customer_ids = string_values(frame["customer_id"].tolist(), "customer_id")
        return self.recommender.recommend_frame(customer_ids, k, exclude, request_demographics(frame))


mlflow.models.set_model(RecommenderModel())
