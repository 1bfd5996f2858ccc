"""The data of a churn training run: leakage-free snapshots of the shop, or a bring-your-own customer table.

Shop tables (``--data-dir``): a *snapshot* at cutoff c holds the features of every customer active at c
(:func:`models.churn.features.build_features`, nothing on or after c read) and the label of the window
``[c, c + window)`` (:func:`models.churn.labels.build_labels`). The cutoffs of a run (tuning fit, validation,
final fit, test) are :func:`evaluation.splits.snapshot_plan`'s: tuning fits on the tuning snapshots and scores
ROC AUC on the validation snapshot; threshold and calibration are chosen on the validation snapshot's
predictions; the winner is refit on the final-fit snapshots (which end at T: nothing of the test window is
seen) and scored once on the test snapshot.

Bring-your-own table (``--table``): one row per customer, a label column (Yes/No, True/False, 1/0, ...)
and an optional id column; the other columns are features, typed by :func:`models.churn.columns.read_columns`.
Blank cells and the missing-value markers (``--na-values``, default :data:`pipelines.options.NA_VALUES`) are
missing values: a column of numbers with some markers is numeric with missing values. A row whose label is
missing is dropped and counted (not an error); a label that is neither missing nor yes/no-like is an error.
A stratified 20% hold-out is the test set; stratified K-fold cross-validation on the rest tunes
(:func:`evaluation.splits.stratified_holdout`, :func:`evaluation.splits.stratified_folds`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation.splits import SnapshotPlan, SplitError, snapshot_plan
from models.churn.columns import ColumnReading, FeatureSpec, FeatureTypeError, coerce_features, missing_mask, read_columns
from models.churn.features import ID_COLUMN, FeatureInputError, build_features
from models.churn.labels import build_labels
from pipelines.errors import ConfigurationError, DataValidationError
from pipelines.data.tables import Tables, read_raw
from pipelines.options import NA_VALUES

logger = logging.getLogger(__name__)

POSITIVE_LABELS = ("yes", "y", "true", "t", "1", "1.0", "churn", "churned")
NEGATIVE_LABELS = ("no", "n", "false", "f", "0", "0.0", "stay", "stayed", "retained")
MIN_ROWS_PER_CLASS = 10


@dataclass
class Snapshot:
    """Features (``customer_id`` first) and 0/1 labels of the customers active at ``cutoff``."""

    cutoff: pd.Timestamp
    frame: pd.DataFrame
    y: np.ndarray

    @property
    def size(self) -> int:
        return len(self.y)


def stack(snapshots: list[Snapshot]) -> Snapshot:
    """Several snapshots as one training set (a customer appears once per snapshot)."""
    if len(snapshots) == 1:
        return snapshots[0]
    return Snapshot(min(s.cutoff for s in snapshots), pd.concat([s.frame for s in snapshots], ignore_index=True),
                    np.concatenate([s.y for s in snapshots]))


def plan_cutoffs(dates: pd.Series, window_days: int, cutoff=None, snapshots: int = 1,
                 lookback_days: int = 365) -> SnapshotPlan:
    """The cutoffs of one run (:func:`evaluation.splits.snapshot_plan`; the earliest snapshot needs the 60 days
    of history its 30/30-day trends read); raises ConfigurationError when the data cannot hold them."""
    if dates.empty:
        raise DataValidationError("transactions: no purchases to build churn snapshots from")
    try:
        return snapshot_plan(dates, window_days, cutoff, snapshots, min_history_days=min(lookback_days, 60))
    except SplitError as exc:
        message = f"--{exc}" if str(exc).startswith("cutoff") else str(exc)
        raise ConfigurationError(f"{message}; use a shorter --window-days, fewer --snapshots or another --cutoff") \
            from None


def shop_snapshot(tables: Tables, cutoff: pd.Timestamp, window_days: int, target: str, lookback_days: int) -> Snapshot:
    """The snapshot at ``cutoff``; raises DataValidationError when it has too few customers of a class."""
    try:
        frame = build_features(tables, cutoff, lookback_days)
    except FeatureInputError as exc:
        raise DataValidationError(str(exc)) from exc
    y = build_labels(tables["transactions"], frame[ID_COLUMN].to_numpy(), cutoff, window_days, target)
    counts = np.bincount(y, minlength=2)
    if counts.min() < MIN_ROWS_PER_CLASS:
        raise DataValidationError(
            f"the snapshot at {cutoff.date()} has {counts[1]} positive and {counts[0]} negative customers "
            f"(target {target}, window {window_days} days, {len(y)} active in the {lookback_days}-day lookback); "
            f"at least {MIN_ROWS_PER_CLASS} of each are needed")
    logger.info("snapshot %s: %d active customers, %.1f%% %s", cutoff.date(), len(y), 100 * y.mean(), target)
    return Snapshot(cutoff, frame, y)


@dataclass
class TableData:
    """A bring-your-own table, typed: ``X`` (features), ``y`` (0/1), ``ids`` (strings), ``raw`` (as read, the
    labelled rows), how its columns were read (``reading``) and how many rows were read and dropped unlabelled."""

    path: Path
    raw: pd.DataFrame
    X: pd.DataFrame
    y: np.ndarray
    ids: np.ndarray
    spec: FeatureSpec
    label_column: str
    id_column: str | None
    reading: ColumnReading | None = None
    rows_read: int = 0
    rows_without_label: int = 0

    def summary(self) -> str:
        """One line: rows read and dropped, and how many columns of each kind."""
        dropped = f", {self.rows_without_label:,} without a label dropped" if self.rows_without_label else ""
        columns = self.reading.summary() if self.reading else f"{len(self.spec.features)} features"
        return f"table {self.path.name}: {self.rows_read:,} rows{dropped}; columns: {columns}"


def _line(raw: pd.DataFrame, position: int) -> int:
    """The CSV line (header = line 1) of the row at ``position`` of ``raw`` (whose index is the file's row)."""
    return int(raw.index[position]) + 2


def parse_labels(values: pd.Series, path: Path, column: str) -> np.ndarray:
    """0/1 from Yes/No, True/False, 1/0 and similar (case-insensitive); anything else is an error naming the lines
    (``values`` are indexed by file row, as :func:`load_table` keeps them)."""
    text = values.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip().lower())
    positive = text.isin(POSITIVE_LABELS).to_numpy()
    negative = text.isin(NEGATIVE_LABELS).to_numpy()
    bad = np.flatnonzero(~(positive | negative))
    if bad.size:
        rows = ", ".join(f"line {int(values.index[i]) + 2}: {values.iloc[i]!r}" for i in bad[:5])
        raise DataValidationError(
            f"{path}: label column {column!r} must hold yes/no, true/false or 1/0 values; {bad.size} do not "
            f"(first: {rows})")
    return positive.astype(np.int8)


def load_table(path: str | Path, label_column: str, id_column: str | None = None,
               na_values: tuple[str, ...] = NA_VALUES) -> TableData:
    """Read and type a bring-your-own customer table (CSV or Parquet); rows without a label are dropped."""
    path = Path(path)
    if not path.is_file():
        raise ConfigurationError(f"--table: no such file {path}")
    try:
        raw = read_raw(path)
    except Exception as exc:  # noqa: BLE001 - any parser error is the file's problem
        raise DataValidationError(f"{path}: cannot be read as a table: {exc}") from exc
    if label_column not in raw.columns:
        raise DataValidationError(f"{path}: no label column {label_column!r}; columns are {', '.join(raw.columns)}")
    if id_column is not None and id_column not in raw.columns:
        raise DataValidationError(f"{path}: no id column {id_column!r}; columns are {', '.join(raw.columns)}")
    if id_column is None and ID_COLUMN in raw.columns:
        id_column = ID_COLUMN
    rows_read = len(raw)
    unlabelled = missing_mask(raw[label_column], na_values)
    if unlabelled.any():
        logger.warning("%s: dropped %d row(s) without a label in %r (first: line %d)", path, int(unlabelled.sum()),
                       label_column, _line(raw, int(np.flatnonzero(unlabelled)[0])))
    raw = raw[~unlabelled]
    y = parse_labels(raw[label_column], path, label_column)
    counts = np.bincount(y, minlength=2)
    if counts.min() < MIN_ROWS_PER_CLASS:
        raise DataValidationError(f"{path}: label column {label_column!r} has {counts[1]} positive and {counts[0]} "
                                  f"negative rows; at least {MIN_ROWS_PER_CLASS} of each are needed")
    if id_column is not None:
        ids = raw[id_column].astype(str).to_numpy()
        dup = pd.Series(ids).duplicated().to_numpy()
        if dup.any():
            first = int(np.flatnonzero(dup)[0])
            raise DataValidationError(f"{path}: id column {id_column!r} repeats {ids[first]!r} (line "
                                      f"{_line(raw, first)}); the table must have one row per customer")
    else:
        ids = np.array([str(i) for i in raw.index])
    exclude = [label_column] + ([id_column] if id_column else [])
    try:
        reading = read_columns(raw, exclude=exclude, na_values=na_values)
        spec = reading.spec
        if not spec.features:
            raise DataValidationError(f"{path}: no feature columns besides the label and id columns")
        if ID_COLUMN in spec.features:
            raise DataValidationError(f"{path}: a feature column may not be called {ID_COLUMN!r} (pass it as "
                                      "--id-column)")
        X = coerce_features(raw, spec).reset_index(drop=True)
    except FeatureTypeError as exc:
        where = f"line {_line(raw, exc.row)}: " if exc.row is not None else ""
        raise DataValidationError(f"{path}: column {exc.column!r}: {where}{exc.problem}") from exc
    logger.info("table %s: %d rows (%d without a label dropped), %.1f%% positive; columns: %s", path.name,
                len(y), int(unlabelled.sum()), 100 * y.mean(), reading.summary())
    return TableData(path, raw.reset_index(drop=True), X, y, ids, spec, label_column, id_column, reading,
                     rows_read, int(unlabelled.sum()))
