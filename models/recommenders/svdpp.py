"""SVD++ (Koren 2008) through scikit-surprise's ``SVDpp``, served from plain numpy arrays.

:class:`SVDppRecommender` is an estimator in scikit-learn's style: ``__init__`` stores the parameters,
``fit`` trains Surprise's ``SVDpp`` on ``(customer, product, rating)`` triples given as integer indices
(row and column of the interaction matrix, :mod:`models.recommenders.interactions`) and sets the attributes ending in
``_``. Surprise is imported inside ``fit`` only: serving never imports it.

After fitting, the model is reduced to a :class:`FactorScorer` holding the global mean ``mu``, the biases
``b_u``, ``b_i``, the item factors ``q_i`` and one precomputed vector per customer,

    ``v_u = p_u + |N(u)|^(-1/2) * sum_{j in N(u)} y_j``

so that the estimate ``r_ui = mu + b_u + b_i + q_i . v_u`` of every product for a customer is one
matrix-vector product. ``N(u)`` is what Surprise uses: every pair of the customer in the training set.
The estimates equal Surprise's own ``predict(..., clip=False)`` (a test checks it to 1e-9).

Two training objectives (the ``objective`` parameter):

* ``rmse``: plain rating prediction. The ratings are the implicit ratings of the interaction matrix
  (``log1p`` of the amount spent); this is what ``rmse``/``mae`` on held-out pairs measure.
* ``precision``: top-k ranking. A rating model trained on observed pairs only never sees what customers
  do *not* buy, so its ranking is poor (it ranks by predicted spend among products nobody was shown to
  skip). Here the training set adds, for every customer with ``n`` observed pairs, ``round(neg_ratio * n)``
  distinct *unobserved* products as negatives with rating 0 (:func:`sample_negatives`; products are drawn
  with probability proportional to ``popularity ** neg_alpha``, so ``neg_alpha = 0`` is uniform and larger
  values push back on popular products the customer skipped). Observed pairs keep their rating
  (``positive="rating"``) or count as 1 (``positive="binary"``). The model then learns "bought vs. not
  bought" and its estimates rank products for top-k lists. We chose sampling over a full zero-filled
  matrix because SVD++'s cost grows with the square of a customer's number of pairs (Surprise loops over
  ``N(u)`` for every rating), so negatives are affordable only as a sample. The negatives are part of
  ``N(u)`` too (Surprise derives the implicit feedback from every training pair), which makes the implicit
  term noisy; a separate, stronger regularisation of the implicit factors ``y_j`` (``reg_yj``, tuned)
  counters it (figures in docs/recommenders.md).
"""

from __future__ import annotations

import logging
from typing import ClassVar, Mapping

import numpy as np

logger = logging.getLogger(__name__)

OBJECTIVES = ("rmse", "precision")
POSITIVE_TARGETS = ("rating", "binary")
NEGATIVE_RATING = 0.0


class FactorScorer:
    """SVD++ estimates for every product of a customer from numpy arrays (the ``svdpp`` scorer).

    ``scores(u) = mu + b_u[u] + b_i + Q @ v_u[u]`` (see the module docstring). Customers or products the
    model never saw have zero biases and vectors, as in Surprise.

    Reasons (cheap: a lookup in the customer's history): with ``item_labels`` (one string per product, its
    category) and the purchase ``history`` (a customers x products CSR matrix; when loaded from a
    recommender ``.npz`` it is the engine's purchase histories), a product in a category the customer has
    bought from reads "matches your taste in <category>", any other "customers with similar taste buy this
    (<category>)"; without a history every product "matches your taste in <category>"; without labels a
    reason gives the predicted score.
    """

    kind: ClassVar[str] = "svdpp"

    def __init__(self, global_mean: float, user_bias, item_bias, item_factors, user_vectors, item_labels=None,
                 history=None):
        self.global_mean = float(global_mean)
        self.user_bias = np.asarray(user_bias, dtype=float)
        self.item_bias = np.asarray(item_bias, dtype=float)
        self.item_factors = np.ascontiguousarray(item_factors, dtype=float)
        self.user_vectors = np.ascontiguousarray(user_vectors, dtype=float)
        self.item_labels = None if item_labels is None else np.asarray(item_labels, dtype=str)
        n_users, n_items = len(self.user_bias), len(self.item_bias)
        if self.user_vectors.ndim != 2 or self.user_vectors.shape[0] != n_users:
            raise ValueError(f"user_vectors has shape {self.user_vectors.shape}, expected ({n_users}, n_factors)")
        if self.item_factors.shape != (n_items, self.user_vectors.shape[1]):
            raise ValueError(f"item_factors has shape {self.item_factors.shape}, "
                             f"expected ({n_items}, {self.user_vectors.shape[1]})")
        if self.item_labels is not None and self.item_labels.shape != (n_items,):
            raise ValueError(f"item_labels has shape {self.item_labels.shape}, expected ({n_items},)")
        self.history = None
        if history is not None:
            from scipy import sparse

            self.history = sparse.csr_matrix(history)
            if self.history.shape != (n_users, n_items):
                raise ValueError(f"history has shape {self.history.shape}, expected ({n_users}, {n_items})")

    @property
    def n_users(self) -> int:
        return len(self.user_bias)

    @property
    def n_items(self) -> int:
        return len(self.item_bias)

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "svdpp_global_mean": np.array(self.global_mean),
            "svdpp_user_bias": self.user_bias,
            "svdpp_item_bias": self.item_bias,
            "svdpp_item_factors": self.item_factors,
            "svdpp_user_vectors": self.user_vectors,
        }
        if self.item_labels is not None:
            arrays["svdpp_item_labels"] = self.item_labels
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> "FactorScorer":
        """The inverse of :meth:`to_arrays`; takes the history from the engine's purchase arrays when present."""
        labels = arrays["svdpp_item_labels"] if "svdpp_item_labels" in arrays else None
        history = None
        if "purchased_indptr" in arrays and "purchased_indices" in arrays:
            from scipy import sparse

            indices = arrays["purchased_indices"]
            history = sparse.csr_matrix((np.ones(len(indices), dtype=bool), indices, arrays["purchased_indptr"]),
                                        shape=(len(arrays["svdpp_user_bias"]), len(arrays["svdpp_item_bias"])))
        return cls(float(arrays["svdpp_global_mean"]), arrays["svdpp_user_bias"], arrays["svdpp_item_bias"],
                   arrays["svdpp_item_factors"], arrays["svdpp_user_vectors"], labels, history)

    def with_history(self, history) -> "FactorScorer":
        """The same scorer with a purchase history for the reasons (see the class docstring)."""
        return FactorScorer(self.global_mean, self.user_bias, self.item_bias, self.item_factors, self.user_vectors,
                            self.item_labels, history)

    def scores(self, user_index: int) -> np.ndarray:
        """One estimate per product for the customer at ``user_index``."""
        return (self.global_mean + self.user_bias[user_index]) + self.item_bias \
            + self.item_factors @ self.user_vectors[user_index]

    def score_users(self, user_indices: np.ndarray) -> np.ndarray:
        """Estimates ``(len(user_indices), n_products)`` for many customers at once."""
        users = np.asarray(user_indices, dtype=np.int64)
        return (self.global_mean + self.user_bias[users])[:, None] + self.item_bias[None, :] \
            + self.user_vectors[users] @ self.item_factors.T

    def predict_pairs(self, users, items) -> np.ndarray:
        """Unclipped estimates for the pairs ``(users[n], items[n])``."""
        users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        dots = np.einsum("nf,nf->n", self.user_vectors[users], self.item_factors[items])
        return self.global_mean + self.user_bias[users] + self.item_bias[items] + dots

    def reasons(self, user_index: int, items: np.ndarray) -> list[str]:
        items = np.asarray(items, dtype=np.int64)
        if self.item_labels is not None:
            labels = self.item_labels[items].tolist()
            if self.history is None:
                return [f"matches your taste in {label}" for label in labels]
            start, end = self.history.indptr[user_index:user_index + 2]
            bought = set(self.item_labels[self.history.indices[start:end]].tolist())
            return [f"matches your taste in {label}" if label in bought
                    else f"customers with similar taste buy this ({label})" for label in labels]
        scores = self.item_bias[items] + self.item_factors[items] @ self.user_vectors[user_index]
        scores += self.global_mean + self.user_bias[user_index]
        return [f"predicted score {score:.2f}" for score in scores.tolist()]


def _check_triples(users, items, ratings, n_users: int | None, n_items: int | None):
    users = np.asarray(users)
    items = np.asarray(items)
    ratings = np.asarray(ratings, dtype=float)
    if not (users.ndim == items.ndim == ratings.ndim == 1):
        raise ValueError("users, items and ratings must be one-dimensional")
    if not (len(users) == len(items) == len(ratings)):
        raise ValueError(f"users, items and ratings differ in length: {len(users)}, {len(items)}, {len(ratings)}")
    if len(users) == 0:
        raise ValueError("no ratings to fit")
    for name, values in (("users", users), ("items", items)):
        if not np.issubdtype(values.dtype, np.integer):
            raise ValueError(f"{name} must be integer indices (rows/columns of the interaction matrix), "
                             f"got dtype {values.dtype}")
        if values.min() < 0:
            raise ValueError(f"{name} has a negative index at position {int(np.argmin(values))}")
    if not np.isfinite(ratings).all():
        raise ValueError(f"ratings has a non-finite value at position {int(np.flatnonzero(~np.isfinite(ratings))[0])}")
    n_users = int(users.max()) + 1 if n_users is None else int(n_users)
    n_items = int(items.max()) + 1 if n_items is None else int(n_items)
    if users.max() >= n_users:
        raise ValueError(f"user index {int(users.max())} is outside n_users={n_users}")
    if items.max() >= n_items:
        raise ValueError(f"item index {int(items.max())} is outside n_items={n_items}")
    keys = users.astype(np.int64) * n_items + items.astype(np.int64)
    unique, first, counts = np.unique(keys, return_index=True, return_counts=True)
    if (counts > 1).any():
        dup = int(unique[counts > 1][0])
        raise ValueError(f"pair (user {dup // n_items}, item {dup % n_items}) is given more than once; "
                         "aggregate the ratings per pair first")
    return users.astype(np.int64), items.astype(np.int64), ratings, n_users, n_items


def sample_negatives(users, items, n_items: int, ratio: float, rng: np.random.Generator, *,
                     item_weights=None, max_rounds: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Distinct unobserved ``(user, item)`` pairs: ``round(ratio * n_u)`` per user with ``n_u`` observed pairs.

    A user never gets more negatives than unobserved items exist. Items are drawn with probability
    proportional to ``item_weights`` (uniform when None; zero-weight items are never drawn, which caps a
    user's negatives at their unobserved items of positive weight). Vectorised rejection sampling over
    all users at once; users still short after ``max_rounds`` rounds get an exact draw from their
    remaining candidates. Returns ``(neg_users, neg_items)`` sorted by user.
    """
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    if ratio < 0 or not np.isfinite(ratio):
        raise ValueError(f"neg_ratio must be a non-negative number, got {ratio!r}")
    if item_weights is None:
        probs = np.full(n_items, 1.0 / n_items)
    else:
        weights = np.asarray(item_weights, dtype=float)
        if weights.shape != (n_items,) or (weights < 0).any() or not np.isfinite(weights).all():
            raise ValueError(f"item_weights must be {n_items} non-negative finite numbers")
        if weights.sum() <= 0:
            raise ValueError("item_weights are all zero")
        probs = weights / weights.sum()
    drawable = probs > 0
    positive_keys = np.unique(users * n_items + items)
    n_users = int(users.max()) + 1 if len(users) else 0
    observed = np.bincount(users, minlength=n_users)
    observed_drawable = np.bincount(users[drawable[items]], minlength=n_users)
    available = int(drawable.sum()) - observed_drawable
    need = np.minimum(np.rint(ratio * observed).astype(np.int64), available)
    accepted = np.empty(0, dtype=np.int64)  # kept sorted, so that membership is a binary search
    for _ in range(max_rounds):
        short = need - np.bincount(accepted // n_items, minlength=n_users)
        if not (short > 0).any():
            break
        who = np.repeat(np.arange(n_users), np.maximum(short, 0) * 2)  # oversample: rejections are common
        keys = who * n_items + rng.choice(n_items, size=len(who), p=probs)
        keys = keys[~in_sorted(keys, positive_keys) & ~in_sorted(keys, accepted)]
        keys = keys[np.sort(np.unique(keys, return_index=True)[1])]  # first copy of each key, draw order kept
        owner = keys // n_items
        order = np.argsort(owner, kind="stable")
        keys, owner = keys[order], owner[order]
        starts = np.searchsorted(owner, owner, side="left")
        rank = np.arange(len(keys)) - starts
        accepted = np.sort(np.concatenate([accepted, keys[rank < short[owner]]]))
    short = need - np.bincount(accepted // n_items, minlength=n_users)
    for user in np.flatnonzero(short > 0):  # nearly full rows: draw exactly from what is left
        taken = np.concatenate([positive_keys, accepted])
        taken = taken[(taken >= user * n_items) & (taken < (user + 1) * n_items)] - user * n_items
        left = np.setdiff1d(np.flatnonzero(drawable), taken)
        p = probs[left] / probs[left].sum()
        pick = rng.choice(left, size=int(short[user]), replace=False, p=p)
        accepted = np.concatenate([accepted, user * n_items + pick])
    accepted = np.sort(accepted)
    return accepted // n_items, accepted % n_items


def in_sorted(values: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """``np.isin(values, sorted_values)`` for an ascending ``sorted_values``, by binary search: no hashing or sorting
    of either array (``np.isin`` re-sorts both on every call, which made negative sampling on a million pairs take
    most of a fit's time)."""
    if len(sorted_values) == 0:
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_values, values), len(sorted_values) - 1)
    return sorted_values[at] == values


class SVDppRecommender:
    """SVD++ trained with Surprise, reduced to a :class:`FactorScorer` (see the module docstring).

    Parameters: ``n_factors``, ``n_epochs``, ``lr_all``, ``reg_all``, ``reg_yj`` (regularisation of the
    implicit factors, default ``reg_all``), ``init_std_dev`` as in Surprise's ``SVDpp``; ``objective`` (``rmse`` or ``precision``); for ``precision``: ``neg_ratio`` (negatives per
    observed pair), ``neg_alpha`` (negatives drawn with probability proportional to popularity ** alpha)
    and ``positive`` (``rating`` keeps the observed rating, ``binary`` uses 1); ``random_state`` seeds the
    negative sampling, the training order and Surprise's initialisation.

    Fitted attributes: ``algo_`` (the Surprise model, training-time only), ``scorer_``, ``n_users_``,
    ``n_items_``, ``n_negatives_``, ``rating_range_`` (min and max training rating, the clipping range of
    :meth:`predict`, as Surprise clips to its rating scale).
    """

    def __init__(self, n_factors: int = 20, n_epochs: int = 20, lr_all: float = 0.007, reg_all: float = 0.02,
                 reg_yj: float | None = None, init_std_dev: float = 0.1, objective: str = "rmse",
                 neg_ratio: float = 1.0, neg_alpha: float = 0.0, positive: str = "rating",
                 random_state: int | None = None):
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.lr_all = lr_all
        self.reg_all = reg_all
        self.reg_yj = reg_yj
        self.init_std_dev = init_std_dev
        self.objective = objective
        self.neg_ratio = neg_ratio
        self.neg_alpha = neg_alpha
        self.positive = positive
        self.random_state = random_state

    def get_params(self) -> dict:
        return {name: getattr(self, name) for name in (
            "n_factors", "n_epochs", "lr_all", "reg_all", "reg_yj", "init_std_dev", "objective", "neg_ratio",
            "neg_alpha", "positive", "random_state")}

    def _check_params(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.positive not in POSITIVE_TARGETS:
            raise ValueError(f"positive must be one of {', '.join(POSITIVE_TARGETS)}, got {self.positive!r}")
        for name in ("n_factors", "n_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("lr_all", "reg_all", "reg_yj", "init_std_dev", "neg_ratio", "neg_alpha"):
            value = getattr(self, name)
            if name == "reg_yj" and value is None:
                continue
            if not isinstance(value, (int, float, np.number)) or not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")

    def fit(self, users, items, ratings, *, n_users: int | None = None, n_items: int | None = None,
            item_labels=None) -> "SVDppRecommender":
        """Train on observed ``(users[n], items[n], ratings[n])`` (unique pairs of integer indices).

        ``n_users``/``n_items`` set the size of the index space (default: largest index + 1), so the
        scorer lines up with the interaction matrix; ``item_labels`` go to the scorer's reasons.
        """
        self._check_params()
        users, items, ratings, n_users, n_items = _check_triples(users, items, ratings, n_users, n_items)
        rng = np.random.default_rng(self.random_state)
        if self.objective == "precision":
            if self.positive == "binary":
                ratings = np.ones_like(ratings)
            weights = None
            if self.neg_alpha > 0:
                weights = (np.bincount(items, minlength=n_items) + 1.0) ** float(self.neg_alpha)
            neg_users, neg_items = sample_negatives(users, items, n_items, float(self.neg_ratio), rng,
                                                    item_weights=weights)
            users = np.concatenate([users, neg_users])
            items = np.concatenate([items, neg_items])
            ratings = np.concatenate([ratings, np.full(len(neg_users), NEGATIVE_RATING)])
            self.n_negatives_ = len(neg_users)
        else:
            self.n_negatives_ = 0
        order = rng.permutation(len(users))  # Surprise's SGD visits pairs grouped by user, in input order
        users, items, ratings = users[order], items[order], ratings[order]
        self.algo_ = self._train_surprise(users, items, ratings, int(rng.integers(2**31 - 1)))
        self.n_users_, self.n_items_ = n_users, n_items
        self.rating_range_ = (float(ratings.min()), float(ratings.max()))
        self.scorer_ = factor_scorer(self.algo_, n_users, n_items, item_labels)
        return self

    def _train_surprise(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray, seed: int):
        from surprise import SVDpp

        low, high = float(ratings.min()), float(ratings.max())
        trainset = surprise_trainset(users, items, ratings, (low, high if high > low else low + 1.0))
        algo = SVDpp(n_factors=int(self.n_factors), n_epochs=int(self.n_epochs), lr_all=float(self.lr_all),
                     reg_all=float(self.reg_all), init_std_dev=float(self.init_std_dev), random_state=seed,
                     reg_yj=None if self.reg_yj is None else float(self.reg_yj), cache_ratings=True)
        return algo.fit(trainset)

    def predict(self, users, items, clip: bool = True) -> np.ndarray:
        """Estimated ratings of the pairs, clipped to :attr:`rating_range_` unless ``clip`` is False."""
        estimates = self.scorer_.predict_pairs(users, items)
        return np.clip(estimates, *self.rating_range_) if clip else estimates


def surprise_trainset(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, rating_scale: tuple[float, float]):
    """Surprise's ``Trainset`` of the triples, built from the arrays: the same object as
    ``Dataset.load_from_df(frame, Reader(rating_scale=...)).build_full_trainset()`` (inner ids in order of first
    appearance, each customer's and product's pairs in input order, the same global mean; a test compares the two),
    without the per-rating Python tuples and the frame that path builds (about 10 s and a few hundred MB on a
    million pairs)."""
    from collections import defaultdict

    from surprise import Trainset

    def inner_ids(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(raw ids in order of first appearance, each position's inner id)``."""
        unique, first, inverse = np.unique(raw, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty(len(unique), dtype=np.int64)
        rank[order] = np.arange(len(unique))
        return unique[order], rank[inverse.ravel()]

    def grouped(keys: np.ndarray, others: np.ndarray, n_keys: int) -> defaultdict:
        """``{key: [(other, rating), ...]}`` with each key's pairs in input order."""
        order = np.argsort(keys, kind="stable")
        pairs = list(zip(others[order].tolist(), ratings[order].tolist()))
        bounds = np.searchsorted(keys[order], np.arange(n_keys + 1)).tolist()
        return defaultdict(list, {key: pairs[bounds[key]:bounds[key + 1]] for key in range(n_keys)})

    ratings = np.asarray(ratings, dtype=float)
    raw_users, inner_users = inner_ids(np.asarray(users))
    raw_items, inner_items = inner_ids(np.asarray(items))
    ur = grouped(inner_users, inner_items, len(raw_users))
    ir = grouped(inner_items, inner_users, len(raw_items))
    trainset = Trainset(ur, ir, len(raw_users), len(raw_items), len(ratings), rating_scale,
                        dict(zip(raw_users.tolist(), range(len(raw_users)))),
                        dict(zip(raw_items.tolist(), range(len(raw_items)))))
    trainset._global_mean = float(np.mean([r for pairs in ur.values() for _, r in pairs]))  # Surprise's order
    return trainset


def factor_scorer(algo, n_users: int, n_items: int, item_labels=None) -> FactorScorer:
    """A :class:`FactorScorer` over indices ``0..n_users-1`` x ``0..n_items-1`` from a fitted Surprise ``SVDpp``.

    The Surprise model must have been trained with these integer indices as raw ids.
    """
    from scipy import sparse

    trainset = algo.trainset
    raw_users = np.array([trainset.to_raw_uid(u) for u in range(trainset.n_users)], dtype=np.int64)
    raw_items = np.array([trainset.to_raw_iid(i) for i in range(trainset.n_items)], dtype=np.int64)
    n_factors = algo.qi.shape[1]

    lengths = np.array([len(trainset.ur[u]) for u in range(trainset.n_users)], dtype=np.int64)
    cols = np.fromiter((j for u in range(trainset.n_users) for j, _ in trainset.ur[u]), dtype=np.int64,
                       count=int(lengths.sum()))
    rows = np.repeat(np.arange(trainset.n_users), lengths)
    implicit = sparse.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(trainset.n_users, trainset.n_items))
    implicit_sums = implicit @ algo.yj / np.sqrt(lengths)[:, None]

    user_bias = np.zeros(n_users)
    user_bias[raw_users] = algo.bu
    user_vectors = np.zeros((n_users, n_factors))
    user_vectors[raw_users] = algo.pu + implicit_sums
    item_bias = np.zeros(n_items)
    item_bias[raw_items] = algo.bi
    item_factors = np.zeros((n_items, n_factors))
    item_factors[raw_items] = algo.qi
    return FactorScorer(trainset.global_mean, user_bias, item_bias, item_factors, user_vectors, item_labels)
