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

from models.churn.columns import ID_COLUMN, MISSING_CATEGORY

logger = logging.getLogger(__name__)

DAY = np.timedelta64(1, "D")
DEFAULT_LOOKBACK_DAYS = 365
TREND_DAYS = 30
EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "search")
DEMOGRAPHIC_NUMERIC = ("age",)
DEMOGRAPHIC_CATEGORICAL = ("gender", "location", "profession")

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


FEATURE_COLUMNS = tuple(FEATURE_DOC)


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


def _group_min(codes: np.ndarray, values: np.ndarray, n: int, initial: float = np.inf) -> np.ndarray:
    out = np.full(n, initial)
    np.minimum.at(out, codes, values)
    return out


def _group_max(codes: np.ndarray, values: np.ndarray, n: int, initial: float = -np.inf) -> np.ndarray:
    out = np.full(n, initial)
    np.maximum.at(out, codes, values)
    return out


def _distinct(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct int64 keys (sort + compare: much faster than ``np.unique``'s hashing on big arrays)."""
    keys = np.sort(keys)
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if keys.size else keys


# String columns go through Arrow: hashing and lookups of millions of ids stay in C++.

def _arrow(values):
    import pyarrow as pa

    array = pa.array(values, from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = pa.array(np.asarray(values).astype(str))
    return array.cast(pa.large_string())


def _take(array, mask: np.ndarray):
    import pyarrow as pa

    return array.filter(pa.array(mask))


def _sorted_unique(array):
    import pyarrow.compute as pc

    unique = pc.unique(array)
    return unique.take(pc.array_sort_indices(unique))


def _codes(array, value_set) -> np.ndarray:
    """Position of each value in ``value_set`` (an Arrow array), -1 when absent."""
    import pyarrow.compute as pc

    found = pc.index_in(array, value_set=value_set)
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def active_customers(transactions: pd.DataFrame, cutoff, lookback_days: int = DEFAULT_LOOKBACK_DAYS) -> np.ndarray:
    """Sorted ids of customers with a purchase in ``[cutoff - lookback_days, cutoff)``."""
    _require(transactions, "transactions", "customer_id", "purchase_date")
    t = np.datetime64(pd.Timestamp(cutoff), "ns")
    dates = transactions["purchase_date"].to_numpy("datetime64[ns]")
    in_window = (dates < t) & (dates >= t - lookback_days * DAY)
    ids = _sorted_unique(_take(_arrow(transactions["customer_id"]), in_window))
    return np.asarray(ids.to_pylist(), dtype=object)


def build_features(tables: Mapping[str, pd.DataFrame], cutoff, lookback_days: int = DEFAULT_LOOKBACK_DAYS) -> pd.DataFrame:
    """One row per customer active at ``cutoff``: ``customer_id`` then the features (module docstring).

    Rows are sorted by ``customer_id``; columns are ``customer_id``, :data:`FEATURE_COLUMNS` and the
    demographic columns the customers table has. Raises :class:`FeatureInputError` when a needed column is
    missing or ``lookback_days`` is not an integer of at least 60 (the 30/30-day trends).
    """
    if isinstance(lookback_days, bool) or not isinstance(lookback_days, (int, np.integer)) or lookback_days < 2 * TREND_DAYS:
        raise FeatureInputError(f"lookback_days must be an integer of at least {2 * TREND_DAYS}, got {lookback_days!r}")
    tx = tables["transactions"]
    _require(tx, "transactions", "customer_id", "product_id", "amount", "purchase_date")
    t = np.datetime64(pd.Timestamp(cutoff), "ns")
    start = t - int(lookback_days) * DAY

    dates = tx["purchase_date"].to_numpy("datetime64[ns]")
    before = dates < t
    in_lb = before & (dates >= start)
    customers_col = _arrow(tx["customer_id"])
    ids_arrow = _sorted_unique(_take(customers_col, in_lb))
    n = len(ids_arrow)
    if n == 0:
        return _empty_frame(tables)
    ids = np.asarray(ids_arrow.to_pylist(), dtype=object)

    # Purchases in the lookback window (all by active customers, by definition).
    code = _codes(_take(customers_col, in_lb), ids_arrow)
    lb_dates = dates[in_lb]
    age = (t - lb_dates) / DAY  # float days before T, in (0, lookback]
    amount = pd.to_numeric(tx["amount"]).to_numpy(float)[in_lb]
    # Older purchases of the same customers only matter for the first purchase (tenure).
    older = before & ~in_lb
    old_code = _codes(_take(customers_col, older), ids_arrow)
    known = old_code >= 0
    first_age = _group_max(code, age, n)
    np.maximum.at(first_age, old_code[known], (t - dates[older][known]) / DAY)

    f: dict[str, np.ndarray] = {}
    f["recency_days"] = _group_min(code, age, n)
    f["frequency"] = _bincount(code, n)
    f["monetary"] = _bincount(code, n, amount)
    f["avg_order_value"] = f["monetary"] / f["frequency"]
    f["tenure_days"] = _tenure(tables, ids, first_age, t)
    f["gap_mean_days"], f["gap_std_days"] = _gaps(code, lb_dates, n, lookback_days)
    f["recency_gap_ratio"] = f["recency_days"] / f["gap_mean_days"]
    last = age <= TREND_DAYS
    prev = (age > TREND_DAYS) & (age <= 2 * TREND_DAYS)
    f["purchase_trend"] = _normalised_difference(_bincount(code[last], n), _bincount(code[prev], n))
    f["spend_trend"] = _normalised_difference(_bincount(code[last], n, amount[last]),
                                              _bincount(code[prev], n, amount[prev]))

    products = _take(_arrow(tx["product_id"]), in_lb)
    f.update(_event_features(tables.get("events"), ids_arrow, t, lookback_days, products, code, age))
    if "category" in tx.columns:
        categories = _take(_arrow(tx["category"]), in_lb)
        category_code = _codes(categories, _sorted_unique(categories))
        pairs = _distinct(code * (int(category_code.max()) + 1) + category_code)
        f["category_diversity"] = _bincount(pairs // (int(category_code.max()) + 1), n)
    else:
        f["category_diversity"] = np.ones(n)
    frame = pd.DataFrame({ID_COLUMN: ids, **{name: f[name] for name in FEATURE_COLUMNS}})
    frame[ID_COLUMN] = frame[ID_COLUMN].astype(str)
    frame = _add_demographics(frame, tables.get("customers"))
    logger.debug("built %d churn features for %d customers at %s", frame.shape[1] - 1, n, cutoff)
    return frame


def _empty_frame(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    cols = {ID_COLUMN: pd.Series([], dtype=str)}
    for name in FEATURE_COLUMNS:
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
    key = _distinct(code.astype(np.int64) * (1 << 32) + (day - day.min()))
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


def _event_features(events: pd.DataFrame | None, ids_arrow, t: np.datetime64, lookback_days: int,
                    tx_products, tx_code: np.ndarray, tx_age: np.ndarray) -> dict[str, np.ndarray]:
    """Event counts and trends, days since the last event and the cart-abandonment rate (lookback window)."""
    import pyarrow as pa

    n = len(ids_arrow)
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
    code = _codes(_take(_arrow(events["customer_id"]), window), ids_arrow)
    known = code >= 0
    code = code[known]
    age = ((t - dates[window]) / DAY)[known]
    etype = _codes(_take(_arrow(events["event_type"]), window), pa.array(EVENT_TYPES, pa.large_string()))[known]
    k = len(EVENT_TYPES)
    last = age <= TREND_DAYS
    prev = (age > TREND_DAYS) & (age <= 2 * TREND_DAYS)
    typed = etype >= 0
    counts = np.bincount(code[typed] * k + etype[typed], minlength=n * k).reshape(n, k).astype(float)
    counts_last = np.bincount(code[typed & last] * k + etype[typed & last], minlength=n * k).reshape(n, k)
    counts_prev = np.bincount(code[typed & prev] * k + etype[typed & prev], minlength=n * k).reshape(n, k)
    for j, name in enumerate(EVENT_TYPES):
        out[f"events_{name}"] = counts[:, j]
        out[f"events_{name}_trend"] = _normalised_difference(counts_last[:, j].astype(float),
                                                             counts_prev[:, j].astype(float))
    latest = _group_min(code, age, n)
    out["days_since_last_event"] = np.where(np.isinf(latest), float(lookback_days), latest)

    # Cart abandonment: a carted (customer, product) counts as bought when a purchase of it follows (on or
    # after the first add-to-cart in the window, before T).
    carts = etype == EVENT_TYPES.index("add_to_cart")
    cart_products = _take(_take(_arrow(events["product_id"]), window), known).filter(pa.array(carts))
    catalogue = _sorted_unique(pa.chunked_array([tx_products, cart_products]).combine_chunks())
    width = max(len(catalogue), 1)
    cart_key = code[carts] * width + _codes(cart_products, catalogue)
    order = np.argsort(cart_key, kind="stable")
    cart_key, cart_age = cart_key[order], age[carts][order]
    pair_start = np.flatnonzero(np.r_[True, cart_key[1:] != cart_key[:-1]]) if cart_key.size else np.array([], int)
    pairs = cart_key[pair_start]
    first_cart_age = np.maximum.reduceat(cart_age, pair_start) if cart_key.size else np.array([])
    tx_key = tx_code * width + _codes(tx_products, catalogue)
    slot = np.searchsorted(pairs, tx_key)
    hit = slot < pairs.size
    hit[hit] = pairs[slot[hit]] == tx_key[hit]
    last_buy_age = _group_min(slot[hit], tx_age[hit], pairs.size)
    bought = last_buy_age <= first_cart_age
    owner = pairs // width
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
