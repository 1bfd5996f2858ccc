"""Churn features at a cutoff date T, built from the shop tables with vectorised groupby/numpy code.

:func:`build_features` returns one row per customer *active* at T: with at least one purchase in the
lookback window ``[T - lookback_days, T)``. Only rows dated strictly before T are read (transactions by
``purchase_date``, events by ``event_date``; a ``signup_date`` on or after T is treated as unknown), so
changing anything on or after T cannot change the features. Columns (``FEATURE_DOC`` describes each):

* RFM: ``recency_days``, ``frequency``, ``monetary``, ``avg_order_value``, ``tenure_days``;
* cadence: ``gap_mean_days`` and ``gap_std_days`` between distinct purchase days in the lookback window
  (``lookback_days`` and 0 for a single purchase day), ``recency_gap_ratio`` (recency over the mean gap:
  how overdue the next purchase is);
* trend: purchases and spend in the last 30 days against the 30 before (``purchase_trend``,
  ``spend_trend``, each ``(last - previous) / (last + previous)`` in [-1, 1], 0 when both are 0);
* behaviour: ``events_<type>`` counts in the lookback window and ``events_<type>_trend`` (same 30/30
  rule) for each event type, ``days_since_last_event`` (``lookback_days`` when none),
  ``cart_abandonment_rate`` (share of products added to the cart in the lookback window that were not
  bought on or after the add-to-cart before T; 0 without carts), ``category_diversity`` (distinct
  categories bought in the lookback window);
* demographics, when the customers table has them: ``age`` (numeric), ``gender``, ``location``,
  ``profession`` (categorical strings, ``missing`` when blank).

Pure functions of the tables: this module never imports ``pipelines`` (a served model carries it).
"""

from __future__ import annotations

import logging
from typing import Mapping

import numpy as np
import pandas as pd

from models.churn_columns import MISSING_CATEGORY

logger = logging.getLogger(__name__)

DAY = np.timedelta64(1, "D")
DEFAULT_LOOKBACK_DAYS = 365
TREND_DAYS = 30
EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "search")
DEMOGRAPHIC_NUMERIC = ("age",)
DEMOGRAPHIC_CATEGORICAL = ("gender", "location", "profession")
ID_COLUMN = "customer_id"

FEATURE_DOC: dict[str, str] = {
    "recency_days": "days from the last purchase to the cutoff",
    "frequency": "purchases (transaction rows) in the lookback window",
    "monetary": "amount spent in the lookback window",
    "avg_order_value": "monetary / frequency",
    "tenure_days": "days from the first purchase (or an earlier signup) to the cutoff",
    "gap_mean_days": "mean days between distinct purchase days in the lookback window",
    "gap_std_days": "standard deviation of those gaps",
    "recency_gap_ratio": "recency_days / gap_mean_days",
    "purchase_trend": "(purchases in the last 30 days - the 30 before) / their sum",
    "spend_trend": "(spend in the last 30 days - the 30 before) / their sum",
    "days_since_last_event": "days from the last behavioural event in the lookback window to the cutoff",
    "cart_abandonment_rate": "share of carted products in the lookback window not bought afterwards",
    "category_diversity": "distinct categories bought in the lookback window",
    **{f"events_{t}": f"{t} events in the lookback window" for t in EVENT_TYPES},
    **{f"events_{t}_trend": f"({t} events in the last 30 days - the 30 before) / their sum" for t in EVENT_TYPES},
}


class FeatureInputError(ValueError):
    """A table lacks a column the features need, or the cutoff/lookback is unusable."""


def _require(df: pd.DataFrame, table: str, *columns: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise FeatureInputError(f"table {table!r} lacks column(s) {', '.join(missing)} needed for churn features")


def _normalised_difference(last: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """``(last - previous) / (last + previous)``, 0 where both are 0."""
    total = last + previous
    out = np.zeros(len(total), dtype=float)
    np.divide(last - previous, total, out=out, where=total > 0)
    return out


def _bincount(codes: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    return np.bincount(codes, weights=weights, minlength=n).astype(float)


def active_customers(transactions: pd.DataFrame, cutoff, lookback_days: int = DEFAULT_LOOKBACK_DAYS) -> np.ndarray:
    """Sorted ids of customers with a purchase in ``[cutoff - lookback_days, cutoff)``."""
    _require(transactions, "transactions", "customer_id", "purchase_date")
    t = np.datetime64(pd.Timestamp(cutoff), "ns")
    dates = transactions["purchase_date"].to_numpy("datetime64[ns]")
    in_window = (dates < t) & (dates >= t - lookback_days * DAY)
    return np.sort(pd.unique(transactions["customer_id"].to_numpy()[in_window]).astype(str))


def build_features(tables: Mapping[str, pd.DataFrame], cutoff, lookback_days: int = DEFAULT_LOOKBACK_DAYS) -> pd.DataFrame:
    """One row per customer active at ``cutoff``: ``customer_id`` then the features (module docstring).

    Rows are sorted by ``customer_id``. Raises :class:`FeatureInputError` when a needed column is missing
    or ``lookback_days`` is not a positive integer (needs at least 60 days for the 30/30 trends).
    """
    if isinstance(lookback_days, bool) or not isinstance(lookback_days, (int, np.integer)) or lookback_days < 2 * TREND_DAYS:
        raise FeatureInputError(f"lookback_days must be an integer of at least {2 * TREND_DAYS}, got {lookback_days!r}")
    tx_all = tables["transactions"]
    _require(tx_all, "transactions", "customer_id", "product_id", "amount", "purchase_date")
    t = np.datetime64(pd.Timestamp(cutoff), "ns")
    start = t - int(lookback_days) * DAY

    dates_all = tx_all["purchase_date"].to_numpy("datetime64[ns]")
    before = dates_all < t
    cust_before = tx_all["customer_id"].to_numpy()[before]
    dates_before = dates_all[before]
    ids = np.sort(pd.unique(cust_before[dates_before >= start]).astype(str))
    n = len(ids)
    features = {ID_COLUMN: ids}
    if n == 0:
        return _empty_frame(tables)

    # Every transaction before T of an active customer, with the customer's position in ``ids``.
    index = pd.Index(ids)
    pos = index.get_indexer(cust_before)
    known = pos >= 0
    code = pos[known]
    age_days = (t - dates_before[known]) / DAY  # float days before T, > 0
    amount = pd.to_numeric(tx_all["amount"]).to_numpy(float)[before][known]
    in_lb = age_days <= lookback_days

    by_customer = pd.Series(age_days).groupby(code)
    recency = by_customer.min().reindex(range(n)).to_numpy()
    first_age = by_customer.max().reindex(range(n)).to_numpy()

    frequency = _bincount(code[in_lb], n)
    monetary = _bincount(code[in_lb], n, amount[in_lb])
    features["recency_days"] = recency
    features["frequency"] = frequency
    features["monetary"] = monetary
    features["avg_order_value"] = monetary / frequency
    features["tenure_days"] = _tenure(tables, ids, first_age, t)

    gap_mean, gap_std = _gaps(code[in_lb], dates_before[known][in_lb], n, lookback_days)
    features["gap_mean_days"] = gap_mean
    features["gap_std_days"] = gap_std
    features["recency_gap_ratio"] = recency / gap_mean

    last = age_days <= TREND_DAYS
    prev = (age_days > TREND_DAYS) & (age_days <= 2 * TREND_DAYS)
    features["purchase_trend"] = _normalised_difference(_bincount(code[last], n), _bincount(code[prev], n))
    features["spend_trend"] = _normalised_difference(_bincount(code[last], n, amount[last]),
                                                     _bincount(code[prev], n, amount[prev]))

    categories = tx_all["category"].to_numpy()[before][known][in_lb] if "category" in tx_all.columns else None
    features.update(_event_features(tables.get("events"), index, t, lookback_days,
                                    tx_all["product_id"].to_numpy()[before][known], code, age_days))
    if categories is not None:
        pairs = pd.DataFrame({"c": code[in_lb], "k": categories}).drop_duplicates()
        features["category_diversity"] = _bincount(pairs["c"].to_numpy(), n)
    else:
        features["category_diversity"] = np.ones(n)
    frame = pd.DataFrame(features)
    frame = _add_demographics(frame, tables.get("customers"))
    logger.debug("built %d churn features for %d customers at %s", frame.shape[1] - 1, n, cutoff)
    return frame


def _empty_frame(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    cols = {ID_COLUMN: pd.Series([], dtype=str)}
    for name in FEATURE_DOC:
        cols[name] = pd.Series([], dtype=float)
    return _add_demographics(pd.DataFrame(cols), tables.get("customers"))


def _tenure(tables, ids: np.ndarray, first_age: np.ndarray, t: np.datetime64) -> np.ndarray:
    customers = tables.get("customers")
    if customers is None or "signup_date" not in customers.columns:
        return first_age
    signup = pd.Series(pd.to_datetime(customers["signup_date"]).to_numpy("datetime64[ns]"),
                       index=customers["customer_id"].astype(str))
    signup = signup[~signup.index.duplicated()].reindex(ids).to_numpy("datetime64[ns]")
    signup_age = (t - signup) / DAY
    valid = ~np.isnat(signup) & (signup < t)
    return np.where(valid, np.fmax(first_age, signup_age), first_age)


def _gaps(code: np.ndarray, dates: np.ndarray, n: int, lookback_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of days between a customer's distinct purchase days."""
    day = dates.astype("datetime64[D]").astype(np.int64)
    key = np.unique(code.astype(np.int64) * (1 << 32) + (day - day.min() if len(day) else day))
    cust = key >> 32
    days = (key & ((1 << 32) - 1)).astype(float)
    same = cust[1:] == cust[:-1]
    diffs = np.diff(days)[same]
    owner = cust[1:][same]
    count = np.bincount(owner, minlength=n).astype(float)
    total = np.bincount(owner, weights=diffs, minlength=n)
    squares = np.bincount(owner, weights=diffs * diffs, minlength=n)
    has = count > 0
    mean = np.full(n, float(lookback_days))
    std = np.zeros(n)
    mean[has] = total[has] / count[has]
    std[has] = np.sqrt(np.maximum(squares[has] / count[has] - mean[has] ** 2, 0.0))
    return mean, std


def _event_features(events: pd.DataFrame | None, index: pd.Index, t: np.datetime64, lookback_days: int,
                    tx_products: np.ndarray, tx_code: np.ndarray, tx_age: np.ndarray) -> dict[str, np.ndarray]:
    n = len(index)
    out: dict[str, np.ndarray] = {}
    if events is None or events.empty:
        for etype in EVENT_TYPES:
            out[f"events_{etype}"] = np.zeros(n)
            out[f"events_{etype}_trend"] = np.zeros(n)
        out["days_since_last_event"] = np.full(n, float(lookback_days))
        out["cart_abandonment_rate"] = np.zeros(n)
        return out
    _require(events, "events", "customer_id", "product_id", "event_type", "event_date")
    dates = events["event_date"].to_numpy("datetime64[ns]")
    window = (dates < t) & (dates >= t - int(lookback_days) * DAY)
    pos = index.get_indexer(events["customer_id"].to_numpy()[window])
    known = pos >= 0
    code = pos[known]
    age = (t - dates[window][known]) / DAY
    etype = events["event_type"].to_numpy()[window][known]
    last = age <= TREND_DAYS
    prev = (age > TREND_DAYS) & (age <= 2 * TREND_DAYS)
    for name in EVENT_TYPES:
        is_type = etype == name
        out[f"events_{name}"] = _bincount(code[is_type], n)
        out[f"events_{name}_trend"] = _normalised_difference(_bincount(code[is_type & last], n),
                                                             _bincount(code[is_type & prev], n))
    latest = pd.Series(age).groupby(code).min().reindex(range(n)).to_numpy()
    out["days_since_last_event"] = np.where(np.isnan(latest), float(lookback_days), latest)

    # Cart abandonment: a carted (customer, product) counts as bought when a purchase of it follows
    # (on or after the first add-to-cart in the window, before T).
    carts = etype == "add_to_cart"
    cart_products = events["product_id"].to_numpy()[window][known][carts]
    products = pd.Index(pd.unique(np.concatenate([tx_products, cart_products])))
    n_products = max(len(products), 1)
    cart_key = code[carts].astype(np.int64) * n_products + products.get_indexer(cart_products)
    first_cart_age = pd.Series(age[carts]).groupby(cart_key).max()
    tx_key = tx_code.astype(np.int64) * n_products + products.get_indexer(tx_products)
    last_buy_age = pd.Series(tx_age).groupby(tx_key).min()
    bought_age = last_buy_age.reindex(first_cart_age.index).to_numpy()
    bought = ~np.isnan(bought_age) & (bought_age <= first_cart_age.to_numpy())
    owner = (first_cart_age.index.to_numpy() // n_products).astype(np.int64)
    carted = np.bincount(owner, minlength=n).astype(float)
    abandoned = np.bincount(owner, weights=(~bought).astype(float), minlength=n)
    rate = np.zeros(n)
    np.divide(abandoned, carted, out=rate, where=carted > 0)
    out["cart_abandonment_rate"] = rate
    return out


def _add_demographics(frame: pd.DataFrame, customers: pd.DataFrame | None) -> pd.DataFrame:
    if customers is None or ID_COLUMN not in customers.columns:
        return frame
    present = [c for c in (*DEMOGRAPHIC_NUMERIC, *DEMOGRAPHIC_CATEGORICAL) if c in customers.columns]
    if not present:
        return frame
    table = customers.assign(**{ID_COLUMN: customers[ID_COLUMN].astype(str)}).drop_duplicates(ID_COLUMN)
    table = table.set_index(ID_COLUMN)[present].reindex(frame[ID_COLUMN].to_numpy())
    for col in present:
        if col in DEMOGRAPHIC_NUMERIC:
            frame[col] = pd.to_numeric(table[col], errors="coerce").to_numpy(float)
        else:
            values = table[col].astype(object)
            blank = values.isna() | (values.astype(str).str.strip() == "")
            frame[col] = np.where(blank.to_numpy(), MISSING_CATEGORY, values.astype(str).to_numpy()).astype(object)
    return frame
