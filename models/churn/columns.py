"""Which columns a churn model takes, and the one way raw values become model input (training and serving).

A :class:`FeatureSpec` lists the numeric and categorical feature columns, which numeric columns are
*continuous* (more than two distinct values: only these get the optional log/spline transforms) and which
numeric columns are *lenient* (the training table held blank strings in them, so requests may send strings:
numbers as text, and blanks, which mean missing).

:func:`coerce_features` is shared by training on a bring-your-own table and by the served model, so a blank
string in a numeric column is handled identically in both: it becomes a missing value (imputed with the
training median inside the model). Categorical values become strings; missing or blank ones become
``"missing"``. Anything else that is not a number in a numeric column raises :class:`FeatureTypeError`,
which names the column, the row and the value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import pandas as pd

MISSING_CATEGORY = "missing"
ID_COLUMN = "customer_id"  # the id column of churn feature frames and of served requests


class FeatureTypeError(ValueError):
    """A value cannot be used for its column; ``column`` and ``row`` say where."""

    def __init__(self, message: str, column: str, row: int | None = None):
        super().__init__(message)
        self.column = column
        self.row = row


@dataclass(frozen=True)
class FeatureSpec:
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    continuous: tuple[str, ...] = ()
    lenient: tuple[str, ...] = field(default=())

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def to_dict(self) -> dict:
        return {"numeric": list(self.numeric), "categorical": list(self.categorical),
                "continuous": list(self.continuous), "lenient": list(self.lenient)}

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureSpec":
        return cls(tuple(data["numeric"]), tuple(data["categorical"]), tuple(data.get("continuous", ())),
                   tuple(data.get("lenient", ())))

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, exclude: Iterable[str] = ()) -> "FeatureSpec":
        """The spec of an already typed frame: numeric dtypes are numeric, everything else categorical."""
        skip = set(exclude)
        numeric = tuple(c for c in frame.columns if c not in skip and _is_number_dtype(frame[c]))
        categorical = tuple(c for c in frame.columns if c not in skip and c not in numeric)
        return cls(numeric, categorical, continuous_columns(frame, numeric))


def _is_number_dtype(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def continuous_columns(frame: pd.DataFrame, numeric: Iterable[str]) -> tuple[str, ...]:
    """Numeric columns with more than two distinct non-missing values."""
    return tuple(c for c in numeric if frame[c].nunique(dropna=True) > 2)


def _blank(values: pd.Series) -> np.ndarray:
    """True where a value is missing or a string of whitespace."""
    text = values.map(lambda v: v.strip() == "" if isinstance(v, str) else False).to_numpy(bool)
    return values.isna().to_numpy(bool) | text


def infer_spec(raw: pd.DataFrame, exclude: Iterable[str] = ()) -> FeatureSpec:
    """The spec of a raw table (strings as read from CSV, or typed Parquet columns).

    A column is numeric when every non-blank value parses as a number; it is lenient when it held blank
    strings (or numbers as text mixed with blanks). Columns without any value are left out.
    """
    skip = set(exclude)
    numeric, categorical, lenient = [], [], []
    for col in raw.columns:
        if col in skip:
            continue
        values = raw[col]
        blank = _blank(values)
        if blank.all():
            continue
        if _is_number_dtype(values):
            numeric.append(col)
            continue
        if pd.api.types.is_bool_dtype(values):
            categorical.append(col)
            continue
        parsed = pd.to_numeric(values[~blank].map(lambda v: v.strip() if isinstance(v, str) else v), errors="coerce")
        if parsed.notna().all():
            numeric.append(col)
            has_blank_string = bool((values.map(lambda v: isinstance(v, str)).to_numpy(bool) & blank).any())
            if has_blank_string:
                lenient.append(col)
        else:
            categorical.append(col)
    typed = coerce_features(raw, FeatureSpec(tuple(numeric), tuple(categorical)))
    return FeatureSpec(tuple(numeric), tuple(categorical), continuous_columns(typed, numeric), tuple(lenient))


class FrameColumns:
    """Cheap column access to a request or table frame: its column positions, dtypes and values.

    A small frame (a served request of a few rows) is read once into an object matrix, because selecting
    a pandas column costs more than converting the whole frame; a large one is read column by column.
    Either way :meth:`items` gives the same Python values as ``frame[column].tolist()``.
    """

    SMALL = 64

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self.names = frame.columns.tolist()
        self.position = {c: i for i, c in enumerate(self.names)}
        self.dtypes = list(frame.dtypes)
        self.rows = len(frame)
        self._matrix = frame.to_numpy(dtype=object) if self.rows <= self.SMALL else None

    def __contains__(self, column) -> bool:
        return column in self.position

    def dtype(self, column: str):
        return self.dtypes[self.position[column]]

    def items(self, column: str) -> list:
        if self._matrix is not None:
            return self._matrix[:, self.position[column]].tolist()
        return self.frame[column].tolist()

    def floats(self, column: str) -> np.ndarray:
        """A column of a NumPy integer or float dtype as floats."""
        if self._matrix is not None:
            return np.asarray(self._matrix[:, self.position[column]].tolist(), dtype=float).reshape(self.rows)
        return self.frame[column].to_numpy(dtype=float)


def _is_plain_number(dtype) -> bool:
    return isinstance(dtype, np.dtype) and dtype.kind in "iuf"


def _numeric(columns: FrameColumns, column: str) -> np.ndarray:
    dtype = columns.dtype(column)
    if pd.api.types.is_bool_dtype(dtype):
        raise FeatureTypeError(f"column {column!r} must be numeric, got booleans", column, 0)
    if _is_plain_number(dtype):
        out = columns.floats(column)
        if np.isinf(out).any():
            row = int(np.flatnonzero(np.isinf(out))[0])
            raise FeatureTypeError(f"column {column!r} must be finite; row {row} has {float(out[row])!r}", column, row)
        return out
    values = columns.items(column)
    out = np.empty(len(values), dtype=float)
    for row, value in enumerate(values):
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            out[row] = np.nan
        elif isinstance(value, str):
            text = value.strip()
            if text == "":
                out[row] = np.nan
                continue
            try:
                out[row] = float(text)
            except ValueError:
                raise FeatureTypeError(f"column {column!r} must be numeric; row {row} has {value!r}",
                                       column, row) from None
        elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
            out[row] = float(value)
        else:
            raise FeatureTypeError(f"column {column!r} must be numeric; row {row} has {value!r}", column, row)
    if np.isinf(out).any():
        row = int(np.flatnonzero(np.isinf(out))[0])
        raise FeatureTypeError(f"column {column!r} must be finite; row {row} has {values[row]!r}", column, row)
    return out


def _category(value) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return MISSING_CATEGORY
    if isinstance(value, str):
        return MISSING_CATEGORY if value.strip() == "" else value
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (dict, list, tuple, set)):
        raise TypeError(type(value).__name__)
    return str(value)


def coerce_arrays(frame: pd.DataFrame | FrameColumns, spec: FeatureSpec) -> tuple[np.ndarray, list[np.ndarray]]:
    """The spec's features of ``frame`` as model input without building a DataFrame: a float matrix of the
    numeric columns (``spec.numeric`` order) and one object array of strings per categorical column.

    Same values and errors as :func:`coerce_features` (which is built on it).
    """
    columns = frame if isinstance(frame, FrameColumns) else FrameColumns(frame)
    missing = [c for c in spec.features if c not in columns]
    if missing:
        raise FeatureTypeError(f"missing feature column(s) {', '.join(map(repr, missing))}", missing[0])
    numeric = np.empty((columns.rows, len(spec.numeric)), dtype=float)
    for i, col in enumerate(spec.numeric):
        numeric[:, i] = _numeric(columns, col)
    categorical = []
    for col in spec.categorical:
        values = columns.items(col)
        try:
            categorical.append(np.array([_category(v) for v in values], dtype=object).reshape(len(values)))
        except TypeError:
            row = next(i for i, v in enumerate(values) if isinstance(v, (dict, list, tuple, set)))
            raise FeatureTypeError(f"column {col!r} must hold text values; row {row} has {values[row]!r}",
                                   col, row) from None
    return numeric, categorical


def coerce_features(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The spec's feature columns of ``frame`` as model input: floats and strings (module docstring).

    Raises :class:`FeatureTypeError` for a missing column or a value that does not fit its column.
    """
    numeric, categorical = coerce_arrays(frame, spec)
    out = {col: numeric[:, i] for i, col in enumerate(spec.numeric)}
    out.update(zip(spec.categorical, categorical))
    return pd.DataFrame(out, index=frame.index)[spec.features]
