"""Time-ordered data splits; nothing here shuffles.

* Recommenders and churn: one cutoff date splits history (strictly before) from the test window (from
  the cutoff on). Tuning uses a second cutoff inside the history (:func:`validation_cutoff`,
  :func:`default_cutoffs`), so it never sees the test window. :func:`per_user_latest_fraction_split`
  holds out each user's most recent rows instead.
* Series: the last N periods are the test (:func:`last_n_periods`); model selection uses rolling-origin
  folds inside the periods before them (:func:`rolling_origin_folds`).

Bad arguments raise ``ValueError`` with a message naming the argument and the offending numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike


def _positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _require_columns(df: pd.DataFrame, *columns: str) -> None:
    missing = [column for column in columns if column not in df.columns]
    if missing:
        raise ValueError(f"missing column(s) {missing}; the frame has {list(df.columns)}")
    for column in columns:
        if df[column].isna().any():
            raise ValueError(f"column {column!r} has {int(df[column].isna().sum())} missing value(s)")


def _date_bounds(dates: ArrayLike) -> tuple[pd.Timestamp, pd.Timestamp]:
    index = pd.DatetimeIndex(dates).dropna()
    if index.empty:
        raise ValueError("dates is empty")
    return index.min(), index.max()


def temporal_split(
    df: pd.DataFrame, date_column: str, cutoff: str | pd.Timestamp, test_days: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(history, test)``: rows dated strictly before ``cutoff``, and rows in ``[cutoff, cutoff + test_days)``.

    With ``test_days=None`` the test holds every row from ``cutoff`` on. Rows after the test window
    are in neither part. Raises when the column is missing or not datetime, or either part is empty.
    """
    _require_columns(df, date_column)
    dates = df[date_column]
    if not pd.api.types.is_datetime64_any_dtype(dates):
        raise ValueError(f"column {date_column!r} must be datetime (convert it with pd.to_datetime), got {dates.dtype}")
    cutoff = pd.Timestamp(cutoff)
    in_test = dates >= cutoff
    if test_days is not None:
        _positive_int("test_days", test_days)
        in_test &= dates < cutoff + pd.Timedelta(days=test_days)
    history, test = df[dates < cutoff], df[in_test]
    for name, part in (("history", history), ("test", test)):
        if part.empty:
            raise ValueError(
                f"{name} is empty: cutoff {cutoff} with test_days={test_days} against dates "
                f"{dates.min()} to {dates.max()} in {date_column!r}"
            )
    return history, test


def validation_cutoff(dates: ArrayLike, cutoff: str | pd.Timestamp, val_days: int) -> pd.Timestamp:
    """``cutoff - val_days``: the start of the validation window inside the history before ``cutoff``.

    Raises when it leaves no history, i.e. falls on or before the first date.
    """
    _positive_int("val_days", val_days)
    first, _ = _date_bounds(dates)
    val_cutoff = pd.Timestamp(cutoff) - pd.Timedelta(days=val_days)
    if val_cutoff <= first:
        raise ValueError(
            f"validation cutoff {val_cutoff} ({val_days} days before {pd.Timestamp(cutoff)}) "
            f"leaves no history: the first date is {first}"
        )
    return val_cutoff


def default_cutoffs(dates: ArrayLike, test_days: int, val_days: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``(val_cutoff, test_cutoff)``: the test is the last ``test_days`` whole days, validation the ``val_days`` before.

    ``test_cutoff`` is midnight after the last date minus ``test_days``; ``val_cutoff`` is
    ``test_cutoff - val_days`` and must leave some history (see :func:`validation_cutoff`).
    """
    _positive_int("test_days", test_days)
    _, last = _date_bounds(dates)
    test_cutoff = last.normalize() + pd.Timedelta(days=1) - pd.Timedelta(days=test_days)
    return validation_cutoff(dates, test_cutoff, val_days), test_cutoff


def per_user_latest_fraction_split(
    df: pd.DataFrame, user_column: str, time_column: str, fraction: float = 0.2, min_test: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(train, test)`` holding out each user's most recent rows; both keep the original row order.

    A user with n rows gives ``min(n - 1, max(min_test, floor(fraction * n)))`` rows to the test, so
    every user keeps at least one training row (a single-row user stays in train). Rows with equal
    times count as later the further down the frame they are. Raises when no row reaches the test.
    """
    _require_columns(df, user_column, time_column)
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    if isinstance(min_test, bool) or not isinstance(min_test, (int, np.integer)) or min_test < 0:
        raise ValueError(f"min_test must be a non-negative integer, got {min_test!r}")
    users = df.groupby(user_column, sort=False)[time_column]
    n_rows = users.transform("size").to_numpy()
    # Position from the oldest row (1-based); method="first" breaks ties by row order.
    position = users.rank(method="first").to_numpy()
    # The tiny tolerance keeps fraction * n from rounding down below an exact integer (0.29 * 100).
    n_test = np.minimum(n_rows - 1, np.maximum(min_test, np.floor(fraction * n_rows + 1e-9)))
    in_test = position > n_rows - n_test
    if not in_test.any():
        raise ValueError(f"test is empty: no user in {user_column!r} has more than one row")
    return df[~in_test], df[in_test]


def last_n_periods(series: pd.Series, n: int) -> tuple[pd.Series, pd.Series]:
    """``(train, test)``: the last ``n`` periods of a series with an increasing index are the test."""
    _positive_int("n", n)
    if n >= len(series):
        raise ValueError(f"n={n} test periods leave no training periods in a series of {len(series)}")
    if not series.index.is_monotonic_increasing:
        raise ValueError("series index must be sorted in increasing time order")
    return series.iloc[:-n], series.iloc[-n:]


def rolling_origin_folds(n_obs: int, n_folds: int, horizon: int, min_train: int) -> list[tuple[int, int]]:
    """Expanding-window folds ``(train_end, test_end)``: train on ``[0, train_end)``, test on ``[train_end, test_end)``.

    Test windows are ``horizon`` long, consecutive and non-overlapping, the last one ends at ``n_obs``;
    the first training window holds at least ``min_train`` observations.
    """
    for name, value in (("n_obs", n_obs), ("n_folds", n_folds), ("horizon", horizon), ("min_train", min_train)):
        _positive_int(name, value)
    first_train_end = n_obs - n_folds * horizon
    if first_train_end < min_train:
        raise ValueError(
            f"min_train ({min_train}) + n_folds ({n_folds}) * horizon ({horizon}) = "
            f"{min_train + n_folds * horizon} exceeds n_obs ({n_obs})"
        )
    return [(train_end, train_end + horizon) for train_end in range(first_train_end, n_obs, horizon)]
