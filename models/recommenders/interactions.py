"""The customer x product interaction matrix (scipy.sparse CSR; never a dense pivot).

Memory: the log keeps int32 codes and one int8 event-type code per row (not the id or type strings): 24 bytes
per purchase row and 17 per weighted event row (the event type used to take 48 bytes a row as a numpy string).

Value of a (customer, product) cell, built from the rows dated before the reference date:

* purchases: ``log1p(sum of amount spent)`` (the implicit rating of the seeds); with a recency
  half-life ``h`` each amount counts ``0.5 ** (age_days / h)``, age measured back from the reference date;
  a negative net amount (returns) counts as 0;
* behavioural events (optional): ``sum over event types of weight[type] * log1p(number of events)``,
  each event decayed the same way; types without a weight (page_view, search) are ignored.

:class:`InteractionLog` maps the ids to indices once (``customer_ids[i]`` is row ``i``,
``product_ids[j]`` column ``j``) and keeps per-row codes, amounts and ages, so matrices for other
half-lives or event weights (one per tuning trial) cost a few vector operations.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd
from scipy import sparse

logger = logging.getLogger(__name__)

WEIGHTED_EVENT_TYPES = ("product_view", "add_to_cart")
_DAY = np.timedelta64(1, "D")


CODE_DTYPE = np.int32  # row and column codes: a shop has far fewer than 2**31 customers or products


def _codes(values: pd.Series, index: pd.Index) -> np.ndarray:
    return index.get_indexer(values.astype(str)).astype(CODE_DTYPE)


def _ages(dates: pd.Series, reference: pd.Timestamp) -> np.ndarray:
    ages = (reference.to_datetime64() - dates.to_numpy(dtype="datetime64[ns]")) / _DAY
    return np.clip(ages.astype(float), 0.0, None)


def decay_factors(age_days: np.ndarray, half_life_days: float | None) -> np.ndarray:
    """``0.5 ** (age / half_life)``; all ones without a half-life."""
    if half_life_days is None:
        return np.ones_like(age_days, dtype=float)
    if not half_life_days > 0:
        raise ValueError(f"half_life_days must be positive, got {half_life_days!r}")
    return np.exp2(-np.asarray(age_days, dtype=float) / float(half_life_days))


@dataclass
class InteractionLog:
    """Purchases and events as index codes, ready to be turned into sparse matrices."""

    customer_ids: np.ndarray
    product_ids: np.ndarray
    reference_date: pd.Timestamp
    tx_user: np.ndarray
    tx_item: np.ndarray
    tx_amount: np.ndarray
    tx_age: np.ndarray
    ev_user: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=CODE_DTYPE))
    ev_item: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=CODE_DTYPE))
    ev_type: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int8))  # index in WEIGHTED_EVENT_TYPES
    ev_age: np.ndarray = field(default_factory=lambda: np.empty(0))

    @classmethod
    def from_frames(cls, transactions: pd.DataFrame, events: pd.DataFrame | None = None, *,
                    reference_date=None, customer_ids=None, product_ids=None) -> "InteractionLog":
        """Index the rows of ``transactions`` (and ``events``) dated before ``reference_date``.

        ``reference_date`` defaults to the day after the last purchase or event. ``customer_ids`` and
        ``product_ids`` fix the index (rows with other ids are dropped and counted in the log); by default
        they are the sorted ids seen in the purchases and the weighted event types.
        """
        for column in ("customer_id", "product_id", "amount", "purchase_date"):
            if column not in transactions.columns:
                raise ValueError(f"transactions lack column {column!r}")
        if events is not None:
            for column in ("customer_id", "product_id", "event_type", "event_date"):
                if column not in events.columns:
                    raise ValueError(f"events lack column {column!r}")
            events = events[events["event_type"].isin(WEIGHTED_EVENT_TYPES) & events["product_id"].notna()]
        if reference_date is None:
            last = transactions["purchase_date"].max()
            if events is not None and len(events):
                last = max(last, events["event_date"].max())
            reference_date = pd.Timestamp(last).normalize() + pd.Timedelta(days=1)
        reference_date = pd.Timestamp(reference_date)
        transactions = transactions[transactions["purchase_date"] < reference_date]
        if events is not None:
            events = events[events["event_date"] < reference_date]

        def ids(given, column: str) -> pd.Index:
            if given is not None:
                return pd.Index(np.asarray(given, dtype=str))
            seen = [transactions[column].astype(str)]
            if events is not None:
                seen.append(events[column].astype(str))
            return pd.Index(np.sort(pd.unique(pd.concat(seen, ignore_index=True))))

        users, items = ids(customer_ids, "customer_id"), ids(product_ids, "product_id")
        if not users.is_unique or not items.is_unique:
            raise ValueError("customer_ids and product_ids must be unique")
        tx_user, tx_item = _codes(transactions["customer_id"], users), _codes(transactions["product_id"], items)
        keep = (tx_user >= 0) & (tx_item >= 0)
        if not keep.all():
            logger.info("interactions: dropped %d purchase rows with customers or products outside the index",
                        int((~keep).sum()))
        log = cls(
            customer_ids=users.to_numpy(dtype=str), product_ids=items.to_numpy(dtype=str),
            reference_date=reference_date, tx_user=tx_user[keep], tx_item=tx_item[keep],
            tx_amount=pd.to_numeric(transactions["amount"]).to_numpy(dtype=float)[keep],
            tx_age=_ages(transactions["purchase_date"], reference_date)[keep],
        )
        if events is not None and len(events):
            ev_user, ev_item = _codes(events["customer_id"], users), _codes(events["product_id"], items)
            keep = (ev_user >= 0) & (ev_item >= 0)
            log.ev_user, log.ev_item = ev_user[keep], ev_item[keep]
            log.ev_type = pd.Index(WEIGHTED_EVENT_TYPES).get_indexer(events["event_type"]).astype(np.int8)[keep]
            log.ev_age = _ages(events["event_date"], reference_date)[keep]
        return log

    def before(self, reference_date) -> "InteractionLog":
        """The log of the rows dated before an earlier ``reference_date``, derived without re-reading the frames:
        equal to :meth:`from_frames` on the same frames at that date with this log's products (and the default
        customer index, which this log's must be: the customers seen before its own reference date)."""
        reference_date = pd.Timestamp(reference_date)
        if reference_date > self.reference_date:
            raise ValueError(f"reference_date {reference_date} is after the log's {self.reference_date}")
        shift = (self.reference_date - reference_date) / pd.Timedelta(days=1)
        tx_keep, ev_keep = self.tx_age > shift, self.ev_age > shift  # dated before the new reference date
        seen = np.union1d(self.tx_user[tx_keep], self.ev_user[ev_keep])
        recode = np.full(len(self.customer_ids), -1, dtype=CODE_DTYPE)
        recode[seen] = np.arange(len(seen), dtype=CODE_DTYPE)
        return InteractionLog(
            customer_ids=self.customer_ids[seen], product_ids=self.product_ids, reference_date=reference_date,
            tx_user=recode[self.tx_user[tx_keep]], tx_item=self.tx_item[tx_keep], tx_amount=self.tx_amount[tx_keep],
            tx_age=self.tx_age[tx_keep] - shift, ev_user=recode[self.ev_user[ev_keep]], ev_item=self.ev_item[ev_keep],
            ev_type=self.ev_type[ev_keep], ev_age=self.ev_age[ev_keep] - shift)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.customer_ids), len(self.product_ids)

    def customer_index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.customer_ids.tolist())}

    def product_index(self) -> dict[str, int]:
        return {p: j for j, p in enumerate(self.product_ids.tolist())}

    def _sum(self, users: np.ndarray, items: np.ndarray, values: np.ndarray) -> sparse.csr_matrix:
        """Sum ``values`` per (user, item) cell (duplicates added)."""
        matrix = sparse.csr_matrix((values, (users, items)), shape=self.shape, dtype=float)
        matrix.sum_duplicates()
        return matrix

    def matrix(self, half_life_days: float | None = None,
               event_weights: Mapping[str, float] | None = None) -> sparse.csr_matrix:
        """The weighted customer x product matrix (CSR, float64, no explicit zeros)."""
        spent = self._sum(self.tx_user, self.tx_item, self.tx_amount * decay_factors(self.tx_age, half_life_days))
        np.maximum(spent.data, 0.0, out=spent.data)
        total = spent.copy()
        np.log1p(total.data, out=total.data)
        for event_type, weight in (event_weights or {}).items():
            if event_type not in WEIGHTED_EVENT_TYPES:
                raise ValueError(f"event weight for {event_type!r}: only "
                                 f"{', '.join(WEIGHTED_EVENT_TYPES)} are weighted")
            if weight < 0:
                raise ValueError(f"event weight for {event_type!r} must be non-negative, got {weight!r}")
            if weight == 0:
                continue
            mask = self.ev_type == WEIGHTED_EVENT_TYPES.index(event_type)
            counts = self._sum(self.ev_user[mask], self.ev_item[mask],
                               decay_factors(self.ev_age[mask], half_life_days))
            np.log1p(counts.data, out=counts.data)
            total = total + float(weight) * counts
        total = sparse.csr_matrix(total)
        total.eliminate_zeros()
        total.sort_indices()
        return total

    def purchased(self) -> sparse.csr_matrix:
        """Boolean customer x product matrix: True where the customer bought the product."""
        matrix = sparse.csr_matrix((np.ones(len(self.tx_user), dtype=bool), (self.tx_user, self.tx_item)),
                                   shape=self.shape)
        matrix.sum_duplicates()
        matrix.sort_indices()
        return matrix


def build_interactions(transactions: pd.DataFrame, events: pd.DataFrame | None = None, *,
                       half_life_days: float | None = None, event_weights: Mapping[str, float] | None = None,
                       reference_date=None, customer_ids=None, product_ids=None
                       ) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
    """``(matrix, customer_ids, product_ids)`` in one call (see :class:`InteractionLog`)."""
    log = InteractionLog.from_frames(transactions, events, reference_date=reference_date,
                                     customer_ids=customer_ids, product_ids=product_ids)
    return log.matrix(half_life_days, event_weights), log.customer_ids, log.product_ids
