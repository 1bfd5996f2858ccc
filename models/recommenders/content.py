"""Content similarity of products, and the post-scorer that blends it into either family's scores.

Features (:func:`product_features`)
-----------------------------------
Each product is a row of weighted one-hot features, L2-normalised: its category (weight 1), its subcategory
(``w_subcategory``), its price band (``w_price``: the quintile of its log price *within its category*, so "cheap
for a laptop" and "cheap for a book" share a band) and its name tokens (``w_name``: the lower-case words of
``product_name`` found in at least two products and at most half the catalogue, such as brands; a product's
tokens share its weight). Missing columns or values contribute nothing. The similarity of two products is the
cosine of their rows, each product keeping its ``n_neighbours`` most similar ones
(:func:`content_similarity`, the same truncation as item-CF's). A product needs no purchase to have neighbours:
that is how a new or rarely bought product can be recommended.

Blend (:class:`ContentBlend`)
-----------------------------
A customer's content score for ``j`` is ``sum over the products i they bought of sim(i, j)`` (the engine's
purchase histories, which every family has). The engine replaces the family's scores by

``(1 - weight) * norm(family scores) + weight * norm(content scores)``

per customer, ``norm`` being ``max`` (divide by the row's largest value after shifting negative scores up to
0) or ``z`` (a z-score per row). With ``weight = 0`` no blend is stored at all, so the model serves exactly the
family's scores. A product whose weighted content term outweighs its weighted family term gets the reason
``similar to <product> you bought`` (the bought product most similar to it); the others keep the family's reason.
Everything is numpy/scipy arrays: a request costs one sparse row product and two normalisations.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import sparse

NORMALISATIONS = ("max", "z")
PRICE_BANDS = 5
PREFIX = "blend_"
REASON = "similar to {product} you bought"
_TOKEN = re.compile(r"[a-z][a-z-]+")


def price_bands(prices: np.ndarray, groups: np.ndarray, n_bands: int = PRICE_BANDS) -> np.ndarray:
    """The band ``0..n_bands-1`` of each price by its log-price rank within its group; -1 for a missing price."""
    prices = np.asarray(prices, dtype=float)
    groups = np.asarray(groups)
    bands = np.full(len(prices), -1, dtype=np.int64)
    valid = np.isfinite(prices) & (prices > 0)
    for group in pd.unique(groups[valid]):
        rows = np.flatnonzero(valid & (groups == group))
        ranks = pd.Series(np.log(prices[rows])).rank(method="average", pct=True).to_numpy()
        bands[rows] = np.minimum((ranks * n_bands - 1e-9).astype(np.int64), n_bands - 1)
    return bands


def _one_hot(codes: np.ndarray, weights: np.ndarray, n_rows: int, n_cols: int) -> sparse.csr_matrix:
    rows = np.flatnonzero(codes >= 0)
    return sparse.csr_matrix((weights[rows], (rows, codes[rows])), shape=(n_rows, max(n_cols, 1)))


def _name_tokens(names: Sequence, n_products: int) -> tuple[np.ndarray, np.ndarray, int]:
    """``(rows, columns, vocabulary size)`` of the name tokens kept (see the module docstring)."""
    tokens = [sorted(set(_TOKEN.findall(name.lower()))) if isinstance(name, str) else [] for name in names]
    frequency = pd.Series([t for ts in tokens for t in ts], dtype=object).value_counts()
    kept = sorted(frequency[(frequency >= 2) & (frequency <= n_products / 2)].index)
    vocab = {t: i for i, t in enumerate(kept)}
    pairs = [(r, vocab[t]) for r, ts in enumerate(tokens) for t in ts if t in vocab]
    rows, cols = (np.array(p, dtype=np.int64) for p in zip(*pairs)) if pairs else (np.empty(0, np.int64),) * 2
    return rows, cols, len(vocab)


def product_features(products: pd.DataFrame, product_ids: Sequence[str], *, w_subcategory: float = 0.5,
                     w_price: float = 0.5, w_name: float = 0.0) -> sparse.csr_matrix:
    """Products (in ``product_ids`` order) x features, L2-normalised rows; a product absent from ``products``
    has a zero row."""
    frame = products.assign(product_id=products["product_id"].astype(str)).drop_duplicates("product_id")
    frame = frame.set_index("product_id").reindex(pd.Index(np.asarray(product_ids, dtype=str)))
    n = len(frame)
    blocks = []
    for column, weight in (("category", 1.0), ("subcategory", w_subcategory)):
        if column in frame.columns and weight > 0:
            codes, uniques = pd.factorize(frame[column].astype(object))
            blocks.append(_one_hot(codes, np.full(n, float(weight)), n, len(uniques)))
    if "base_price" in frame.columns and w_price > 0:
        groups = frame["category"].astype(object).fillna("").to_numpy() if "category" in frame.columns \
            else np.zeros(n)
        bands = price_bands(pd.to_numeric(frame["base_price"], errors="coerce").to_numpy(dtype=float), groups)
        blocks.append(_one_hot(bands, np.full(n, float(w_price)), n, PRICE_BANDS))
    if "product_name" in frame.columns and w_name > 0:
        rows, cols, size = _name_tokens(frame["product_name"].tolist(), n)
        if size:
            per_product = np.bincount(rows, minlength=n).astype(float)
            values = w_name / np.sqrt(per_product[rows])  # a product's tokens share its name weight
            blocks.append(sparse.csr_matrix((values, (rows, cols)), shape=(n, size)))
    x = sparse.hstack(blocks, format="csr") if blocks else sparse.csr_matrix((n, 1))
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    return sparse.csr_matrix(sparse.diags(np.divide(1.0, norms, out=np.zeros(n), where=norms > 0)) @ x)


def content_similarity(features: sparse.csr_matrix, n_neighbours: int) -> sparse.csr_matrix:
    """Cosine similarity of the products' feature rows, each row truncated to its ``n_neighbours`` best (CSR)."""
    from models.recommenders.itemcf import similarity_matrix

    # item-CF's similarity of the columns of a "users x items" matrix: here features x products
    return similarity_matrix(sparse.csr_matrix(features).T.tocsr(), similarity="cosine", n_neighbours=n_neighbours)


def normalise_rows(scores: np.ndarray, how: str) -> np.ndarray:
    """Per-row ``max`` or ``z`` normalisation (see the module docstring); an all-equal row becomes zeros."""
    scores = np.asarray(scores, dtype=float)
    if how == "max":
        shifted = scores - np.minimum(scores.min(axis=1, keepdims=True), 0.0)
        top = shifted.max(axis=1, keepdims=True)
        return np.divide(shifted, top, out=np.zeros_like(shifted), where=top > 0)
    if how == "z":
        spread = scores.std(axis=1, keepdims=True)
        return np.divide(scores - scores.mean(axis=1, keepdims=True), spread, out=np.zeros_like(scores),
                         where=spread > 0)
    raise ValueError(f"normalisation must be one of {', '.join(NORMALISATIONS)}, got {how!r}")


class ContentBlend:
    """The content post-scorer the engine applies to any family's scores (see the module docstring)."""

    def __init__(self, similarity: sparse.spmatrix, weight: float, normalisation: str = "max"):
        if not 0.0 < weight <= 1.0:
            raise ValueError(f"weight must be in (0, 1] (a weight of 0 is no blend), got {weight!r}")
        if normalisation not in NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {', '.join(NORMALISATIONS)}, got {normalisation!r}")
        self.similarity = sparse.csr_matrix(similarity, dtype=float)
        self.similarity.sort_indices()
        if self.similarity.shape[0] != self.similarity.shape[1]:
            raise ValueError(f"similarity must be square, got shape {self.similarity.shape}")
        self.weight = float(weight)
        self.normalisation = normalisation

    @property
    def n_products(self) -> int:
        return self.similarity.shape[0]

    def content(self, histories: sparse.spmatrix) -> np.ndarray:
        """Content scores ``(customers, products)`` of the purchase-history rows ``histories``."""
        return np.asarray((sparse.csr_matrix(histories, dtype=float) @ self.similarity).toarray())

    def _terms(self, base: np.ndarray, histories: sparse.spmatrix) -> tuple[np.ndarray, np.ndarray]:
        return ((1.0 - self.weight) * normalise_rows(base, self.normalisation),
                self.weight * normalise_rows(self.content(histories), self.normalisation))

    def apply(self, base: np.ndarray, histories: sparse.spmatrix) -> np.ndarray:
        """The blended scores of the family's ``base`` scores (one row per history row)."""
        family, content = self._terms(np.atleast_2d(base), histories)
        return family + content

    def explain(self, base: np.ndarray, history: np.ndarray, items: np.ndarray, reasons: list[str],
                product_ids: np.ndarray) -> list[str]:
        """``reasons`` with ``similar to <product> you bought`` where the content term outweighs the family's.

        ``base``: the family's scores of one customer; ``history``: the product indices they bought.
        """
        history = np.asarray(history, dtype=np.int64)
        if len(history) == 0 or len(items) == 0:
            return reasons
        row = sparse.csr_matrix((np.ones(len(history)), (np.zeros(len(history), np.int64), history)),
                                shape=(1, self.n_products))
        family, content = (term[0] for term in self._terms(np.atleast_2d(base), row))
        items = np.asarray(items, dtype=np.int64)
        sims = self.similarity[history][:, items].toarray()  # (history, items)
        out = list(reasons)
        for slot, j in enumerate(items.tolist()):
            if content[j] > family[j] and sims[:, slot].max() > 0:
                out[slot] = REASON.format(product=product_ids[history[int(sims[:, slot].argmax())]])
        return out

    def to_arrays(self) -> dict[str, np.ndarray]:
        from models.recommenders.itemcf import neighbour_lists

        index, sim = neighbour_lists(self.similarity)
        return {f"{PREFIX}weight": np.array(self.weight), f"{PREFIX}normalisation": np.array(self.normalisation),
                f"{PREFIX}neighbour_index": index, f"{PREFIX}neighbour_sim": sim}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> "ContentBlend | None":
        """The blend stored in a recommender's arrays, or None (a model without one)."""
        from models.recommenders.itemcf import neighbour_matrix

        if f"{PREFIX}weight" not in arrays:
            return None
        similarity = neighbour_matrix(arrays[f"{PREFIX}neighbour_index"], arrays[f"{PREFIX}neighbour_sim"])
        return cls(similarity, float(arrays[f"{PREFIX}weight"]), str(arrays[f"{PREFIX}normalisation"]))
