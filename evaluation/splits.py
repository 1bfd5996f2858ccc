"""Every split rule of the project, in one place. Time-ordered data is never shuffled.

* Recommenders: the last ``test_days`` of purchases are the test window, the ``val_days`` before them the
  validation window; tuning fits on the history before the validation window (:func:`recommender_windows`,
  built on :func:`default_cutoffs` and :func:`validation_cutoff`). :func:`per_user_latest_fraction_split`
  holds out each user's most recent rows instead (the MovieLens benchmarks). Inside a window, the customers
  fall into warm and cold-start groups and the products into new and known ones (:func:`cold_start_groups`,
  :func:`new_products`); cold start is also measured on customers whose history is cut to zero, fold by fold
  (:func:`customer_folds`).
* Churn and next-category snapshots: features at a cutoff, labels in the window after it; tuning fits on
  snapshots whose label windows end before the validation cutoff, the refit on those ending by the test
  cutoff (:func:`snapshot_plan`).
* Series: the last N periods are the test (:func:`series_holdout`, :func:`last_n_periods`); model selection
  uses rolling-origin folds inside the periods before them (:func:`rolling_origin_folds`).
* Rows without an order (a user's customer table, customers to cluster): a stratified hold-out and stratified
  folds (:func:`stratified_holdout`, :func:`stratified_folds`), or a seeded random partition
  (:func:`random_partition`).

Bad arguments raise :class:`SplitError` (a ``ValueError``) with a message naming the argument and the
offending numbers.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike


class SplitError(ValueError):
    """The data cannot hold the requested split; the message names the argument and the numbers."""


def _positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise SplitError(f"{name} must be a positive integer, got {value!r}")


def _require_columns(df: pd.DataFrame, *columns: str) -> None:
    missing = [column for column in columns if column not in df.columns]
    if missing:
        raise SplitError(f"missing column(s) {missing}; the frame has {list(df.columns)}")
    for column in columns:
        if df[column].isna().any():
            raise SplitError(f"column {column!r} has {int(df[column].isna().sum())} missing value(s)")


def _date_bounds(dates: ArrayLike) -> tuple[pd.Timestamp, pd.Timestamp]:
    index = pd.DatetimeIndex(dates).dropna()
    if index.empty:
        raise SplitError("dates is empty")
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
        raise SplitError(f"column {date_column!r} must be datetime (convert it with pd.to_datetime), got {dates.dtype}")
    cutoff = pd.Timestamp(cutoff)
    in_test = dates >= cutoff
    if test_days is not None:
        _positive_int("test_days", test_days)
        in_test &= dates < cutoff + pd.Timedelta(days=test_days)
    history, test = df[dates < cutoff], df[in_test]
    for name, part in (("history", history), ("test", test)):
        if part.empty:
            raise SplitError(
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
        raise SplitError(
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
        raise SplitError(f"fraction must be in (0, 1), got {fraction!r}")
    if isinstance(min_test, bool) or not isinstance(min_test, (int, np.integer)) or min_test < 0:
        raise SplitError(f"min_test must be a non-negative integer, got {min_test!r}")
    users = df.groupby(user_column, sort=False)[time_column]
    n_rows = users.transform("size").to_numpy()
    # Position from the oldest row (1-based); method="first" breaks ties by row order.
    position = users.rank(method="first").to_numpy()
    # The tiny tolerance keeps fraction * n from rounding down below an exact integer (0.29 * 100).
    n_test = np.minimum(n_rows - 1, np.maximum(min_test, np.floor(fraction * n_rows + 1e-9)))
    in_test = position > n_rows - n_test
    if not in_test.any():
        raise SplitError(f"test is empty: no user in {user_column!r} has more than one row")
    return df[~in_test], df[in_test]


def last_n_periods(series: pd.Series, n: int) -> tuple[pd.Series, pd.Series]:
    """``(train, test)``: the last ``n`` periods of a series with an increasing index are the test."""
    _positive_int("n", n)
    if n >= len(series):
        raise SplitError(f"n={n} test periods leave no training periods in a series of {len(series)}")
    if not series.index.is_monotonic_increasing:
        raise SplitError("series index must be sorted in increasing time order")
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
        raise SplitError(
            f"min_train ({min_train}) + n_folds ({n_folds}) * horizon ({horizon}) = "
            f"{min_train + n_folds * horizon} exceeds n_obs ({n_obs})"
        )
    return [(train_end, train_end + horizon) for train_end in range(first_train_end, n_obs, horizon)]


# --------------------------------------------------------------------------- recommender windows

STAGES = ("validation", "test")


@dataclass(frozen=True)
class Windows:
    """The validation and test windows of a recommender run: ``[val_cutoff, test_cutoff)`` and
    ``[test_cutoff, test_end)``."""

    val_cutoff: pd.Timestamp
    test_cutoff: pd.Timestamp
    test_end: pd.Timestamp

    def bounds(self, stage: str) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
        """``(fit_before, window_start, window_end)`` of ``stage``: a model scored on the window is fitted on the
        rows before ``fit_before`` (the window is ``[start, end)``)."""
        if stage == "validation":
            return self.val_cutoff, self.val_cutoff, self.test_cutoff
        if stage == "test":
            return self.test_cutoff, self.test_cutoff, self.test_end
        raise SplitError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")


def recommender_windows(dates: ArrayLike, test_days: int, val_days: int) -> Windows:
    """The last ``test_days`` whole days are the test window, the ``val_days`` before them the validation
    window; ``test_end`` is midnight after the last date."""
    val_cutoff, test_cutoff = default_cutoffs(dates, test_days, val_days)
    _, last = _date_bounds(dates)
    return Windows(val_cutoff, test_cutoff, last.normalize() + pd.Timedelta(days=1))


def cold_start_groups(customers: Iterable, bought_before: Collection, with_demographics: Collection
                      ) -> dict[str, list]:
    """The customers of a window by what is known of them at its cutoff, each list in the given order.

    ``warm``: a purchase before the cutoff (``bought_before``). ``cold``: no purchase before it, demographics
    known (``with_demographics``). A customer with neither is in no group (nothing is known to personalise with).
    """
    bought, described = set(bought_before), set(with_demographics)
    customers = list(customers)
    return {"warm": [c for c in customers if c in bought],
            "cold": [c for c in customers if c not in bought and c in described]}


def new_products(window_products: Iterable, sold_before: Iterable) -> set:
    """The products bought in a window that were never sold before its cutoff."""
    return set(window_products) - set(sold_before)


def customer_folds(customers: Iterable, n_folds: int = 5, seed: int = 0) -> list[list]:
    """A seeded random partition of the distinct ``customers`` (sorted first, so the order given does not matter)
    into ``n_folds`` folds of near-equal size, each sorted: cut-to-zero populations, fitted without their
    history one fold at a time. Raises when there are fewer customers than folds."""
    _positive_int("n_folds", n_folds)
    ids = sorted(set(customers))
    if len(ids) < n_folds:
        raise SplitError(f"{len(ids)} customer(s) cannot fill n_folds={n_folds} folds")
    fold = np.random.default_rng(seed).permutation(len(ids)) % n_folds
    return [[c for c, f in zip(ids, fold) if f == k] for k in range(n_folds)]


# --------------------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class SnapshotPlan:
    """The cutoffs of a snapshot model (features before a cutoff, labels in the ``window_days`` after it).

    With the test cutoff T, the window w and ``s`` snapshots:

    ========================  ==========================  ==========================
    role                      cutoffs                     label windows end
    ========================  ==========================  ==========================
    tuning fit                T - 2w, ..., T - (s + 1)w   at or before T - w
    validation                T - w                       T
    final fit (refit)         T - w, ..., T - sw          at or before T
    test                      T                           T + w
    ========================  ==========================  ==========================
    """

    test: pd.Timestamp
    validation: pd.Timestamp
    tuning_fit: tuple[pd.Timestamp, ...]
    final_fit: tuple[pd.Timestamp, ...]
    window_days: int

    @property
    def test_end(self) -> pd.Timestamp:
        return self.test + pd.Timedelta(days=self.window_days)

    def describe(self) -> dict[str, str]:
        return {"test_cutoff": self.test.isoformat(), "val_cutoff": self.validation.isoformat(),
                "tuning_fit_cutoffs": ",".join(c.date().isoformat() for c in self.tuning_fit),
                "final_fit_cutoffs": ",".join(c.date().isoformat() for c in self.final_fit)}


def snapshot_plan(dates: ArrayLike, window_days: int, cutoff=None, snapshots: int = 1,
                  min_history_days: int | None = None, open_test: bool = False) -> SnapshotPlan:
    """The cutoffs of one run (:class:`SnapshotPlan`).

    ``cutoff`` is the test cutoff T (default: midnight after the last date minus the window, so the last label
    window ends with the data). Unless ``open_test``, a test label window that ends after the data is an
    error. With ``min_history_days``, the earliest snapshot must have that many days of data before it.
    """
    _positive_int("window_days", window_days)
    _positive_int("snapshots", snapshots)
    first, last = _date_bounds(dates)
    data_end = last.normalize() + pd.Timedelta(days=1)
    w = pd.Timedelta(days=window_days)
    if cutoff is None:
        test = data_end - w
    else:
        try:
            test = pd.Timestamp(cutoff)
        except (TypeError, ValueError):
            raise SplitError(f"cutoff: not a date: {cutoff!r}") from None
        if test + w > data_end and not open_test:
            raise SplitError(
                f"cutoff {test.date()}: its {window_days}-day label window ends {(test + w).date()}, after the data "
                f"ends ({last.date()}); the latest usable cutoff is {(data_end - w).date()}")
    plan = SnapshotPlan(test=test, validation=test - w,
                        tuning_fit=tuple(test - (k + 1) * w for k in range(1, snapshots + 1)),
                        final_fit=tuple(test - k * w for k in range(1, snapshots + 1)), window_days=window_days)
    earliest = min(plan.tuning_fit)
    if min_history_days is not None and earliest - pd.Timedelta(days=min_history_days) < first:
        raise SplitError(
            f"not enough history: the earliest snapshot (cutoff {earliest.date()}, {snapshots} tuning snapshot(s) "
            f"of {window_days} days before the validation cutoff {plan.validation.date()}) needs data from "
            f"{(earliest - pd.Timedelta(days=min_history_days)).date()} on, but the data start {first.date()}")
    return plan


# --------------------------------------------------------------------------- series


def series_holdout(values: pd.Series, test_periods: int) -> tuple[pd.Series, pd.Series]:
    """``(train, test)``: the last ``test_periods`` are the test when the series is longer than
    ``test_periods + 1``; a shorter series keeps every period for training and has an empty test."""
    _positive_int("test_periods", test_periods)
    n_test = test_periods if len(values) > test_periods + 1 else 0
    return values.iloc[: len(values) - n_test], values.iloc[len(values) - n_test:]


# --------------------------------------------------------------------------- rows without an order


def stratified_holdout(y: ArrayLike, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(dev, test)`` row indices, sorted: a stratified random ``test_fraction`` of the rows is the test."""
    from sklearn.model_selection import train_test_split

    y = np.asarray(y)
    if not 0 < test_fraction < 1:
        raise SplitError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    dev, test = train_test_split(np.arange(len(y)), test_size=test_fraction, stratify=y, random_state=seed)
    return np.sort(dev), np.sort(test)


def stratified_folds(y: ArrayLike, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified ``folds``-fold cross-validation ``(fit, validation)`` index pairs (shuffled, seeded)."""
    from sklearn.model_selection import StratifiedKFold

    _positive_int("folds", folds)
    y = np.asarray(y)
    return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def random_partition(n: int, test_fraction: float, validation_fraction: float, seed: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded random partition of ``range(n)`` into ``(fit, validation, test)`` index arrays, each sorted: the
    test takes ``test_fraction`` of the rows (at least 2), validation ``validation_fraction`` of the rest."""
    _positive_int("n", n)
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(2, int(round(n * test_fraction)))
    test, dev = np.sort(order[:n_test]), order[n_test:]
    n_val = max(2, int(round(len(dev) * validation_fraction)))
    return np.sort(dev[n_val:]), np.sort(dev[:n_val]), test
