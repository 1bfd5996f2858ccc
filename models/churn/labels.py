"""Labels for a churn snapshot at cutoff T: what happens in the window ``[T, T + window_days)``.

* ``target="churn"``: 1 when the customer makes no purchase in the window (default 90 days);
* ``target="purchase"``: 1 when the customer makes at least one purchase in the window (default 7 days),
  the "will purchase in the next N days" propensity question.

Labels are computed for the customers given (those active at T, see
:func:`models.churn.features.build_features`); the window must lie inside the data, which
:func:`label_window_end` lets callers check.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TARGETS = ("churn", "purchase")
DEFAULT_WINDOW_DAYS = {"churn": 90, "purchase": 7}


def window_days_for(target: str, window_days: int | None) -> int:
    """The label window: ``window_days`` when given, else the target's default (90 churn, 7 purchase)."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    if window_days is None:
        return DEFAULT_WINDOW_DAYS[target]
    if isinstance(window_days, bool) or not isinstance(window_days, (int, np.integer)) or window_days < 1:
        raise ValueError(f"window_days must be a positive integer, got {window_days!r}")
    return int(window_days)


def label_window_end(cutoff, window_days: int) -> pd.Timestamp:
    """The first instant after the label window of a snapshot at ``cutoff``."""
    return pd.Timestamp(cutoff) + pd.Timedelta(days=int(window_days))


def build_labels(transactions: pd.DataFrame, customer_ids, cutoff, window_days: int, target: str = "churn") -> np.ndarray:
    """0/1 labels aligned with ``customer_ids`` for the window ``[cutoff, cutoff + window_days)``."""
    window_days = window_days_for(target, window_days)
    start = np.datetime64(pd.Timestamp(cutoff), "ns")
    end = np.datetime64(label_window_end(cutoff, window_days), "ns")
    dates = transactions["purchase_date"].to_numpy("datetime64[ns]")
    in_window = (dates >= start) & (dates < end)
    buyers = pd.Index(pd.unique(transactions["customer_id"].to_numpy()[in_window]))
    bought = buyers.get_indexer(np.asarray(customer_ids)) >= 0
    return (bought if target == "purchase" else ~bought).astype(np.int8)
