"""Popularity: the baseline both recommender families must beat, and their cold-start fallback.

A product's popularity is the number of distinct customers who bought it in the last ``window_days``
before the reference date (all history when ``window_days`` is None); ties are broken by the number
of purchase rows in the same window, then by product index. Every customer gets the same ranking,
minus what they already bought.
"""

from __future__ import annotations

from typing import ClassVar, Mapping

import numpy as np
import pandas as pd


def popularity_scores(transactions: pd.DataFrame, product_ids, *, reference_date=None,
                      window_days: int | None = None) -> np.ndarray:
    """One score per product of ``product_ids``: distinct buyers plus a fraction for the purchase count.

    The score is ``buyers + purchases / (1 + max purchases)``, so it orders by buyers first and by
    purchases among equal buyers. Only purchases dated in ``[reference_date - window_days,
    reference_date)`` count; ``reference_date`` defaults to the day after the last purchase.
    """
    product_index = pd.Index(np.asarray(product_ids, dtype=str))
    recent = transactions.loc[window_mask(transactions["purchase_date"], reference_date, window_days),
                              ["customer_id", "product_id"]]
    codes = product_index.get_indexer(recent["product_id"].astype(str))
    recent = recent.assign(item=codes)[codes >= 0]
    n = len(product_index)
    purchases = np.bincount(recent["item"].to_numpy(), minlength=n).astype(float)
    buyers = np.bincount(recent.drop_duplicates(["customer_id", "item"])["item"].to_numpy(), minlength=n)
    return buyers + purchases / (1.0 + purchases.max(initial=0.0))


def window_mask(dates: pd.Series, reference_date=None, window_days: int | None = None) -> pd.Series:
    """True for the dates in ``[reference_date - window_days, reference_date)`` (all before the reference date when
    ``window_days`` is None); ``reference_date`` defaults to the day after the last date."""
    reference = (pd.Timestamp(dates.max()).normalize() + pd.Timedelta(days=1) if reference_date is None
                 else pd.Timestamp(reference_date))
    mask = dates < reference
    if window_days is not None:
        if window_days < 1:
            raise ValueError(f"window_days must be a positive number of days, got {window_days!r}")
        mask &= dates >= reference - pd.Timedelta(days=window_days)
    return mask


class PopularityRecommender:
    """Estimator-style wrapper: ``fit`` computes ``popularity_`` over ``product_ids_``."""

    def __init__(self, window_days: int | None = None):
        self.window_days = window_days

    def fit(self, transactions: pd.DataFrame, product_ids, reference_date=None) -> "PopularityRecommender":
        self.product_ids_ = np.asarray(product_ids, dtype=str)
        self.popularity_ = popularity_scores(transactions, self.product_ids_, reference_date=reference_date,
                                             window_days=self.window_days)
        return self

    def scorer(self, n_users: int) -> "PopularityScorer":
        return PopularityScorer(self.popularity_, n_users)


class PopularityScorer:
    """The same popularity score for every customer (a scorer in the sense of ``models.recommenders.engine``)."""

    kind: ClassVar[str] = "popularity"

    def __init__(self, popularity: np.ndarray, n_users: int):
        self.popularity = np.asarray(popularity, dtype=float)
        self.n_users = int(n_users)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"popularity_n_users": np.array(self.n_users)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> "PopularityScorer":
        return cls(arrays["popularity"], int(arrays["popularity_n_users"]))

    def scores(self, user_index: int) -> np.ndarray:
        return self.popularity.copy()

    def score_users(self, user_indices: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity, (len(user_indices), len(self.popularity))).copy()

    def reasons(self, user_index: int, items: np.ndarray) -> list[str]:
        return ["popular"] * len(items)
