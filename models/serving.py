"""Request validation shared by the pyfunc serving classes (the contracts are in :mod:`models.contracts`).

Errors raised inside ``predict`` become HTTP 400 answers only when they are ``MlflowException`` with
``INVALID_PARAMETER_VALUE``; :func:`bad_request` builds one. The helpers here check columns, types and
parameters and name the problem in the message.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np
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


def _as_string(value) -> str:
    """An id or name as text: ``12.0`` (a JSON number read as float) is ``"12"``."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _is_missing(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, (float, np.floating)):
        return bool(np.isnan(value))
    if isinstance(value, (np.datetime64, np.timedelta64)):
        return bool(np.isnat(value))
    return False


def string_column(df: pd.DataFrame, column: str) -> pd.Series:
    """``df[column]`` as strings; missing values are an error naming the column and row."""
    values = df[column]
    null = values.isna()
    if null.any():
        raise bad_request(f"column {column!r} has a missing value in row {int(null.to_numpy().argmax())}")
    return values.map(_as_string)


def string_values(values: Sequence, column: str) -> list[str]:
    """A column's values (a list, e.g. ``frame[column].tolist()``) as strings, as :func:`string_column` gives
    them, without a pandas round trip: a few-row request is cheaper this way. Strings are returned as sent."""
    if all(type(v) is str for v in values):
        return list(values)
    for row, value in enumerate(values):
        if _is_missing(value):
            raise bad_request(f"column {column!r} has a missing value in row {row}")
    return [_as_string(v) for v in values]
