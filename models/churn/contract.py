"""The served churn (or purchase-propensity) model's contract (``storefront-churn``, ``storefront-purchase`` and
models of a user's own table).

Input rows: ``customer_id`` plus every feature column of the fitted model's spec (their types come from the
training data: numbers for numeric features, strings for categorical ones; a numeric column of a user's table
that held blanks or missing-value markers also takes numbers as text). A null is imputed only in the columns that
had missing values in training (:func:`model_metadata` lists them in the MLmodel file), else it is a 400.
Output: one row per input row.
"""

from __future__ import annotations

from pathlib import Path

from models.churn.columns import ID_COLUMN, FeatureSpec
from models.contracts import Column, Contract

PYFUNC_FILE = Path(__file__).with_name("pyfunc.py")
TARGETS = ("churn", "purchase")
SEGMENT_CUTS = (0.4, 0.7)  # probability below the first is low risk, below the second medium, else high


def output_columns(target: str) -> tuple[str, str, str]:
    """``(probability, segment, flag)`` column names of a model for ``target``."""
    if target == "purchase":
        return "purchase_probability", "propensity_segment", "purchase"
    return "churn_probability", "risk_segment", "churn"


def contract(target: str = "churn") -> Contract:
    probability, segment, flag = output_columns(target)
    low, high = SEGMENT_CUTS
    return Contract(
        name=f"churn ({target})",
        inputs=(Column(ID_COLUMN, "string", "the customer's id"),),
        dynamic_inputs="every feature column of the model's signature (its `input_example.json` lists them): "
                       "numbers (never booleans or text, except numbers as text in a column that held text in "
                       "training) and strings",
        dynamic_null="imputed in the columns that had missing values in training (`nullable_columns` in the "
                     "model's metadata), else 400",
        outputs=(
            Column(ID_COLUMN, "string", "as sent"),
            Column(probability, "double", f"probability of {target}"),
            Column(segment, "string", f"`low` below {low}, `medium` below {high}, else `high`"),
            Column(flag, "boolean", "probability at or above the threshold tuned on validation data"),
        ),
    )


CONTRACT = contract("churn")


def model_signature(input_example, spec: FeatureSpec, target: str):
    """The signature: numeric features declared ``Any`` (MLflow would turn ``true`` into 1.0 and ``"3"`` into 3.0
    before the model could refuse them: :mod:`models.contracts`), the other input types inferred from the example,
    the contract's output columns."""
    from mlflow.models import infer_signature
    from mlflow.types.schema import AnyType, ColSpec

    inferred = infer_signature(input_example)
    numeric = set(spec.numeric)
    inputs = [ColSpec(AnyType(), c.name) if c.name in numeric else c for c in inferred.inputs.inputs]
    return contract(target).signature(inputs=inputs)


def model_metadata(spec: FeatureSpec) -> dict:
    """What the MLmodel file (and the MLflow UI) says about the inputs: which columns take null (imputed)."""
    return {"nullable_columns": list(spec.nullable), "text_number_columns": list(spec.lenient),
            "missing_value_markers": list(spec.na_values)}
