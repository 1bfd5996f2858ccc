"""Multi-class probability metrics, one-vs-rest, as pure functions with one signature.

``metric(y_true, proba, classes)``: ``y_true`` the true class labels (n,), ``proba`` an (n, c) array of class
probabilities (or scores) whose columns follow ``classes``. A label that is not in ``classes`` is an error.
One-vs-rest averages run over the classes that occur in ``y_true`` and are not the only class present
(a class without positives or without negatives has no ROC AUC); :func:`per_class_scores` shows which.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from evaluation.metrics import MetricInputError, auc, pr_auc


def _checked(y_true, proba, classes: Sequence) -> tuple[np.ndarray, np.ndarray, list]:
    y = np.asarray(y_true, dtype=object)
    p = np.asarray(proba, dtype=float)
    classes = list(classes)
    if p.ndim != 2 or p.shape != (len(y), len(classes)):
        raise MetricInputError(f"proba must have shape ({len(y)}, {len(classes)}), got {p.shape}")
    if len(y) == 0:
        raise MetricInputError("y_true is empty")
    if not np.all(np.isfinite(p)):
        raise MetricInputError("proba has non-finite values")
    unknown = sorted(set(y.tolist()) - set(classes), key=str)
    if unknown:
        raise MetricInputError(f"y_true has label(s) {unknown[:5]} that are not in classes")
    return y, p, classes


def per_class_scores(y_true, proba, classes: Sequence) -> list[dict]:
    """Per class: ``class``, ``support`` (positives), ``auc`` and ``average_precision`` (NaN when undefined)."""
    y, p, classes = _checked(y_true, proba, classes)
    rows = []
    for j, c in enumerate(classes):
        positive = (y == c).astype(int)
        n_pos = int(positive.sum())
        defined = 0 < n_pos < len(y)
        rows.append({"class": c, "support": n_pos,
                     "auc": auc(positive, p[:, j]) if defined else float("nan"),
                     "average_precision": pr_auc(positive, p[:, j]) if defined else float("nan")})
    return rows


def _mean_defined(rows: list[dict], key: str) -> float:
    values = [r[key] for r in rows if np.isfinite(r[key])]
    if not values:
        raise MetricInputError("no class has both positives and negatives in y_true")
    return float(np.mean(values))


def mean_ovr_auc(y_true, proba, classes: Sequence) -> float:
    """Unweighted mean over classes of the one-vs-rest ROC AUC, in [0, 1]; 0.5 is random ranking."""
    return _mean_defined(per_class_scores(y_true, proba, classes), "auc")


def mean_average_precision(y_true, proba, classes: Sequence) -> float:
    """Unweighted mean over classes of the one-vs-rest average precision, in [0, 1]."""
    return _mean_defined(per_class_scores(y_true, proba, classes), "average_precision")


def top1_accuracy(y_true, proba, classes: Sequence) -> float:
    """Share of rows whose highest-probability class is the true one (ties: the first class), in [0, 1]."""
    y, p, classes = _checked(y_true, proba, classes)
    top = np.asarray(classes, dtype=object)[p.argmax(axis=1)]
    return float(np.mean(top == y))


def multiclass_log_loss(y_true, proba, classes: Sequence, eps: float = 1e-15) -> float:
    """Mean ``-log p(true class)`` with probabilities clipped to [eps, 1], in [0, inf)."""
    y, p, classes = _checked(y_true, proba, classes)
    index = {c: j for j, c in enumerate(classes)}
    picked = p[np.arange(len(y)), [index[v] for v in y]]
    return float(-np.mean(np.log(np.clip(picked, eps, 1.0))))


METRICS = {"auc_ovr": mean_ovr_auc, "mean_ap": mean_average_precision, "accuracy": top1_accuracy,
           "log_loss": multiclass_log_loss}


def evaluate(y_true, proba, classes: Sequence) -> dict[str, float]:
    """All of :data:`METRICS`, keyed as logged (``auc_ovr``, ``mean_ap``, ``accuracy``, ``log_loss``)."""
    return {name: fn(y_true, proba, classes) for name, fn in METRICS.items()}
