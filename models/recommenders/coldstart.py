"""Demographic cold start: what customers like a new customer buy, learnt at fit time, served as a table lookup.

Both recommender families share it: the engine (:mod:`models.recommenders.engine`) consults a
:class:`SegmentTable` only for a customer unknown to the model, so a known customer's answer never depends on
the demographics a request sends.

Values (the same rules at fit time, for the ``customers`` table, and at serving time)
-----------------------------------------------------------------------------------
* ``age``: a whole number from ``AGE.low`` to ``AGE.high`` (:data:`models.recommenders.contract.AGE`), put in
  the bands ``13-24, 25-34, 35-44, 45-54, 55+`` (:data:`AGE_EDGES`). In a request anything else (``"old"``,
  ``500``, ``34.5``, ``true``) is a 400 naming the column (:func:`request_demographics`); in the customers table it
  is unknown.
* ``gender``, ``location``, ``profession``: text (an integer is read as its text), matched without regard to case
  or surrounding spaces (``"female "`` is ``Female``); a value not seen at fit time (a new city) is unknown. In a
  request, a value that is not text is a 400 naming the column.
* null, NaN or a missing column: unknown.

Segment popularity (:class:`SegmentPopularity`, fitted; :class:`SegmentTable`, served)
------------------------------------------------------------------------------------
For the chosen attributes (an ordered tuple such as ``("gender", "age")``) every combination of "a value or
unknown" per attribute is a *segment*; code 0 means unknown. A segment's score for product ``j`` is the share of
its distinct (customer, product) purchases in the last ``window_days`` before the reference date, smoothed
towards its parent:

``p(j | s) = (n_sj + strength * p(j | parent(s))) / (n_s + strength)``

where ``parent(s)`` forgets the last known attribute of ``s`` (Female, 25-34 -> Female -> everyone) and the root
is global popularity (the share of all distinct purchases). A small segment (small ``n_s``) stays close to its
parent; ``strength`` -> infinity is global popularity. Every segment's row is precomputed, so a request with
any subset of the attributes unknown is one row lookup: ``codes @ strides`` (no group-by per request). The
reason names the known attributes: ``popular with customers like you (Female, 25-34)``; a request with none
of them known gets the engine's popular products, reason ``popular``.
"""

from __future__ import annotations

import math
from collections import Counter
from itertools import product as cartesian
from typing import ClassVar, Mapping, Sequence

import numpy as np
import pandas as pd

from models.recommenders.contract import AGE, DEMOGRAPHICS

ATTRIBUTES = tuple(column.name for column in DEMOGRAPHICS)  # age, gender, location, profession
AGE_EDGES = (25, 35, 45, 55)  # the lower bounds of the age bands after the first
PREFIX = "demo_"
SEGMENT_REASON = "popular with customers like you ({label})"

Demographics = Mapping[str, Sequence]  # attribute -> one value per customer (aligned with the customer ids)


# --- values ----------------------------------------------------------------------------------------


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and math.isnan(value))


def age_value(value) -> int | None:
    """``value`` as an age: a whole number within the contract's limits, else None (unknown)."""
    if _missing(value) or isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        number = int(value)
    elif isinstance(value, (float, np.floating)) and float(value).is_integer():
        number = int(value)
    else:
        return None
    return number if AGE.low <= number <= AGE.high else None


def text_value(value) -> str | None:
    """``value`` as a demographic text (stripped; an integer as its text), else None (unknown)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        value = str(int(value))
    if not isinstance(value, str):
        return None
    return value.strip() or None


def age_labels(edges: Sequence[int] = AGE_EDGES) -> list[str]:
    """``["13-24", "25-34", "35-44", "45-54", "55+"]`` for the default edges."""
    lows = [AGE.low, *edges]
    return [f"{low}-{high - 1}" for low, high in zip(lows, edges)] + [f"{edges[-1]}+"]


def request_demographics(frame: pd.DataFrame) -> dict[str, list] | None:
    """The demographic columns of a request, checked: ``{attribute: [value or None per row]}``, None without any.

    Raises :func:`models.serving.bad_request` naming the column and row of a malformed value (see the module
    docstring); null values are unknown.
    """
    from models.serving import bad_request

    present = [column for column in DEMOGRAPHICS if column.name in frame.columns]
    if not present:
        return None
    out = {}
    for column in present:
        values = []
        for row, value in enumerate(frame[column.name].tolist()):
            if _missing(value):
                values.append(None)
            elif column is AGE:
                values.append(AGE.whole_number(value, row))
            else:
                text = text_value(value)
                if text is None and not isinstance(value, str):
                    raise bad_request(f"column {column.name!r} in row {row} must be text or null, got {value!r}")
                values.append(text)
        out[column.name] = values
    return out


def table_demographics(customers: pd.DataFrame, customer_ids: Sequence[str] | None = None) -> dict[str, list]:
    """The demographic columns of a ``customers`` table (for ``customer_ids``, in that order: missing ids have
    unknown values), as the engine takes them."""
    frame = customers.assign(customer_id=customers["customer_id"].astype(str)).drop_duplicates("customer_id")
    if customer_ids is not None:
        frame = frame.set_index("customer_id").reindex(pd.Index(np.asarray(customer_ids, dtype=str))).reset_index()
    return {a: [None if _missing(v) else v for v in frame[a].tolist()] for a in ATTRIBUTES if a in frame.columns}


# --- encoding --------------------------------------------------------------------------------------


class DemographicEncoder:
    """Attribute values -> integer codes (0 = unknown, ``i + 1`` = ``vocab[attribute][i]``)."""

    def __init__(self, attributes: Sequence[str], vocab: Mapping[str, Sequence[str]],
                 age_edges: Sequence[int] = AGE_EDGES):
        unknown = sorted(set(attributes) - set(ATTRIBUTES))
        if unknown or len(set(attributes)) != len(attributes):
            raise ValueError(f"attributes must be distinct names among {', '.join(ATTRIBUTES)}, got {list(attributes)}")
        self.attributes = tuple(attributes)
        self.age_edges = tuple(int(e) for e in age_edges)
        self.vocab = {a: [str(v) for v in (age_labels(self.age_edges) if a == "age" else vocab[a])]
                      for a in self.attributes}
        self._lookup = {a: {v.casefold(): i + 1 for i, v in enumerate(self.vocab[a])}
                        for a in self.attributes if a != "age"}

    @classmethod
    def fit(cls, attributes: Sequence[str], values: Demographics) -> "DemographicEncoder":
        """Vocabularies from the customers' values: each text value once, in its most frequent spelling."""
        vocab = {}
        for a in attributes:
            if a == "age":
                continue
            counts = Counter(t for t in map(text_value, values.get(a, ())) if t)
            spelling: dict[str, str] = {}
            for value, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
                spelling.setdefault(value.casefold(), value)
            vocab[a] = sorted(spelling.values())
        return cls(attributes, vocab)

    @property
    def sizes(self) -> np.ndarray:
        """Known values per attribute (codes run 0..size)."""
        return np.array([len(self.vocab[a]) for a in self.attributes], dtype=np.int64)

    def encode(self, values: Demographics, n: int) -> np.ndarray:
        """``(n, len(attributes))`` codes; an attribute absent from ``values`` is unknown for every row."""
        codes = np.zeros((n, len(self.attributes)), dtype=np.int64)
        for k, a in enumerate(self.attributes):
            column = values.get(a)
            if column is None:
                continue
            if len(column) != n:
                raise ValueError(f"{a} has {len(column)} values for {n} customers")
            if a == "age":
                ages = np.array([np.nan if (age := age_value(v)) is None else age for v in column], dtype=float)
                bands = np.searchsorted(np.asarray(self.age_edges, dtype=float), np.nan_to_num(ages), side="right")
                codes[:, k] = np.where(np.isnan(ages), 0, bands + 1)
            else:
                lookup = self._lookup[a]
                codes[:, k] = [lookup.get(t.casefold(), 0) if (t := text_value(v)) else 0 for v in column]
        return codes

    def label(self, codes: Sequence[int]) -> str:
        """``"Female, 25-34"``: the known values of one code row, in attribute order ("" when none is known)."""
        return ", ".join(self.vocab[a][c - 1] for a, c in zip(self.attributes, np.asarray(codes).tolist()) if c > 0)

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"{PREFIX}attributes": np.array(self.attributes, dtype=str),
                  f"{PREFIX}age_edges": np.array(self.age_edges, dtype=np.int64)}
        arrays.update({f"{PREFIX}vocab_{a}": np.array(self.vocab[a], dtype=str) for a in self.attributes})
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> "DemographicEncoder":
        attributes = [str(a) for a in arrays[f"{PREFIX}attributes"].tolist()]
        vocab = {a: [str(v) for v in arrays[f"{PREFIX}vocab_{a}"].tolist()] for a in attributes}
        return cls(attributes, vocab, [int(e) for e in arrays[f"{PREFIX}age_edges"].tolist()])


def _strides(sizes: np.ndarray) -> np.ndarray:
    """Row of a code combination = ``codes @ strides`` (codes 0..size per attribute, last attribute fastest)."""
    span = sizes + 1
    return np.array([int(np.prod(span[k + 1:])) for k in range(len(span))], dtype=np.int64)


def _key_codes(sizes: np.ndarray) -> np.ndarray:
    """Every code combination, in row order: ``(n_keys, n_attributes)``."""
    return np.array(list(cartesian(*[range(int(s) + 1) for s in sizes])), dtype=np.int64).reshape(-1, len(sizes))


# --- the served table ------------------------------------------------------------------------------


class SegmentTable:
    """The served form of segment popularity: the encoder and one score row per segment (see the module docstring)."""

    def __init__(self, encoder: DemographicEncoder, table: np.ndarray):
        self.encoder = encoder
        self.strides = _strides(encoder.sizes)
        self.table = np.asarray(table, dtype=np.float32)
        n_keys = int(np.prod(encoder.sizes + 1))
        if self.table.ndim != 2 or self.table.shape[0] != n_keys:
            raise ValueError(f"the segment table has shape {self.table.shape}, expected ({n_keys}, n_products)")

    @property
    def attributes(self) -> tuple[str, ...]:
        return self.encoder.attributes

    @property
    def n_products(self) -> int:
        return self.table.shape[1]

    def lookup(self, values: Demographics, n: int) -> tuple[np.ndarray, list[str]]:
        """``(rows, labels)`` of ``n`` customers' values; label "" where no attribute of the table is known."""
        codes = self.encoder.encode(values, n)
        return codes @ self.strides, [self.encoder.label(row) for row in codes]

    def scores(self, row: int) -> np.ndarray:
        return self.table[row].astype(float)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {**self.encoder.to_arrays(), f"{PREFIX}table": self.table}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> "SegmentTable | None":
        """The table stored in a recommender's arrays, or None (a model without one)."""
        if f"{PREFIX}table" not in arrays:
            return None
        return cls(DemographicEncoder.from_arrays(arrays), arrays[f"{PREFIX}table"])


# --- fitting ---------------------------------------------------------------------------------------


def buyer_pairs(transactions: pd.DataFrame, customer_ids: Sequence[str], product_ids: Sequence[str], *,
                reference_date, window_days: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ``(customer index, product index)`` purchases in the window before ``reference_date``.

    A customer not in ``customer_ids`` gets index ``len(customer_ids)``; products outside ``product_ids`` drop.
    """
    from models.recommenders.popularity import window_mask

    rows = transactions.loc[window_mask(transactions["purchase_date"], reference_date, window_days),
                            ["customer_id", "product_id"]]
    users = pd.Index(np.asarray(customer_ids, dtype=str)).get_indexer(rows["customer_id"].astype(str))
    items = pd.Index(np.asarray(product_ids, dtype=str)).get_indexer(rows["product_id"].astype(str))
    users = np.where(users < 0, len(customer_ids), users).astype(np.int64)
    keep = items >= 0
    n_items = len(product_ids)
    pairs = np.unique(users[keep] * n_items + items[keep])
    return pairs // n_items, pairs % n_items


class SegmentPopularity:
    """Segment popularity, estimator style: ``fit`` sets ``encoder_``, ``counts_`` and ``table_`` (a
    :class:`SegmentTable`); :meth:`smoothed` gives the table for another strength without counting again."""

    def __init__(self, attributes: Sequence[str] = ("gender", "age"), strength: float = 100.0,
                 window_days: int | None = None):
        if not strength > 0:
            raise ValueError(f"strength must be positive, got {strength!r}")
        self.attributes = tuple(attributes)
        self.strength = float(strength)
        self.window_days = window_days

    def fit(self, customers: pd.DataFrame, transactions: pd.DataFrame, product_ids, *, reference_date,
            exclude_customers: Sequence[str] = ()) -> "SegmentPopularity":
        """Count the purchases before ``reference_date`` of the ``customers`` (a table with ``customer_id`` and some
        demographic columns) per segment; ``exclude_customers`` take no part (cut to zero)."""
        ids = customers["customer_id"].astype(str).drop_duplicates().to_numpy()
        values = table_demographics(customers, ids)
        self.encoder_ = DemographicEncoder.fit(self.attributes, values)
        # customers outside the table (index len(ids)) are unknown on every attribute
        codes = np.vstack([self.encoder_.encode(values, len(ids)), np.zeros((1, len(self.attributes)), np.int64)])
        users, items = buyer_pairs(transactions, ids, product_ids, reference_date=reference_date,
                                   window_days=self.window_days)
        if len(exclude_customers):
            keep = ~np.isin(users, pd.Index(ids).get_indexer(np.asarray(exclude_customers, dtype=str)))
            users, items = users[keep], items[keep]
        self.product_ids_ = np.asarray(product_ids, dtype=str)
        self.counts_ = self._count(codes[users], items, len(self.product_ids_))
        self.table_ = self.smoothed(self.strength)
        return self

    def _count(self, pair_codes: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
        """Purchases per segment and product: a pair counts in every segment its customer's codes match."""
        sizes = self.encoder_.sizes
        strides = _strides(sizes)
        n_keys = int(np.prod(sizes + 1))
        counts = np.zeros(n_keys * n_items)
        for chosen in cartesian((False, True), repeat=len(sizes)):  # each segment has one set of known attributes
            chosen = np.array(chosen, dtype=bool)
            masked = np.where(chosen, pair_codes, 0)
            ok = ((masked > 0) | ~chosen).all(axis=1)
            counts += np.bincount((masked[ok] @ strides) * n_items + items[ok], minlength=n_keys * n_items)
        return counts.reshape(n_keys, n_items)

    def smoothed(self, strength: float) -> SegmentTable:
        """The table for ``strength``: every segment smoothed towards its parent, parents first."""
        if not strength > 0:
            raise ValueError(f"strength must be positive, got {strength!r}")
        sizes = self.encoder_.sizes
        strides, keys = _strides(sizes), _key_codes(sizes)
        counts = self.counts_
        share = np.zeros_like(counts)
        total = counts[0].sum()
        share[0] = counts[0] / total if total > 0 else 0.0
        depth = (keys > 0).sum(axis=1)
        for d in range(1, len(sizes) + 1):
            rows = np.flatnonzero(depth == d)
            parent_codes = keys[rows].copy()
            last = len(sizes) - 1 - np.argmax(parent_codes[:, ::-1] > 0, axis=1)  # the last known attribute
            parent_codes[np.arange(len(rows)), last] = 0
            parents = share[parent_codes @ strides]
            n_s = counts[rows].sum(axis=1, keepdims=True)
            share[rows] = (counts[rows] + strength * parents) / (n_s + strength)
        return SegmentTable(self.encoder_, share)


class SegmentScorer:
    """Segment popularity for known customers by their own (fit-time) demographics: the segment-popularity baseline
    (a scorer in the sense of :mod:`models.recommenders.engine`)."""

    kind: ClassVar[str] = "segment"

    def __init__(self, table: SegmentTable, customer_rows: np.ndarray, labels: Sequence[str] | None = None):
        self.table = table
        self.customer_rows = np.asarray(customer_rows, dtype=np.int64)
        self.labels = list(labels) if labels is not None else None

    @classmethod
    def for_customers(cls, table: SegmentTable, values: Demographics, n: int) -> "SegmentScorer":
        rows, labels = table.lookup(values, n)
        return cls(table, rows, labels)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"segment_customer_rows": self.customer_rows}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> "SegmentScorer":
        return cls(SegmentTable.from_arrays(arrays), arrays["segment_customer_rows"])

    def scores(self, user_index: int) -> np.ndarray:
        return self.table.scores(self.customer_rows[user_index])

    def score_users(self, user_indices: np.ndarray) -> np.ndarray:
        return self.table.table[self.customer_rows[np.asarray(user_indices)]].astype(float)

    def reasons(self, user_index: int, items: np.ndarray) -> list[str]:
        label = self.labels[user_index] if self.labels is not None else ""
        return [SEGMENT_REASON.format(label=label) if label else "popular"] * len(items)
