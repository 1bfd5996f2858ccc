"""The pyfunc "model from code" that serves both recommender families (item-CF and SVD++).

Logged by ``pipelines.recommender_training.log_recommender_model`` with one artifact, ``recommender``:
a compact ``.npz`` written by :meth:`models.recommender.Recommender.save` (ids, purchase histories as
CSR arrays, popularity, and the family's scorer arrays). Loading it needs numpy, pandas and scipy only:
no Surprise, no pandas pivot, no pickle.

Serving contract (DESIGN.md, "Serving contracts"):

* input rows ``{"customer_id": str}``;
* params ``k`` (int, default 10, 1..100) and ``exclude_purchased`` (bool, default true);
* output one row per recommendation: ``customer_id, rank, product_id, score, reason``;
* an unknown customer gets the popular products with reason ``popular`` (never an error);
* a missing ``customer_id`` column, a missing id, ``k`` outside 1..100 or a parameter of the wrong type
  raises :func:`models.serving.bad_request` (HTTP 400 with a message naming the problem).

Scorer protocol, for a new family (full text in ``models/recommender.py``): a scorer class has
``kind`` (a key of ``models.recommender.SCORER_CLASSES``: ``{"itemcf": models.itemcf.ItemCFScorer,
"svdpp": models.svdpp.FactorScorer}``, imported lazily), ``to_arrays() -> dict[str, np.ndarray]``
(keys prefixed ``<kind>_``), the classmethod ``from_arrays(arrays)`` (gets the whole ``.npz`` mapping),
``scores(user_index) -> np.ndarray`` (one float per product), ``score_users(user_indices) -> 2-D array``
(vectorised, for evaluation) and optionally ``reasons(user_index, items) -> list[str]``.
"""

from __future__ import annotations

import mlflow
import pandas as pd

from models.recommender import Recommender
from models.serving import as_frame, bool_param, int_param, require_columns, string_column

MAX_K = 100


class RecommenderModel(mlflow.pyfunc.PythonModel):
    """Top-k recommendations for the customers of each request row.

    ``model_input`` is annotated ``pd.DataFrame``: MLflow then validates requests against the logged
    signature only (a DataFrame hint infers no schema of its own).
    """

    def __init__(self):
        self.recommender: Recommender | None = None

    def load_context(self, context):
        self.recommender = Recommender.load(context.artifacts["recommender"])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:  # noqa: ARG002
        k = int_param(params, "k", 10, 1, MAX_K)
        exclude = bool_param(params, "exclude_purchased", True)
        frame = as_frame(model_input)
        require_columns(frame, ["customer_id"])
        customer_ids = frame["customer_id"].tolist()
        if not all(type(c) is str for c in customer_ids):  # noqa: E721 - exact str: the common case, fast
            customer_ids = string_column(frame, "customer_id").tolist()
        return self.recommender.recommend_frame(customer_ids, k, exclude)


mlflow.models.set_model(RecommenderModel())
