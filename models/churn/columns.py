"""Which columns a churn model takes, and the one way raw values become model input (training and serving).

A :class:`FeatureSpec` lists the numeric and categorical feature columns, which numeric columns are
*continuous* (more than two distinct values: only these get the optional log/spline transforms), which numeric
columns are *lenient* (the training table held missing values written as text in them: blanks or markers such as
``?``, so requests may send strings: numbers as text, and blanks or markers, which mean missing), which columns
are *nullable* (they held missing values in training, so the model imputes them: numeric ones with the training
median plus a missing indicator, categorical ones as the level ``"missing"``), and the *missing-value markers*
the training table was read with (``na_values``, compared case-insensitively after stripping spaces; a blank
cell is always missing).

:func:`read_columns` types a raw table (strings as read from a CSV, or typed Parquet columns) and says why each
column was read as it was (:class:`ColumnTyping`); :func:`infer_spec` is its spec. :func:`coerce_features` is
shared by training on a bring-your-own table and by the served model, so a value is read identically in both:
a missing value (or a marker) becomes NaN in a numeric column and ``"missing"`` in a categorical one; a number
must be finite and of magnitude at most :data:`models.contracts.MAX_NUMBER`, never a boolean. With ``strict``
(the served model) a null in a column that is not nullable, and text in a numeric column that is not lenient,
are errors too. Every error is a :class:`FeatureTypeError` naming the column, the row and the value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import pandas as pd

from models.contracts import MAX_NUMBER, number_problem

MISSING_CATEGORY = "missing"
ID_COLUMN = "customer_id"  # the id column of churn feature frames and of served requests
MOSTLY_NUMBERS = 0.9  # a categorical column whose values are at least this share numbers is flagged as suspicious


class FeatureTypeError(ValueError):
    """A value cannot be used for its column; ``column``, ``row`` (position), ``value`` and ``problem`` (the message
    without the place) say where and what."""

    def __init__(self, message: str, column: str, row: int | None = None, value=None, problem: str = ""):
        super().__init__(message)
        self.column = column
        self.row = row
        self.value = value
        self.problem = problem or message


@dataclass(frozen=True)
class FeatureSpec:
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    continuous: tuple[str, ...] = ()
    lenient: tuple[str, ...] = field(default=())
    nullable: tuple[str, ...] = field(default=())
    na_values: tuple[str, ...] = field(default=())  # casefolded markers besides blank

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def imputed_numeric(self) -> list[str]:
        """Numeric columns with missing values in training: imputed, each with a missing indicator."""
        nullable = set(self.nullable)
        return [c for c in self.numeric if c in nullable]

    def to_dict(self) -> dict:
        return {"numeric": list(self.numeric), "categorical": list(self.categorical),
                "continuous": list(self.continuous), "lenient": list(self.lenient),
                "nullable": list(self.nullable), "na_values": list(self.na_values)}

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureSpec":
        """The spec of a saved model; a model saved before ``nullable`` existed imputed every column."""
        numeric, categorical = tuple(data["numeric"]), tuple(data["categorical"])
        return cls(numeric, categorical, tuple(data.get("continuous", ())), tuple(data.get("lenient", ())),
                   tuple(data.get("nullable", (*numeric, *categorical))), tuple(data.get("na_values", ())))

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, exclude: Iterable[str] = ()) -> "FeatureSpec":
        """The spec of an already typed frame: numeric dtypes are numeric, everything else categorical; columns
        with NaN (or the level ``"missing"``) are nullable."""
        skip = set(exclude)
        numeric = tuple(c for c in frame.columns if c not in skip and _is_number_dtype(frame[c]))
        categorical = tuple(c for c in frame.columns if c not in skip and c not in numeric)
        nullable = tuple(c for c in (*numeric, *categorical)
                         if frame[c].isna().any() or (c in categorical and (frame[c] == MISSING_CATEGORY).any()))
        return cls(numeric, categorical, continuous_columns(frame, numeric), nullable=nullable)


def _is_number_dtype(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def continuous_columns(frame: pd.DataFrame, numeric: Iterable[str]) -> tuple[str, ...]:
    """Numeric columns with more than two distinct non-missing values."""
    return tuple(c for c in numeric if frame[c].nunique(dropna=True) > 2)


def markers(na_values: Iterable[str]) -> frozenset[str]:
    """The missing-value markers as compared (stripped, casefolded; blank always included)."""
    return frozenset({"", *(str(v).strip().casefold() for v in na_values)})


def _is_null(value) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, (float, np.floating))
                                                                   and np.isnan(value))


def missing_mask(values: pd.Series, na_values: Iterable[str] = ()) -> np.ndarray:
    """True where a value is missing: null, or text that is blank or one of the markers."""
    found = markers(na_values)
    text = values.map(lambda v: isinstance(v, str) and v.strip().casefold() in found).to_numpy(bool)
    return values.isna().to_numpy(bool) | text


@dataclass(frozen=True)
class ColumnTyping:
    """How one column of a raw table was read: ``kind`` (numeric, categorical or left out), its missing values
    (``markers`` counts the text ones by marker) and why, in words."""

    column: str
    kind: str
    missing: int
    reason: str
    markers: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ColumnReading:
    spec: FeatureSpec
    columns: tuple[ColumnTyping, ...]

    def table(self) -> pd.DataFrame:
        """One row per column: ``column, read_as, missing, missing_markers, reason``."""
        return pd.DataFrame([{"column": c.column, "read_as": c.kind, "missing": c.missing,
                              "missing_markers": ", ".join(f"{k!r} x{n}" for k, n in c.markers.items()),
                              "reason": c.reason} for c in self.columns],
                            columns=["column", "read_as", "missing", "missing_markers", "reason"])

    def counts(self) -> dict[str, int]:
        """Columns per kind, and how many numeric / categorical ones had missing values."""
        kinds = [c.kind for c in self.columns]
        nullable = set(self.spec.nullable)
        return {"numeric": kinds.count("numeric"), "categorical": kinds.count("categorical"),
                "left out": kinds.count("left out"),
                "numeric with missing values": sum(c in nullable for c in self.spec.numeric),
                "categorical with missing values": sum(c in nullable for c in self.spec.categorical)}

    def summary(self) -> str:
        """``4 numeric (2 with missing values: imputed, with indicators), 7 categorical, 1 left out (no values)``"""
        n = self.counts()
        numeric = f"{n['numeric']} numeric"
        if n["numeric with missing values"]:
            numeric += f" ({n['numeric with missing values']} with missing values: median-imputed, with indicators)"
        categorical = f"{n['categorical']} categorical"
        if n["categorical with missing values"]:
            categorical += f" ({n['categorical with missing values']} with missing values: level 'missing')"
        left = f", {n['left out']} left out (no values)" if n["left out"] else ""
        return f"{numeric}, {categorical}{left}"


def _marker_counts(values: pd.Series, found: frozenset[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        if isinstance(v, str) and v.strip().casefold() in found:
            key = "blank" if v.strip() == "" else v.strip()
            counts[key] = counts.get(key, 0) + 1
    nulls = int(values.isna().sum())
    if nulls:
        counts["empty"] = nulls
    return counts


def _as_number(value) -> float | None:
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        return None
    return number


def read_columns(raw: pd.DataFrame, exclude: Iterable[str] = (), na_values: Iterable[str] = ()) -> ColumnReading:
    """Type the columns of a raw table (module docstring) and say why.

    A column is numeric when every value that is not missing parses as a number (numeric Parquet columns are
    numeric as they are); it is lenient when some of its missing values were text. A column without any value is
    left out. Any other column is categorical; when most of its values are numbers, its reason says which value
    is not, so a missing-value marker the table uses can be added to ``--na-values``.
    """
    skip = set(exclude)
    na = tuple(sorted(markers(na_values) - {""}))
    found = markers(na)
    numeric, categorical, lenient, nullable, columns = [], [], [], [], []
    for col in raw.columns:
        if col in skip:
            continue
        values = raw[col]
        missing = missing_mask(values, na)
        counts = _marker_counts(values, found)
        n_missing, n_present = int(missing.sum()), int((~missing).sum())
        if n_present == 0:
            columns.append(ColumnTyping(col, "left out", n_missing, f"no values (all {n_missing} missing)", counts))
            continue
        if n_missing:
            nullable.append(col)
        if _is_number_dtype(values):
            numeric.append(col)
            columns.append(ColumnTyping(col, "numeric", n_missing, f"{values.dtype} numbers", counts))
            continue
        if pd.api.types.is_bool_dtype(values):
            categorical.append(col)
            columns.append(ColumnTyping(col, "categorical", n_missing, "true/false values", counts))
            continue
        present = values[~missing]
        parsed = present.map(_as_number)
        numbers = parsed.notna()
        if numbers.all():
            numeric.append(col)
            text_missing = any(k != "empty" for k in counts)
            if text_missing:
                lenient.append(col)
            reason = f"all {n_present} values that are not missing are numbers"
            columns.append(ColumnTyping(col, "numeric", n_missing, reason, counts))
            continue
        categorical.append(col)
        first = present[~numbers].iloc[0]
        where = int(np.flatnonzero(~numbers.to_numpy())[0])
        share = float(numbers.mean())
        reason = f"{present.nunique()} distinct values; {first!r} (row {int(present.index[where])}) is not a number"
        if share >= MOSTLY_NUMBERS:
            reason += (f"; but {share:.0%} of the values are numbers: if {first!r} marks a missing value, add it to "
                       "--na-values")
        columns.append(ColumnTyping(col, "categorical", n_missing, reason, counts))
    spec = FeatureSpec(tuple(numeric), tuple(categorical), nullable=tuple(nullable), lenient=tuple(lenient),
                       na_values=na)
    typed = coerce_features(raw, spec)
    spec = FeatureSpec(spec.numeric, spec.categorical, continuous_columns(typed, spec.numeric), spec.lenient,
                       spec.nullable, spec.na_values)
    return ColumnReading(spec, tuple(columns))


def infer_spec(raw: pd.DataFrame, exclude: Iterable[str] = (), na_values: Iterable[str] = ()) -> FeatureSpec:
    """The spec of a raw table (:func:`read_columns`)."""
    return read_columns(raw, exclude, na_values).spec


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


def _fail(column: str, row: int, value, problem: str):
    raise FeatureTypeError(f"column {column!r} in row {row} must hold {problem}, got {value!r}", column, row, value,
                           f"must hold {problem}, got {value!r}")


def _null(column: str, row: int, value):
    problem = f"is null ({value!r}); the model was not trained to impute it (it had no missing values in training)"
    raise FeatureTypeError(f"column {column!r} in row {row} {problem}", column, row, value, problem)


def _numeric(columns: FrameColumns, column: str, *, text_ok: bool, null_ok: bool, found: frozenset) -> np.ndarray:
    dtype = columns.dtype(column)
    if _is_plain_number(dtype):
        out = columns.floats(column)
        null = np.isnan(out)
        if null.any() and not null_ok:
            _null(column, int(np.flatnonzero(null)[0]), float("nan"))
        bad = ~null & (~np.isfinite(out) | (np.abs(out) > MAX_NUMBER))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            _fail(column, row, float(out[row]), f"a number ({number_problem(float(out[row]))})")
        return out
    values = columns.items(column)
    out = np.empty(len(values), dtype=float)
    for row, value in enumerate(values):
        if isinstance(value, str):
            if not text_ok:
                _fail(column, row, value, "a number (text, not a number: send numbers as JSON numbers)")
            if value.strip().casefold() in found:
                value = None
            else:
                number = _as_number(value)
                if number is None:
                    _fail(column, row, value, "a number (text, not a number)")
                problem = number_problem(number)
                if problem:
                    _fail(column, row, value, f"a number ({problem})")
                out[row] = number
                continue
        if _is_null(value):
            if not null_ok:
                _null(column, row, value)
            out[row] = np.nan
            continue
        problem = number_problem(value)
        if problem:
            _fail(column, row, value, f"a number ({problem})")
        out[row] = float(value)
    return out


def _categories(column: str, values: list, *, null_ok: bool, found: frozenset) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for row, value in enumerate(values):
        if _is_null(value) or (isinstance(value, str) and value.strip().casefold() in found):
            if not null_ok:
                _null(column, row, value)
            out[row] = MISSING_CATEGORY
        elif isinstance(value, str):
            out[row] = value
        elif isinstance(value, (float, np.floating)) and float(value).is_integer():
            out[row] = str(int(value))
        elif isinstance(value, (dict, list, tuple, set)):
            _fail(column, row, value, "text")
        else:
            out[row] = str(value)
    return out


def coerce_arrays(frame: pd.DataFrame | FrameColumns, spec: FeatureSpec, *,
                  strict: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
    """The spec's features of ``frame`` as model input without building a DataFrame: a float matrix of the
    numeric columns (``spec.numeric`` order) and one object array of strings per categorical column.

    Same values and errors as :func:`coerce_features` (which is built on it). ``strict`` (a served request):
    null only in the spec's nullable columns, text in a numeric column only where it is lenient.
    """
    columns = frame if isinstance(frame, FrameColumns) else FrameColumns(frame)
    missing = [c for c in spec.features if c not in columns]
    if missing:
        raise FeatureTypeError(f"missing feature column(s) {', '.join(map(repr, missing))}", missing[0])
    found = markers(spec.na_values)
    nullable, lenient = set(spec.nullable), set(spec.lenient)
    numeric = np.empty((columns.rows, len(spec.numeric)), dtype=float)
    for i, col in enumerate(spec.numeric):
        numeric[:, i] = _numeric(columns, col, text_ok=not strict or col in lenient,
                                 null_ok=not strict or col in nullable, found=found)
    categorical = [_categories(col, columns.items(col), null_ok=not strict or col in nullable, found=found)
                   for col in spec.categorical]
    return numeric, categorical


def coerce_features(frame: pd.DataFrame, spec: FeatureSpec, *, strict: bool = False) -> pd.DataFrame:
    """The spec's feature columns of ``frame`` as model input: floats and strings (module docstring).

    Raises :class:`FeatureTypeError` for a missing column or a value that does not fit its column.
    """
    numeric, categorical = coerce_arrays(frame, spec, strict=strict)
    out = {col: numeric[:, i] for i, col in enumerate(spec.numeric)}
    out.update(zip(spec.categorical, categorical))
    return pd.DataFrame(out, index=frame.index)[spec.features]
