"""Request validation shared by the pyfunc serving classes (the contracts are in :mod:`models.contracts`).

Errors raised inside ``predict`` become HTTP 400 answers only when they are ``MlflowException`` with
``INVALID_PARAMETER_VALUE``; :func:`bad_request` builds one. The helpers here check the row count, columns and
values and name the problem in the message: ids and names are strings or integers (:func:`string_values`),
numbers are finite numbers and never booleans (:func:`number_values`), a null is a 400 unless the model imputes
the column.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from models.contracts import MAX_ROWS_ENV, number_problem


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


def check_rows(rows: int, limit: int) -> None:
    """A 400 naming the limit when a request has more than ``limit`` rows (:func:`models.contracts.row_limit`)."""
    if rows > limit:
        raise bad_request(f"{rows} rows in one request; this model answers at most {limit} rows per request "
                          f"(the row limit: {MAX_ROWS_ENV} at serve time, max_rows when logged)")


def _is_missing(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, (float, np.floating)):
        return bool(np.isnan(value))
    if isinstance(value, (np.datetime64, np.timedelta64)):
        return bool(np.isnat(value))
    return False


def _as_string(value, column: str, row: int) -> str:
    """An id or name as text: a string as sent, an integer as its digits (``12.0``, a JSON number read as a float,
    is ``"12"``); anything else (``1.5``, ``true``, an object, a list) is a 400 naming the column and the row."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    if _is_missing(value):
        raise bad_request(f"column {column!r} has a missing value in row {row}")
    raise bad_request(f"column {column!r} in row {row} must be a string (or an integer), got {value!r}")


def string_values(values: Sequence, column: str) -> list[str]:
    """A column's values (a list, e.g. ``frame[column].tolist()``) as strings (:func:`_as_string`), without a
    pandas round trip: a few-row request is cheaper this way. Strings are returned as sent."""
    if all(type(v) is str for v in values):
        return list(values)
    return [_as_string(v, column, row) for row, v in enumerate(values)]


def string_column(df: pd.DataFrame, column: str) -> pd.Series:
    """``df[column]`` as strings (:func:`string_values`); missing or non-text values are a 400 naming the row."""
    return pd.Series(string_values(df[column].tolist(), column), index=df.index, dtype=object)


def number_values(values: Sequence, column: str, *, nullable: bool = False, low: float | None = None) -> np.ndarray:
    """A column's values as floats: finite numbers within :data:`models.contracts.MAX_NUMBER` (at least ``low``
    when given); null only where ``nullable`` (it becomes NaN). Anything else is a 400 naming the column and row."""
    out = np.empty(len(values), dtype=float)
    for row, value in enumerate(values):
        if _is_missing(value):
            if not nullable:
                raise bad_request(f"column {column!r} in row {row} is null; the model was not trained to impute it")
            out[row] = np.nan
            continue
        problem = number_problem(value)
        if problem is None and low is not None and value < low:
            problem = f"below {low:g}"
        if problem:
            at_least = f" >= {low:g}" if low is not None else ""
            raise bad_request(f"column {column!r} in row {row} must hold a number{at_least}: got {value!r} ({problem})")
        out[row] = float(value)
    return out
