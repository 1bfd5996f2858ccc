"""The top-k recommendation engine shared by both recommender families (item-CF and SVD++).

A :class:`Recommender` holds everything a request needs as plain numpy arrays, computed at fit time:

* ``customer_ids`` / ``product_ids``: string ids in index order (index = row of the user arrays,
  column of the score vectors);
* the purchase histories as a CSR matrix (customers x products, boolean): what ``exclude_purchased``
  removes;
* ``popularity`` (one float per product): the cold-start ranking and the tie-breaker;
* a *scorer* of one family (see :class:`Scorer`), which turns a customer index into one score per product;
* optionally a content blend (:class:`models.recommenders.content.ContentBlend`), a post-scorer applied to any
  family's scores, and a demographic segment table (:class:`models.recommenders.coldstart.SegmentTable`),
  consulted only for customers unknown to the model.

It saves to, and loads from, one compact ``.npz`` file (no pickles): the pyfunc serving class
(``models/recommenders/pyfunc.py``) loads it once and answers each request with a few vector operations.

Scorer protocol
---------------
A scorer is any class with:

* ``kind: ClassVar[str]``: its family name, a key of :data:`SCORER_CLASSES` (``"itemcf"``, ``"svdpp"``);
* ``to_arrays() -> dict[str, np.ndarray]``: its state as numeric/string numpy arrays, keys prefixed with
  ``f"{kind}_"`` so they never clash with the engine's own keys (:data:`ENGINE_KEYS`);
* ``from_arrays(arrays) -> scorer`` (classmethod): the inverse. ``arrays`` is the whole mapping read from
  the ``.npz``, so a scorer may also read the engine keys (``product_ids``, ``purchased_indptr``, ...);
  precompute here whatever makes a request cheap;
* ``scores(user_index: int) -> np.ndarray``: float64, one finite score per product (higher is better)
  for the known customer at ``user_index``;
* ``score_users(user_indices: np.ndarray) -> np.ndarray``: float64 ``(len(user_indices), n_products)``,
  the same scores for many customers at once, vectorised (used to evaluate every customer in training);
* optionally ``reasons(user_index: int, items: np.ndarray) -> list[str]``: one short reason per
  recommended product index (item-CF: ``because you bought <product_id>``). Without it the engine
  gives ``<kind> score``.

Ranking: products by score, highest first; equal scores by popularity (more popular first), then by
index. Excluded products (already bought, when ``exclude_purchased``) are never returned; a list is
shorter than ``k`` only when the catalogue runs out. An unknown customer gets the top of their segment's row
of the segment table when the request's demographics name a segment the table knows (reason
``popular with customers like you (<segment>)``), else the popular products with reason ``popular``. A known
customer's answer never reads the request's demographics.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import ClassVar, Mapping, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from scipy import sparse

from models.recommenders.coldstart import SEGMENT_REASON, Demographics, SegmentTable
from models.recommenders.content import ContentBlend
from models.threads import row_blocks, thread_map

logger = logging.getLogger(__name__)

# kind -> "module:ClassName"; imported lazily so one family works before (or without) the other.
SCORER_CLASSES: dict[str, str] = {
    "itemcf": "models.recommenders.itemcf:ItemCFScorer",
    "svdpp": "models.recommenders.svdpp:FactorScorer",
    "popularity": "models.recommenders.popularity:PopularityScorer",
    "segment": "models.recommenders.coldstart:SegmentScorer",
}
_KEEP = object()
ENGINE_KEYS = ("kind", "customer_ids", "product_ids", "purchased_indptr", "purchased_indices", "popularity")
POPULAR_REASON = "popular"
OUTPUT_COLUMNS = ["customer_id", "rank", "product_id", "score", "reason"]


@runtime_checkable
class Scorer(Protocol):
    """What a recommender family provides to the engine (see the module docstring)."""

    kind: ClassVar[str]

    def to_arrays(self) -> dict[str, np.ndarray]: ...

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> "Scorer": ...

    def scores(self, user_index: int) -> np.ndarray: ...

    def score_users(self, user_indices: np.ndarray) -> np.ndarray: ...


def scorer_class(kind: str) -> type:
    """The scorer class registered for ``kind`` (imported on first use)."""
    try:
        module_name, class_name = SCORER_CLASSES[kind].split(":")
    except KeyError:
        raise ValueError(f"unknown recommender kind {kind!r}; expected one of {', '.join(SCORER_CLASSES)}") from None
    return getattr(importlib.import_module(module_name), class_name)


def top_k_mask(values: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of exactly ``k`` entries per row (``0 < k <= columns``): the largest values, equal
    values at the cut going to the earlier column."""
    n_cols = values.shape[1]
    kth = np.partition(values, n_cols - k, axis=1)[:, n_cols - k][:, None]
    chosen = values >= kth
    surplus = np.flatnonzero(chosen.sum(axis=1) > k)  # rows whose cut falls inside a run of ties
    if len(surplus):
        equal = values[surplus] == kth[surplus]
        room = k - (values[surplus] > kth[surplus]).sum(axis=1, keepdims=True)
        chosen[surplus] &= ~equal | (np.cumsum(equal, axis=1) <= room)
    return chosen


def rank_top_k(scores: np.ndarray, k: int, tie_rank: np.ndarray,
               tie_order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` columns of each row of ``scores``, best first, vectorised over rows.

    ``tie_rank`` gives each column's place among equal scores (0 first; a permutation of the columns);
    ``tie_order`` is its inverse (``argsort(tie_rank)``), computed when not given.
    Entries equal to ``-inf`` are never returned: their slots hold index ``-1`` and score ``-inf``.
    Returns ``(indices, values)``, both ``(rows, min(k, n_columns))``.
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    n_rows, n_cols = scores.shape
    k = min(int(k), n_cols)
    if n_rows == 0 or k == 0:
        return np.empty((n_rows, k), dtype=np.int64), np.empty((n_rows, k))
    if n_rows == 1:
        indices, values = _rank_one(scores[0], k, tie_rank)
        return indices[None, :], values[None, :]
    order = np.argsort(tie_rank, kind="stable") if tie_order is None else tie_order
    permuted = scores[:, order]
    chosen = top_k_mask(permuted, k)
    cols = np.nonzero(chosen)[1].reshape(n_rows, k)  # row-major: k per row, in tie order
    values = np.take_along_axis(permuted, cols, axis=1)
    best_first = np.argsort(-values, axis=1, kind="stable")
    cols = np.take_along_axis(cols, best_first, axis=1)
    values = np.take_along_axis(values, best_first, axis=1)
    indices = order[cols]
    indices[np.isneginf(values)] = -1
    return indices, values


def tie_ranks(popularity: np.ndarray) -> np.ndarray:
    """Each product's place among equal scores: the more popular first, then the lower index (0 first)."""
    popularity = np.asarray(popularity, dtype=float)
    ranks = np.empty(len(popularity), dtype=np.int64)
    ranks[np.argsort(-popularity, kind="stable")] = np.arange(len(popularity))
    return ranks


def _rank_one(scores: np.ndarray, k: int, tie_rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rank_top_k` for one row (a request): the same order, without touching every column twice."""
    n_cols = len(scores)
    kth = np.partition(scores, n_cols - k)[n_cols - k]
    candidates = np.flatnonzero(scores >= kth)
    ranked = candidates[np.lexsort((tie_rank[candidates], -scores[candidates]))][:k]
    values = scores[ranked]
    ranked[np.isneginf(values)] = -1
    return ranked, values


class Recommender:
    """Top-k recommendations from a fitted scorer, with purchase exclusion, an optional content blend and a
    demographic or popularity fallback for unknown customers."""

    def __init__(self, scorer: Scorer, customer_ids, product_ids, purchased: sparse.spmatrix, popularity, *,
                 blend: ContentBlend | None = None, segments: SegmentTable | None = None):
        self.scorer = scorer
        self.kind = scorer.kind
        self.customer_ids = np.asarray(customer_ids, dtype=str)
        self.product_ids = np.asarray(product_ids, dtype=str)
        self.purchased = sparse.csr_matrix(purchased, dtype=bool)
        self.purchased.sort_indices()
        self.popularity = np.asarray(popularity, dtype=float)
        n_users, n_items = len(self.customer_ids), len(self.product_ids)
        if self.purchased.shape != (n_users, n_items):
            raise ValueError(f"purchased has shape {self.purchased.shape}, expected ({n_users}, {n_items})")
        if self.popularity.shape != (n_items,):
            raise ValueError(f"popularity has shape {self.popularity.shape}, expected ({n_items},)")
        for name, part in (("blend", blend), ("segments", segments)):
            if part is not None and part.n_products != n_items:
                raise ValueError(f"{name} covers {part.n_products} products, expected {n_items}")
        self.blend, self.segments = blend, segments
        self._index = {cid: i for i, cid in enumerate(self.customer_ids.tolist())}
        if len(self._index) != n_users:
            raise ValueError("customer_ids are not unique")
        self.tie_rank = tie_ranks(self.popularity)
        self._popular_order = np.argsort(self.tie_rank)  # = tie order

    def with_parts(self, *, blend: ContentBlend | None = _KEEP, segments: SegmentTable | None = _KEEP) -> "Recommender":
        """The same recommender with another content blend and/or segment table (None removes one)."""
        return Recommender(self.scorer, self.customer_ids, self.product_ids, self.purchased, self.popularity,
                           blend=self.blend if blend is _KEEP else blend,
                           segments=self.segments if segments is _KEEP else segments)

    # --- persistence -----------------------------------------------------------------------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "kind": np.array(self.kind),
            "customer_ids": self.customer_ids,
            "product_ids": self.product_ids,
            "purchased_indptr": self.purchased.indptr.astype(np.int64),
            "purchased_indices": self.purchased.indices.astype(np.int32),
            "popularity": self.popularity,
        }
        for owner, part in ((f"scorer {self.kind!r}", self.scorer), ("the blend", self.blend),
                            ("the segment table", self.segments)):
            own = part.to_arrays() if part is not None else {}
            clash = sorted(set(own) & set(arrays))
            if clash:
                raise ValueError(f"{owner} uses engine key(s) {clash}")
            arrays.update(own)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> "Recommender":
        missing = [key for key in ENGINE_KEYS if key not in arrays]
        if missing:
            raise ValueError(f"recommender arrays lack {', '.join(missing)}")
        customer_ids, product_ids = arrays["customer_ids"], arrays["product_ids"]
        indices = arrays["purchased_indices"]
        purchased = sparse.csr_matrix(
            (np.ones(len(indices), dtype=bool), indices, arrays["purchased_indptr"]),
            shape=(len(customer_ids), len(product_ids)),
        )
        scorer = scorer_class(str(arrays["kind"])).from_arrays(arrays)
        return cls(scorer, customer_ids, product_ids, purchased, arrays["popularity"],
                   blend=ContentBlend.from_arrays(arrays), segments=SegmentTable.from_arrays(arrays))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        np.savez_compressed(path, **self.to_arrays())
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Recommender":
        with np.load(path, allow_pickle=False) as data:
            return cls.from_arrays({key: data[key] for key in data.files})

    # --- recommendations -------------------------------------------------------------------------

    @property
    def n_products(self) -> int:
        return len(self.product_ids)

    def customer_index(self, customer_id: str) -> int | None:
        return self._index.get(customer_id)

    def popular(self, k: int) -> np.ndarray:
        """The ``k`` most popular product indices."""
        return self._popular_order[:k]

    def _exclude(self, scores: np.ndarray, user_indices: np.ndarray) -> np.ndarray:
        bought = self.purchased[user_indices].tocoo()
        scores[bought.row, bought.col] = -np.inf
        return scores

    def top_k_indices(self, user_indices, k: int, exclude_purchased: bool = True,
                      chunk_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k product indices and scores for known customers, vectorised in chunks of rows.

        Returns ``(indices, scores)`` of shape ``(len(user_indices), min(k, n_products))``; ``-1`` marks
        an empty slot (every remaining product was excluded). A chunk's dense score block holds about
        4 million floats (32 MB) unless ``chunk_size`` says how many customers to score at once; chunks
        run on threads (:mod:`models.threads`), one per core.
        """
        user_indices = np.asarray(user_indices, dtype=np.int64)
        chunk_size = chunk_size or max(1, (1 << 22) // max(self.n_products, 1))
        width = min(int(k), self.n_products)
        out_idx = np.empty((len(user_indices), width), dtype=np.int64)
        out_val = np.empty((len(user_indices), width))

        def rank_chunk(positions: np.ndarray) -> None:
            rows = user_indices[positions]
            scores = np.asarray(self.scorer.score_users(rows), dtype=float)
            if self.blend is not None:
                scores = self.blend.apply(scores, self.purchased[rows])
            if exclude_purchased:
                scores = self._exclude(scores, rows)
            out_idx[positions], out_val[positions] = rank_top_k(scores, width, self.tie_rank, self._popular_order)

        thread_map(rank_chunk, row_blocks(len(user_indices), chunk_size))
        return out_idx, out_val

    def segment_rows(self, customer_ids: list[str], demographics: Demographics | None) -> dict[int, tuple[int, str]]:
        """``{position in customer_ids: (segment row, segment label)}`` of the unknown customers whose demographics
        name a segment of the table; every other customer is answered without demographics."""
        if self.segments is None or not demographics:
            return {}
        unknown = [i for i, c in enumerate(customer_ids) if c not in self._index]
        if not unknown:
            return {}
        values = {a: [column[i] for i in unknown] for a, column in demographics.items()}
        rows, labels = self.segments.lookup(values, len(unknown))
        return {i: (int(row), label) for i, row, label in zip(unknown, rows.tolist(), labels) if label}

    def segment_items(self, row: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The top-k products of a segment row (ties by popularity): ``(product indices, scores)``."""
        return _rank_one(self.segments.scores(row), min(int(k), self.n_products), self.tie_rank)

    def top_k_all(self, customer_ids, k: int, exclude_purchased: bool = True,
                  demographics: Demographics | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(product indices, scores)`` best first for each customer, computed for all at once: known customers
        by the scorer (vectorised), unknown ones by their segment or popularity."""
        customer_ids = [str(c) for c in customer_ids]
        positions = [self._index.get(c) for c in customer_ids]
        popular = self.popular(k)
        result = [(popular, self.popularity[popular])] * len(customer_ids)
        by_row: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for i, (row, _) in self.segment_rows(customer_ids, demographics).items():
            if row not in by_row:
                by_row[row] = self.segment_items(row, k)
            result[i] = by_row[row]
        known = [i for i, p in enumerate(positions) if p is not None]
        if known:
            idx, vals = self.top_k_indices([positions[i] for i in known], k, exclude_purchased)
            for i, items, values in zip(known, idx, vals):
                keep = items >= 0
                result[i] = (items[keep], values[keep])
        return result

    def recommend_all(self, customer_ids, k: int, exclude_purchased: bool = True,
                      demographics: Demographics | None = None) -> dict[str, list[str]]:
        """``{customer_id: [product_id, ...]}`` best first, for many customers at once (see :meth:`top_k_all`)."""
        customer_ids = [str(c) for c in customer_ids]
        lists = self.top_k_all(customer_ids, k, exclude_purchased, demographics)
        return {c: self.product_ids[items].tolist() for c, (items, _) in zip(customer_ids, lists)}

    def recommend_items(self, customer_id: str, k: int, exclude_purchased: bool = True
                        ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """One customer's top-k: ``(product indices, scores, reasons)``, best first (unknown: popular)."""
        position = self._index.get(customer_id)
        if position is None:
            items = self.popular(k)
            return items, self.popularity[items], [POPULAR_REASON] * len(items)
        base = np.array(self.scorer.scores(position), dtype=float)
        scores = base if self.blend is None else self.blend.apply(base, self.purchased[position])[0]
        start, end = self.purchased.indptr[position:position + 2]
        if exclude_purchased:
            scores[self.purchased.indices[start:end]] = -np.inf
        items, scores = _rank_one(scores, min(int(k), self.n_products), self.tie_rank)
        keep = items >= 0
        items, scores = items[keep], scores[keep]
        explain = getattr(self.scorer, "reasons", None)
        reasons = explain(position, items) if explain else [f"{self.kind} score"] * len(items)
        if self.blend is not None:
            reasons = self.blend.explain(base, self.purchased.indices[start:end], items, reasons, self.product_ids)
        return items, scores, reasons

    def recommend_frame(self, customer_ids, k: int, exclude_purchased: bool = True,
                        demographics: Demographics | None = None) -> pd.DataFrame:
        """Rows ``customer_id, rank, product_id, score, reason`` for each customer, in request order.

        ``demographics`` (attribute -> one value per customer, checked: see :mod:`models.recommenders.coldstart`)
        is read only for customers unknown to the model.
        """
        customer_ids = [str(c) for c in customer_ids]
        segments = self.segment_rows(customer_ids, demographics)
        records = []
        for i, customer_id in enumerate(customer_ids):
            if i in segments:
                row, label = segments[i]
                items, scores = self.segment_items(row, k)
                reasons = [SEGMENT_REASON.format(label=label)] * len(items)
            else:
                items, scores, reasons = self.recommend_items(customer_id, k, exclude_purchased)
            records.extend(zip([customer_id] * len(items), range(1, len(items) + 1),
                               self.product_ids[items].tolist(), scores.tolist(), reasons))
        if not records:
            return pd.DataFrame({"customer_id": pd.Series(dtype=str), "rank": pd.Series(dtype=np.int64),
                                 "product_id": pd.Series(dtype=str), "score": pd.Series(dtype=float),
                                 "reason": pd.Series(dtype=str)})
        # from_records on plain tuples is the cheapest frame pandas builds (one request = one frame).
        return pd.DataFrame.from_records(records, columns=OUTPUT_COLUMNS)

    def recommend(self, customer_id: str, k: int, exclude_purchased: bool = True) -> pd.DataFrame:
        """One customer's top-k as rows ``customer_id, rank, product_id, score, reason``."""
        return self.recommend_frame([customer_id], k, exclude_purchased)
