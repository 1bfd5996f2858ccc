"""Pure metric functions: ranking, regression, classification and forecasting.

Every function is flat and side-effect free, returns a Python ``float`` and states its value range.
Rates and errors are fractions, not percentages (MAPE 0.0236, not 2.36). Bad input raises
:class:`MetricInputError` (a ``ValueError``) with a message naming the argument; no metric ever returns
a silent NaN.

Shared signatures:

* ranking: ``f(relevant, recommended, k)`` where ``relevant`` maps each user to the items they
  interacted with in the test window and ``recommended`` maps users to their ranked items, best first.
  Scores are averaged over the users of ``relevant`` with at least one relevant item; such a user
  without recommendations scores 0.0.
* regression, classification: ``f(y_true, y_pred)`` (``y_score``/``y_prob`` for classifiers, with
  ``y_true`` in {0, 1}).
* forecasting: ``f(y_true, y_pred)``, plus the training series for ``mase`` and the bounds for
  ``interval_coverage``.

:data:`METRICS` maps each metric name to its function.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike
from sklearn import metrics as skm

Relevant = Mapping[Hashable, Collection[Hashable]]
Recommended = Mapping[Hashable, Sequence[Hashable]]


class MetricInputError(ValueError):
    """A metric received empty, mismatched or out-of-domain input; the message names the argument."""


# --- input checks -------------------------------------------------------------------------------


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise MetricInputError(f"k must be a positive integer, got {k!r}")


def _top_k(user: Hashable, items: Sequence[Hashable], k: int | None) -> list[Hashable]:
    """The first k items (all of them when k is None); a repeated item is an error."""
    top = list(items)[:k]
    if len(set(top)) != len(top):
        raise MetricInputError(f"recommended[{user!r}] lists an item more than once")
    return top


def _vectors(**named: ArrayLike) -> list[np.ndarray]:
    """Named 1-D arrays of finite floats with one common, non-zero length."""
    arrays = []
    for name, values in named.items():
        try:
            array = np.asarray(values, dtype=float)
        except (TypeError, ValueError) as exc:
            raise MetricInputError(f"{name} must be numeric: {exc}") from None
        if array.ndim != 1:
            raise MetricInputError(f"{name} must be one-dimensional, got shape {array.shape}")
        if array.size == 0:
            raise MetricInputError(f"{name} is empty")
        if not np.isfinite(array).all():
            raise MetricInputError(f"{name} contains NaN or infinite values")
        arrays.append(array)
    (first_name, first), *rest = zip(named, arrays)
    for name, array in rest:
        if array.size != first.size:
            raise MetricInputError(f"{first_name} has {first.size} values but {name} has {array.size}")
    return arrays


def _binary(y_true: ArrayLike, y_score: ArrayLike, score_name: str, probability: bool) -> list[np.ndarray]:
    """Checked ``(y_true, y_score)`` for a binary classifier: both classes present, probabilities in [0, 1]."""
    truth, score = _vectors(y_true=y_true, **{score_name: y_score})
    classes = set(np.unique(truth).tolist())
    if not classes <= {0.0, 1.0}:
        raise MetricInputError(f"y_true must hold only 0 and 1, got values {sorted(classes)[:5]}")
    if len(classes) < 2:
        raise MetricInputError(f"y_true holds only class {int(classes.pop())}; the metric needs both 0 and 1")
    if probability and ((score < 0) | (score > 1)).any():
        raise MetricInputError(f"{score_name} must be probabilities in [0, 1]")
    return [truth, score]


# --- ranking ------------------------------------------------------------------------------------


def _user_hits(relevant: Relevant, recommended: Recommended, k: int) -> list[tuple[Hashable, np.ndarray, int]]:
    """``(user, hits, n_relevant)`` of each user with at least one relevant item, in the order of ``relevant``.

    ``hits`` is a boolean array over the user's top-k recommendations (possibly shorter than k).
    """
    _check_k(k)
    found = []
    for user, items in relevant.items():
        truth = set(items)
        if truth:
            top = _top_k(user, recommended.get(user, ()), k)
            found.append((user, np.array([item in truth for item in top], dtype=bool), len(truth)))
    if not found:
        raise MetricInputError("relevant has no user with at least one relevant item")
    return found


def _per_user(
    relevant: Relevant, recommended: Recommended, k: int, score: Callable[[np.ndarray, int], float]
) -> dict[Hashable, float]:
    """``score(hits, n_relevant)`` of each user with at least one relevant item (:func:`_user_hits`)."""
    return {user: float(score(hits, n)) for user, hits, n in _user_hits(relevant, recommended, k)}


def _mean_over_users(
    relevant: Relevant, recommended: Recommended, k: int, score: Callable[[np.ndarray, int], float]
) -> float:
    """Mean of ``score(hits, n_relevant)`` over users with at least one relevant item."""
    return float(np.mean(list(_per_user(relevant, recommended, k, score).values())))


def _discounts(n: int) -> np.ndarray:
    """``1 / log2(rank + 1)`` for ranks 1..n."""
    return 1.0 / np.log2(np.arange(2, n + 2))


def precision_at_k(relevant: Relevant, recommended: Recommended, k: int) -> float:
    """Share of the top-k recommendations that are relevant, in [0, 1].

    Divides by k even when fewer than k items are recommended (as the recommenders library does), so
    k larger than the catalogue caps the score below 1.
    """
    return _mean_over_users(relevant, recommended, k, _precision_score(k))


def _precision_score(k: int):
    return lambda hits, _: hits.sum() / k


def _recall_score(hits: np.ndarray, n_relevant: int) -> float:
    return hits.sum() / n_relevant


def _hit_score(hits: np.ndarray, _: int) -> float:
    return float(hits.any())


def _ndcg_score(k: int):
    def score(hits: np.ndarray, n_relevant: int) -> float:
        return _discounts(hits.size)[hits].sum() / _discounts(min(k, n_relevant)).sum()

    return score


def _ap_score(k: int):
    def score(hits: np.ndarray, n_relevant: int) -> float:
        precision = np.cumsum(hits) / np.arange(1, hits.size + 1)
        return precision[hits].sum() / min(k, n_relevant)

    return score


def precision_at_k_by_user(relevant: Relevant, recommended: Recommended, k: int) -> dict[Hashable, float]:
    """Each user's precision@k (the terms :func:`precision_at_k` averages), for paired comparisons."""
    return _per_user(relevant, recommended, k, _precision_score(k))


def recall_at_k(relevant: Relevant, recommended: Recommended, k: int) -> float:
    """Share of each user's relevant items found in the top k, in [0, 1]."""
    return _mean_over_users(relevant, recommended, k, _recall_score)


def hit_rate_at_k(relevant: Relevant, recommended: Recommended, k: int) -> float:
    """Share of users with at least one relevant item in their top k, in [0, 1]."""
    return _mean_over_users(relevant, recommended, k, _hit_score)


def ndcg_at_k(relevant: Relevant, recommended: Recommended, k: int) -> float:
    """Normalised discounted cumulative gain at k, binary relevance, log2 discount, in [0, 1].

    DCG sums ``1 / log2(rank + 1)`` over hits; the ideal DCG puts ``min(k, |relevant|)`` hits first.
    """
    return _mean_over_users(relevant, recommended, k, _ndcg_score(k))


def map_at_k(relevant: Relevant, recommended: Recommended, k: int) -> float:
    """Mean average precision at k, in [0, 1].

    A user's average precision sums precision@i over the ranks i of the hits in the top k and divides
    by ``min(k, |relevant|)``.
    """
    return _mean_over_users(relevant, recommended, k, _ap_score(k))


def hit_share(relevant: Relevant, recommended: Recommended, k: int, items: Collection[Hashable]) -> float:
    """Share of all hits (relevant items in a user's top k) that are among ``items``, in [0, 1]; 0.0 without hits.

    E.g. the share of the hits that are products new in the test window. Counted over the users of ``relevant``.
    """
    _check_k(k)
    items = set(items)
    n_hits = n_in_items = 0
    for user, truth in relevant.items():
        truth = set(truth)
        for item in _top_k(user, recommended.get(user, ()), k):
            if item in truth:
                n_hits += 1
                n_in_items += item in items
    return n_in_items / n_hits if n_hits else 0.0


def coverage(recommended: Recommended, catalog: Collection[Hashable], k: int | None = None) -> float:
    """Share of the catalogue recommended to at least one user, in [0, 1].

    Only each user's top ``k`` count when ``k`` is given; items outside the catalogue are ignored.
    """
    if k is not None:
        _check_k(k)
    catalog = set(catalog)
    if not catalog:
        raise MetricInputError("catalog is empty")
    if not recommended:
        raise MetricInputError("recommended is empty")
    shown = {item for user, items in recommended.items() for item in _top_k(user, items, k)}
    return len(shown & catalog) / len(catalog)


def personalization(recommended: Recommended, k: int) -> float:
    """One minus the mean pairwise overlap ``|A ∩ B| / k`` of users' top-k lists, in [0, 1].

    0 means every user gets the same k items, 1 means no two users share an item. Users without
    recommendations are ignored; at least two users must have some. The pairwise overlaps are the
    off-diagonal entries of ``X @ X.T`` for the binary user x item matrix ``X``; their total equals
    the sum over items of (users shown the item)^2 minus the diagonal (the list lengths), so the mean
    is computed from item counts in O(users * k) without forming the users x users product.
    """
    _check_k(k)
    lists = [_top_k(user, items, k) for user, items in recommended.items() if len(items)]
    n_users = len(lists)
    if n_users < 2:
        raise MetricInputError(f"personalization needs at least two users with recommendations, got {n_users}")
    item_counts = np.fromiter(Counter(item for top in lists for item in top).values(), dtype=float)
    shared = (item_counts**2).sum() - item_counts.sum()
    return float(1.0 - shared / (n_users * (n_users - 1) * k))


def evaluate_ranking(
    relevant: Relevant, recommended: Recommended, k: int, catalog: Collection[Hashable]
) -> dict[str, float]:
    """All ranking metrics at k, keyed as logged to MLflow (``precision_at_10``, ..., ``coverage``); the same values
    as the single metric functions, with each user's hits found once."""
    found = _user_hits(relevant, recommended, k)
    scores = {f"precision_at_{k}": _precision_score(k), f"recall_at_{k}": _recall_score, f"ndcg_at_{k}": _ndcg_score(k),
              f"map_at_{k}": _ap_score(k), f"hit_rate_at_{k}": _hit_score}
    return {
        **{name: float(np.mean([float(score(hits, n)) for _, hits, n in found])) for name, score in scores.items()},
        "coverage": coverage(recommended, catalog, k),
        "personalization": personalization(recommended, k),
    }


# --- regression ---------------------------------------------------------------------------------


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error, in [0, inf), in the unit of ``y_true``."""
    truth, pred = _vectors(y_true=y_true, y_pred=y_pred)
    return float(np.sqrt(np.mean((truth - pred) ** 2)))


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error, in [0, inf), in the unit of ``y_true``."""
    truth, pred = _vectors(y_true=y_true, y_pred=y_pred)
    return float(np.mean(np.abs(truth - pred)))


# --- classification -----------------------------------------------------------------------------


def auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Area under the ROC curve, in [0, 1]; 0.5 is random ranking. ``y_score`` is any real score."""
    return float(skm.roc_auc_score(*_binary(y_true, y_score, "y_score", probability=False)))


def pr_auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Average precision (area under the precision-recall curve, step-wise), in [0, 1]."""
    return float(skm.average_precision_score(*_binary(y_true, y_score, "y_score", probability=False)))


def brier(y_true: ArrayLike, y_prob: ArrayLike) -> float:
    """Brier score: mean squared error of the predicted probability of class 1, in [0, 1]."""
    return float(skm.brier_score_loss(*_binary(y_true, y_prob, "y_prob", probability=True)))


def log_loss(y_true: ArrayLike, y_prob: ArrayLike) -> float:
    """Mean binary cross-entropy of the probability of class 1, in [0, inf) (probabilities clipped)."""
    return float(skm.log_loss(*_binary(y_true, y_prob, "y_prob", probability=True), labels=[0.0, 1.0]))


# --- forecasting --------------------------------------------------------------------------------


def mape(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute percentage error as a fraction (0.0236, not 2.36), in [0, inf).

    Undefined when an actual value is zero: raises instead of inventing an epsilon.
    """
    truth, pred = _vectors(y_true=y_true, y_pred=y_pred)
    zeros = np.flatnonzero(truth == 0)
    if zeros.size:
        raise MetricInputError(
            f"mape is undefined: y_true has {zeros.size} zero value(s), first at position {zeros[0]}; "
            "use smape or mase for series with zeros"
        )
    return float(np.mean(np.abs(truth - pred) / np.abs(truth)))


def smape(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Symmetric MAPE ``mean(2|y - ŷ| / (|y| + |ŷ|))`` as a fraction, in [0, 2]; a 0/0 term counts as 0."""
    truth, pred = _vectors(y_true=y_true, y_pred=y_pred)
    scale = np.abs(truth) + np.abs(pred)
    terms = np.divide(2 * np.abs(truth - pred), scale, out=np.zeros_like(scale), where=scale > 0)
    return float(np.mean(terms))


def mase(y_true: ArrayLike, y_pred: ArrayLike, y_train: ArrayLike, season: int = 1) -> float:
    """Mean absolute scaled error, in [0, inf); below 1 beats the in-sample seasonal-naive forecast.

    The scale is the mean of ``|y_train[t] - y_train[t - season]|``; when the training series has at
    most ``season`` values the lag-1 naive forecast is used instead. Missing training values (NaN) are
    left out of the scale (every pair with a missing value); ``y_true`` and ``y_pred`` must be complete (see
    :func:`observed`). A zero scale (a constant training series) or no complete pair raises.
    """
    truth, pred = _vectors(y_true=y_true, y_pred=y_pred)
    try:
        train = np.asarray(y_train, dtype=float)
    except (TypeError, ValueError) as exc:
        raise MetricInputError(f"y_train must be numeric: {exc}") from None
    if train.ndim != 1:
        raise MetricInputError(f"y_train must be one-dimensional, got shape {train.shape}")
    if train.size == 0:
        raise MetricInputError("y_train is empty")
    if np.isinf(train).any():
        raise MetricInputError("y_train contains infinite values")
    if isinstance(season, bool) or not isinstance(season, (int, np.integer)) or season < 1:
        raise MetricInputError(f"season must be a positive integer, got {season!r}")
    if train.size < 2:
        raise MetricInputError(f"y_train needs at least 2 values for a naive forecast, got {train.size}")
    lag = season if train.size > season else 1
    errors = np.abs(train[lag:] - train[:-lag])
    errors = errors[np.isfinite(errors)]
    if errors.size == 0:
        raise MetricInputError(f"mase is undefined: y_train has no pair of observed values {lag} apart")
    scale = np.mean(errors)
    if scale == 0:
        raise MetricInputError(f"mase is undefined: the lag-{lag} naive forecast of y_train has zero error")
    return float(np.mean(np.abs(truth - pred)) / scale)


def observed(y_true: ArrayLike, *others: ArrayLike) -> list[np.ndarray]:
    """``[y_true, *others]`` restricted to the positions where ``y_true`` is observed (not NaN): forecast metrics
    skip the missing actuals of a series. Raises when none is observed."""
    truth = np.asarray(y_true, dtype=float)
    keep = ~np.isnan(truth)
    if not keep.any():
        raise MetricInputError(f"y_true has no observed value ({truth.size} missing)")
    return [truth[keep], *(np.asarray(o, dtype=float)[keep] for o in others)]


def interval_coverage(y_true: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> float:
    """Share of actual values inside their prediction interval ``[lower, upper]`` (inclusive), in [0, 1]."""
    truth, low, high = _vectors(y_true=y_true, lower=lower, upper=upper)
    if (low > high).any():
        raise MetricInputError(f"lower exceeds upper at position {np.flatnonzero(low > high)[0]}")
    return float(np.mean((truth >= low) & (truth <= high)))


METRICS: dict[str, Callable[..., float]] = {
    metric.__name__: metric
    for metric in (
        precision_at_k,
        recall_at_k,
        ndcg_at_k,
        map_at_k,
        hit_rate_at_k,
        coverage,
        personalization,
        rmse,
        mae,
        auc,
        pr_auc,
        brier,
        log_loss,
        mape,
        smape,
        mase,
        interval_coverage,
    )
}
