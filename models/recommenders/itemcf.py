"""Item-based collaborative filtering on the sparse customer x product matrix.

Similarity of a history product ``i`` to a candidate ``j``, from the columns ``x_i``, ``x_j`` of the
weighted interaction matrix (``models.recommenders.interactions``):

* ``cosine``: ``<x_i, x_j> / (|x_i| |x_j|)``;
* ``asymmetric`` (asymmetric cosine, Aiolli 2013): ``<x_i, x_j> / (|x_i|^(2 alpha) |x_j|^(2 (1 - alpha)))``;
  ``alpha = 0.5`` is the cosine, a larger ``alpha`` favours popular candidates;
* ``shrunk``: the cosine times ``n_ij / (n_ij + shrinkage)``, where ``n_ij`` counts the customers with
  both products, so similarities resting on few customers shrink towards 0.

Each product keeps its ``n_neighbours`` most similar products (positive similarity only; ties at the
cut go to the lower product index): the truncated similarity ``S`` is a sparse products x products
matrix. A customer's score for ``j`` is ``sum_i x_ui * sim(i, j)`` over the customer's history
(weighted by recency when a half-life is set): for all customers at once the product ``X @ S``; for
one customer a ``bincount`` over the similarity rows of the few products in the history. When the
neighbourhoods cover a third of the catalogue or more, ``S`` is held dense, which is no bigger and turns both products into plain array arithmetic. The model artifact stores
``S`` as padded neighbour lists, best first. The reason given for a recommendation is the history
product that contributed most.
"""

from __future__ import annotations

import logging
from typing import ClassVar, Mapping

import numpy as np
from scipy import sparse

from models.recommenders.interactions import InteractionLog
from models.recommenders.engine import Recommender, top_k_mask
from models.threads import row_blocks, thread_map

logger = logging.getLogger(__name__)

SIMILARITIES = ("cosine", "asymmetric", "shrunk")
_CHUNK_CELLS = 1 << 22  # dense cells per block of rows when picking neighbours (32 MB of float64)


def _reciprocal(values: np.ndarray) -> np.ndarray:
    out = np.zeros_like(values, dtype=float)
    np.divide(1.0, values, out=out, where=values > 0)
    return out


def _keep_top(values: np.ndarray, width: int) -> np.ndarray:
    """Mask of the ``width`` largest positive entries of each row; ties go to the lower column."""
    if width >= values.shape[1]:
        return values > 0
    return top_k_mask(values, width) & (values > 0)


def _check(similarity: str, alpha: float, shrinkage: float, n_neighbours: int) -> None:
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {', '.join(SIMILARITIES)}, got {similarity!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    if shrinkage < 0:
        raise ValueError(f"shrinkage must be non-negative, got {shrinkage!r}")
    if int(n_neighbours) < 1:
        raise ValueError(f"n_neighbours must be a positive integer, got {n_neighbours!r}")


def similarity_matrix(user_items: sparse.csr_matrix, *, similarity: str = "cosine", alpha: float = 0.5,
                      shrinkage: float = 0.0, n_neighbours: int = 50,
                      dense: bool = False) -> sparse.csr_matrix | np.ndarray:
    """The truncated item-item similarity: row ``i`` holds the ``n_neighbours`` products most similar to ``i``.

    A products x products CSR matrix (a dense array when ``dense``: worth it only when the neighbourhoods
    cover a large part of the catalogue); only positive similarities are kept, a product is never its
    own neighbour, and among equal similarities at the cut the lower product index wins. Works block by
    block over rows, blocks on threads (:mod:`models.threads`): unless ``dense``, never a dense
    products x products matrix of the whole catalogue.
    """
    _check(similarity, alpha, shrinkage, n_neighbours)
    x = sparse.csr_matrix(user_items, dtype=float)
    n_items = x.shape[1]
    width = max(0, min(int(n_neighbours), n_items - 1))
    out = np.zeros((n_items, n_items)) if dense else None
    if width == 0:
        return out if dense else sparse.csr_matrix((n_items, n_items))
    xt = x.T.tocsr()
    squared = np.asarray(x.multiply(x).sum(axis=0)).ravel()
    if similarity == "asymmetric":
        row_scale, col_scale = _reciprocal(squared ** alpha), _reciprocal(squared ** (1.0 - alpha))
    else:
        row_scale = col_scale = _reciprocal(np.sqrt(squared))
    support_xt = support_x = None
    if similarity == "shrunk" and shrinkage > 0:
        support_x = x.copy()
        support_x.data[:] = 1.0
        support_xt = support_x.T.tocsr()

    def truncated(rows: np.ndarray):
        values = (xt[rows] @ x).toarray()
        values *= row_scale[rows, None]
        values *= col_scale[None, :]
        if support_xt is not None:
            common = (support_xt[rows] @ support_x).toarray()
            values *= common / (common + shrinkage)
        values[np.arange(len(rows)), rows] = 0.0  # never recommend a product because of itself
        keep = _keep_top(values, width)
        if out is not None:
            np.multiply(values, keep, out=out[rows[0]:rows[-1] + 1])
            return None
        indptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
        return sparse.csr_matrix((values[keep], np.nonzero(keep)[1], indptr), shape=(len(rows), n_items))

    pieces = thread_map(truncated, row_blocks(n_items, max(1, _CHUNK_CELLS // max(n_items, 1))))
    if out is not None:
        return out
    matrix = sparse.vstack(pieces, format="csr")
    matrix.sort_indices()
    return matrix


def neighbour_lists(matrix: sparse.csr_matrix, width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A similarity matrix's rows as padded neighbour lists ``(index, sim)``, each row best first.

    Both arrays are ``(n_products, width)`` (``width`` defaults to the longest row); equal similarities
    keep index order; empty slots hold index ``n_products`` and similarity 0.
    """
    matrix = sparse.csr_matrix(matrix)
    n_items = matrix.shape[0]
    counts = np.diff(matrix.indptr)
    width = int(counts.max(initial=0)) if width is None else int(width)
    if (counts > width).any():
        raise ValueError(f"a row holds {int(counts.max())} neighbours, more than the width {width}")
    rows = np.repeat(np.arange(n_items), counts)
    order = np.lexsort((matrix.indices, -matrix.data, rows))
    slots = np.arange(matrix.nnz) - matrix.indptr[rows]
    index = np.full((n_items, width), n_items, dtype=np.int32)
    sim = np.zeros((n_items, width))
    index[rows, slots] = matrix.indices[order]
    sim[rows, slots] = matrix.data[order]
    return index, sim


def item_neighbours(user_items: sparse.csr_matrix, *, similarity: str = "cosine", alpha: float = 0.5,
                    shrinkage: float = 0.0, n_neighbours: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Top ``n_neighbours`` similar products of every product, as padded arrays (:func:`neighbour_lists`).

    Returns ``(index, sim)``, both ``(n_products, width)`` with ``width = min(n_neighbours, n_products - 1)``.
    """
    n_items = sparse.csr_matrix(user_items).shape[1]
    matrix = similarity_matrix(user_items, similarity=similarity, alpha=alpha, shrinkage=shrinkage,
                               n_neighbours=n_neighbours)
    return neighbour_lists(matrix, max(0, min(int(n_neighbours), n_items - 1)))


def neighbour_matrix(index: np.ndarray, sim: np.ndarray) -> sparse.csr_matrix:
    """The padded neighbour lists as a sparse products x products matrix (row i: neighbours of i)."""
    n_items = index.shape[0]
    valid = index < n_items
    indptr = np.concatenate([[0], np.cumsum(valid.sum(axis=1))]).astype(np.int64)
    matrix = sparse.csr_matrix((sim[valid], index[valid], indptr), shape=(n_items, n_items))
    matrix.sort_indices()
    return matrix


class ItemCFScorer:
    """Item-CF scores from the customers' weighted histories and the item-item similarity matrix.

    The similarity is kept sparse (CSR) unless at least a third of it is filled (large neighbourhoods on
    a small catalogue): then a dense copy, no bigger than the sparse one would be, makes one customer's
    scores a single vector-matrix product and every customer's a sparse-dense product.
    """

    kind: ClassVar[str] = "itemcf"

    def __init__(self, user_items: sparse.csr_matrix, similarity: sparse.spmatrix | np.ndarray, product_ids,
                 purchased: sparse.csr_matrix, dense: bool | None = None):
        self.user_items = sparse.csr_matrix(user_items, dtype=float)
        self.user_items.sort_indices()
        self.product_ids = np.asarray(product_ids, dtype=str)
        self.purchased = sparse.csr_matrix(purchased, dtype=bool)
        self.n_items = len(self.product_ids)
        if similarity.shape != (self.n_items, self.n_items) or self.user_items.shape[1] != self.n_items:
            raise ValueError("similarity, histories and product ids disagree on the number of products")
        self._csr = None
        if sparse.issparse(similarity):
            self._csr = sparse.csr_matrix(similarity, dtype=float)
            self._csr.sort_indices()
            filled = self._csr.nnz
        else:
            similarity = np.asarray(similarity, dtype=float)
            filled = np.count_nonzero(similarity)
        if dense is None:  # ``dense`` forces one representation (tests compare both)
            dense = 3 * filled >= self.n_items * self.n_items > 0
        self._dense = None
        if dense:
            self._dense = similarity.toarray() if self._csr is not None else similarity
        elif self._csr is None:
            self._csr = sparse.csr_matrix(similarity)

    @property
    def similarity(self) -> sparse.csr_matrix:
        """The similarity as CSR (built on first use when the scorer holds it dense)."""
        if self._csr is None:
            self._csr = sparse.csr_matrix(self._dense)
            self._csr.sort_indices()
        return self._csr

    def to_arrays(self) -> dict[str, np.ndarray]:
        index, sim = neighbour_lists(self.similarity)
        return {
            "itemcf_user_indptr": self.user_items.indptr.astype(np.int64),
            "itemcf_user_indices": self.user_items.indices.astype(np.int32),
            "itemcf_user_data": self.user_items.data,
            "itemcf_neighbour_index": index,
            "itemcf_neighbour_sim": sim,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> "ItemCFScorer":
        product_ids, customer_ids = arrays["product_ids"], arrays["customer_ids"]
        shape = (len(customer_ids), len(product_ids))
        users = sparse.csr_matrix(
            (arrays["itemcf_user_data"], arrays["itemcf_user_indices"], arrays["itemcf_user_indptr"]), shape=shape)
        bought = arrays["purchased_indices"]
        purchased = sparse.csr_matrix((np.ones(len(bought), dtype=bool), bought, arrays["purchased_indptr"]),
                                      shape=shape)
        similarity = neighbour_matrix(arrays["itemcf_neighbour_index"], arrays["itemcf_neighbour_sim"])
        return cls(users, similarity, product_ids, purchased)

    def _history(self, user_index: int) -> tuple[np.ndarray, np.ndarray]:
        start, end = self.user_items.indptr[user_index:user_index + 2]
        return self.user_items.indices[start:end], self.user_items.data[start:end]

    def _rows(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The similarity rows of ``items`` as flat ``(owner position, neighbour, similarity)`` arrays."""
        starts, ends = self.similarity.indptr[items], self.similarity.indptr[items + 1]
        lengths = ends - starts
        owner = np.repeat(np.arange(len(items)), lengths)
        offset_in_row = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        flat = np.repeat(starts, lengths) + offset_in_row
        return owner, self.similarity.indices[flat], self.similarity.data[flat]

    def scores(self, user_index: int) -> np.ndarray:
        items, weights = self._history(user_index)
        if self._dense is not None:
            return weights @ self._dense[items]
        owner, targets, sims = self._rows(items)
        return np.bincount(targets, weights[owner] * sims, minlength=self.n_items)

    def score_users(self, user_indices: np.ndarray) -> np.ndarray:
        histories = self.user_items[np.asarray(user_indices)]
        if self._dense is not None:
            return np.asarray(histories @ self._dense)
        return (histories @ self.similarity).toarray()

    def _contributions(self, history: np.ndarray, weights: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``(len(items), len(history))``: what each history product adds to each recommended product."""
        if self._dense is not None:
            return (weights[:, None] * self._dense[np.ix_(history, items)]).T
        slot = np.full(self.n_items, -1, dtype=np.int64)
        slot[items] = np.arange(len(items))
        owner, targets, sims = self._rows(history)
        hit = slot[targets] >= 0
        contributions = np.zeros((len(items), len(history)))
        contributions[slot[targets[hit]], owner[hit]] = weights[owner[hit]] * sims[hit]
        return contributions

    def reasons(self, user_index: int, items: np.ndarray) -> list[str]:
        """``because you bought <id>`` (or ``viewed``) for the history product contributing most; else ``popular``."""
        history, weights = self._history(user_index)
        items = np.asarray(items, dtype=np.int64)
        if len(history) == 0:
            return ["popular"] * len(items)
        contributions = self._contributions(history, weights, items)
        sources = history[contributions.argmax(axis=1)]
        has_source = contributions.max(axis=1) > 0
        start, end = self.purchased.indptr[user_index:user_index + 2]
        bought = set(self.purchased.indices[start:end].tolist())
        reasons = []
        for source, ok in zip(sources.tolist(), has_source.tolist()):
            if not ok:
                reasons.append("popular")
            else:
                verb = "bought" if source in bought else "viewed"
                reasons.append(f"because you {verb} {self.product_ids[source]}")
        return reasons


class ItemCF:
    """Item-based CF estimator (scikit-learn style: ``__init__`` stores the parameters, ``fit`` sets ``*_``).

    ``fit(log)`` takes a :class:`models.recommenders.interactions.InteractionLog` and sets ``user_items_`` (weighted
    histories), ``purchased_``, ``similarity_`` (the truncated item-item similarity, row ``i`` = the top-N
    neighbours of ``i``: CSR, or a dense array when the neighbourhoods cover a third of the catalogue),
    ``customer_ids_`` and ``product_ids_``.

    The recency half-life weighs the customers' histories (``user_items_``: recent purchases count more
    when scoring), not the similarities, which are learned from all interactions undecayed (decaying the
    similarity input ranked worse; docs/recommenders.md).
    """

    def __init__(self, similarity: str = "cosine", alpha: float = 0.5, shrinkage: float = 0.0,
                 n_neighbours: int = 50, half_life_days: float | None = None,
                 event_weights: Mapping[str, float] | None = None):
        self.similarity = similarity
        self.alpha = alpha
        self.shrinkage = shrinkage
        self.n_neighbours = n_neighbours
        self.half_life_days = half_life_days
        self.event_weights = event_weights

    def get_params(self) -> dict:
        return {"similarity": self.similarity, "alpha": self.alpha, "shrinkage": self.shrinkage,
                "n_neighbours": self.n_neighbours, "half_life_days": self.half_life_days,
                "event_weights": dict(self.event_weights or {})}

    def fit(self, log: InteractionLog) -> "ItemCF":
        undecayed = log.matrix(None, self.event_weights)
        self.user_items_ = undecayed if self.half_life_days is None else log.matrix(self.half_life_days,
                                                                                   self.event_weights)
        self.purchased_ = log.purchased()
        self.customer_ids_ = log.customer_ids
        self.product_ids_ = log.product_ids
        n_items = len(self.product_ids_)
        self.similarity_ = similarity_matrix(
            undecayed, similarity=self.similarity, alpha=self.alpha, shrinkage=self.shrinkage,
            n_neighbours=self.n_neighbours, dense=3 * min(int(self.n_neighbours), n_items - 1) >= n_items)
        logger.debug("item-CF fitted: %d customers, %d products", *self.user_items_.shape)
        return self

    def scorer(self) -> ItemCFScorer:
        return ItemCFScorer(self.user_items_, self.similarity_, self.product_ids_, self.purchased_)

    def recommender(self, popularity: np.ndarray) -> Recommender:
        """The servable engine: this model's scorer, purchases and the given popularity (cold start, ties)."""
        return Recommender(self.scorer(), self.customer_ids_, self.product_ids_, self.purchased_, popularity)
