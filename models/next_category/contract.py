"""The served next-category model's contract (``storefront-next-category``): one answer row per input row."""

from __future__ import annotations

from pathlib import Path

from models.next_category.model import ID_COLUMN
from models.contracts import Column, Contract

PYFUNC_FILE = Path(__file__).with_name("pyfunc.py")

CONTRACT = Contract(
    name="next category",
    inputs=(Column(ID_COLUMN, "string", "the customer's id"),),
    dynamic_inputs="the feature columns of the model's signature (non-negative numbers, shares in [0, 1]), "
                   "built by `models.next_category.model.build_features` at the scoring date",
    outputs=(
        Column(ID_COLUMN, "string", "as sent"),
        Column("top_category", "string", "the most likely category of the next purchase"),
        Column("top_probability", "double", "its probability"),
    ),
    dynamic_outputs="`prob_<category slug>` for every category (each row sums to 1)",
)


def signature(feature_columns, categories):
    """The signature of a model over ``feature_columns`` and ``categories``."""
    from mlflow.types import ColSpec

    from models.next_category.model import probability_columns

    return CONTRACT.signature(
        inputs=[ColSpec("string", ID_COLUMN), *(Column(c, "double").colspec() for c in feature_columns)],
        outputs=[*(ColSpec(c.type, c.name) for c in CONTRACT.outputs),
                 *(ColSpec("double", c) for c in probability_columns(categories))])
