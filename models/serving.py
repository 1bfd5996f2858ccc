"""Request validation shared by the pyfunc serving classes.

Errors raised inside ``predict`` become HTTP 400 answers only when they are ``MlflowException`` with
``INVALID_PARAMETER_VALUE``; :func:`bad_request` builds one. Helpers here check columns, types and
parameters and name the problem in the message.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE


def bad_request(message: str) -> MlflowException:
    """An exception the scoring server answers with HTTP 400 and ``message``."""
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def as_frame(model_input: Any) -> pd.DataFrame:
    """The request rows as a DataFrame (the scoring server passes a DataFrame; Python callers may pass dicts)."""
    if isinstance(model_input, pd.DataFrame):
        return model_input
    if isinstance(model_input, Mapping):
        model_input = [model_input] if not any(isinstance(v, (list, tuple)) for v in model_input.values()) \
            else model_input
    try:
        return pd.DataFrame(model_input)
    except (TypeError, ValueError) as exc:
        raise bad_request(f"input must be rows of named columns: {exc}") from exc


def require_columns(df: pd.DataFrame, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise bad_request(
            f"missing required column(s) {', '.join(repr(c) for c in missing)}; got {', '.join(map(repr, df.columns))}"
        )


def string_column(df: pd.DataFrame, column: str) -> pd.Series:
    """``df[column]`` as strings; missing values are an error naming the column and row."""
    values = df[column]
    null = values.isna()
    if null.any():
        raise bad_request(f"column {column!r} has a missing value in row {int(null.to_numpy().argmax())}")
    return values.map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))


def int_param(params: Mapping[str, Any] | None, name: str, default: int, low: int, high: int) -> int:
    value = (params or {}).get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise bad_request(f"param {name!r} must be an integer from {low} to {high}, got {value!r}")
    try:
        number = int(value) if not isinstance(value, float) or value.is_integer() else None
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise bad_request(f"param {name!r} must be an integer from {low} to {high}, got {value!r}")
    return number


def bool_param(params: Mapping[str, Any] | None, name: str, default: bool) -> bool:
    value = (params or {}).get(name, default)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise bad_request(f"param {name!r} must be true or false, got {value!r}")


def float_param(params: Mapping[str, Any] | None, name: str, default: float, low: float, high: float) -> float:
    value = (params or {}).get(name, default)
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    if isinstance(value, bool) or number is None or not low < number < high:
        raise bad_request(f"param {name!r} must be a number strictly between {low} and {high}, got {value!r}")
    return number
