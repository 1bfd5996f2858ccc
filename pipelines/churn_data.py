"""The data of a churn training run: leakage-free snapshots of the shop, or a bring-your-own customer table.

Shop tables (``--data-dir``): a *snapshot* at cutoff c holds the features of every customer active at c
(:func:`models.churn_features.build_features`, nothing on or after c read) and the label of the window
``[c, c + window)`` (:func:`models.churn_labels.build_labels`). With the test cutoff T (default: the end of
the data minus the window, so the last label window ends with the data) and ``snapshots`` = s:

========================  ======================================  ===========================================
role                      cutoffs                                  label windows end
========================  ======================================  ===========================================
tuning fit                T - 2w, ..., T - (s + 1)w                at or before T - w
validation                T - w                                    T
final fit (refit)         T - w, ..., T - sw                       at or before T
test                      T                                        T + w
========================  ======================================  ===========================================

Tuning fits on the tuning snapshots and scores ROC AUC on the validation snapshot; threshold and
calibration are chosen on the validation snapshot's predictions; the winner is refit on the final-fit
snapshots (which end at T: nothing of the test window is seen) and scored once on the test snapshot.

Bring-your-own table (``--table``): one row per customer, a label column (Yes/No, True/False, 1/0, ...)
and an optional id column; the other columns are features, typed by :func:`models.churn_columns.infer_spec`
(blank strings in numeric columns are missing values). A stratified 20% hold-out is the test set;
stratified K-fold cross-validation on the rest tunes.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation.splits import default_cutoffs
from models.churn_columns import FeatureSpec, FeatureTypeError, coerce_features, infer_spec
from models.churn_features import ID_COLUMN, FeatureInputError, build_features
from models.churn_labels import build_labels, label_window_end
from pipelines.errors import ConfigurationError, DataValidationError
from pipelines.tables import Tables, read_raw

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


@dataclass(frozen=True)
class CutoffPlan:
    test: pd.Timestamp
    validation: pd.Timestamp
    tuning_fit: tuple[pd.Timestamp, ...]
    final_fit: tuple[pd.Timestamp, ...]
    window_days: int

    def describe(self) -> dict[str, str]:
        return {"test_cutoff": self.test.isoformat(), "val_cutoff": self.validation.isoformat(),
                "tuning_fit_cutoffs": ",".join(c.date().isoformat() for c in self.tuning_fit),
                "final_fit_cutoffs": ",".join(c.date().isoformat() for c in self.final_fit)}


def plan_cutoffs(dates: pd.Series, window_days: int, cutoff=None, snapshots: int = 1,
                 lookback_days: int = 365) -> CutoffPlan:
    """The cutoffs of one run (module docstring); raises ConfigurationError when the data cannot hold them."""
    if snapshots < 1:
        raise ConfigurationError(f"--snapshots must be at least 1, got {snapshots}")
    if dates.empty:
        raise DataValidationError("transactions: no purchases to build churn snapshots from")
    first, last = dates.min(), dates.max()
    data_end = last.normalize() + pd.Timedelta(days=1)
    if cutoff is None:
        _, test = default_cutoffs(dates, test_days=window_days, val_days=window_days)
    else:
        try:
            test = pd.Timestamp(cutoff)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"--cutoff: not a date: {cutoff!r}") from exc
        if label_window_end(test, window_days) > data_end:
            raise ConfigurationError(
                f"--cutoff {test.date()}: its {window_days}-day label window ends {label_window_end(test, window_days).date()}, "
                f"after the data ends ({last.date()}); the latest usable cutoff is "
                f"{(data_end - pd.Timedelta(days=window_days)).date()}")
    w = pd.Timedelta(days=window_days)
    plan = CutoffPlan(test=test, validation=test - w,
                      tuning_fit=tuple(test - (k + 1) * w for k in range(1, snapshots + 1)),
                      final_fit=tuple(test - k * w for k in range(1, snapshots + 1)), window_days=window_days)
    earliest = min(plan.tuning_fit)
    if earliest - pd.Timedelta(days=min(lookback_days, 60)) < first:
        raise ConfigurationError(
            f"not enough history: the earliest snapshot (cutoff {earliest.date()}, {snapshots} tuning snapshot(s) "
            f"of {window_days} days before the validation cutoff {plan.validation.date()}) needs purchases from "
            f"{(earliest - pd.Timedelta(days=60)).date()} on, but the data starts {first.date()}; "
            "use a shorter --window-days, fewer --snapshots or a later --cutoff")
    return plan


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
    """A bring-your-own table, typed: ``X`` (features), ``y`` (0/1), ``ids`` (strings), ``raw`` (as read)."""

    path: Path
    raw: pd.DataFrame
    X: pd.DataFrame
    y: np.ndarray
    ids: np.ndarray
    spec: FeatureSpec
    label_column: str
    id_column: str | None


def parse_labels(values: pd.Series, path: Path, column: str) -> np.ndarray:
    """0/1 from Yes/No, True/False, 1/0 and similar (case-insensitive); anything else is an error."""
    text = values.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip().lower())
    positive = text.isin(POSITIVE_LABELS).to_numpy()
    negative = text.isin(NEGATIVE_LABELS).to_numpy()
    bad = np.flatnonzero(~(positive | negative))
    if bad.size:
        rows = ", ".join(f"row {int(i) + 2}: {values.iloc[i]!r}" for i in bad[:5])
        raise DataValidationError(
            f"{path}: label column {column!r} must hold yes/no, true/false or 1/0 values; {bad.size} do not "
            f"(first: {rows})")
    return positive.astype(np.int8)


def load_table(path: str | Path, label_column: str, id_column: str | None = None) -> TableData:
    """Read and type a bring-your-own customer table (CSV or Parquet)."""
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
            raise DataValidationError(f"{path}: id column {id_column!r} repeats {ids[first]!r} (row {first + 2}); "
                                      "the table must have one row per customer")
    else:
        ids = np.array([str(i) for i in range(len(raw))])
    exclude = [label_column] + ([id_column] if id_column else [])
    spec = infer_spec(raw, exclude=exclude)
    if not spec.features:
        raise DataValidationError(f"{path}: no feature columns besides the label and id columns")
    if ID_COLUMN in spec.features:
        raise DataValidationError(f"{path}: a feature column may not be called {ID_COLUMN!r} (pass it as --id-column)")
    try:
        X = coerce_features(raw, spec)
    except FeatureTypeError as exc:
        raise DataValidationError(f"{path}: {exc}") from exc
    logger.info("table %s: %d rows, %.1f%% positive, %d numeric (%s lenient) and %d categorical features",
                path.name, len(y), 100 * y.mean(), len(spec.numeric), len(spec.lenient), len(spec.categorical))
    return TableData(path, raw, X, y, ids, spec, label_column, id_column)


def model_name_for_table(path: str | Path) -> str:
    """``storefront-churn-<table stem>`` in lower case with dashes: never the shop's ``storefront-churn``."""
    stem = re.sub(r"[^a-z0-9]+", "-", Path(path).stem.lower()).strip("-") or "table"
    return f"storefront-churn-{stem}"
