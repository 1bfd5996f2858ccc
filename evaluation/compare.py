"""Champion-versus-challenger comparison: a pure decision on two scores of the same test data, and the paired gain
of one model over another on the same users."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class Verdict:
    challenger_wins: bool
    challenger_score: float
    reference_score: float
    margin: float
    reason: str


def compare_scores(challenger: float, reference: float, *, higher_is_better: bool, margin: float = 0.0,
                   metric: str = "score", reference_name: str = "champion") -> Verdict:
    """Does ``challenger`` beat ``reference`` by more than ``margin`` (absolute, in the metric's units)?

    Ties never win: with ``margin=0`` the challenger must be strictly better. NaN scores never win.
    """
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    if not (math.isfinite(challenger) and math.isfinite(reference)):
        return Verdict(False, challenger, reference, margin,
                       f"{metric} is not finite (challenger {challenger}, {reference_name} {reference})")
    gain = (challenger - reference) if higher_is_better else (reference - challenger)
    wins = gain > margin
    sign = ">" if higher_is_better else "<"
    word = "beats" if wins else "does not beat"
    reason = (f"challenger {metric} {challenger:.4f} {word} {reference_name} {reference:.4f} "
              f"(needs {sign} by more than {margin:g})")
    return Verdict(wins, challenger, reference, margin, reason)


def paired_gain(challenger: ArrayLike, reference: ArrayLike) -> tuple[float, float]:
    """``(mean, standard error)`` of ``challenger - reference`` over paired units (e.g. each user's precision@k of
    two models on the same users); the standard error is 0 for a single unit."""
    a, b = np.asarray(challenger, dtype=float), np.asarray(reference, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"challenger and reference must be paired 1-D arrays, got shapes {a.shape} and {b.shape}")
    difference = a - b
    se = float(difference.std(ddof=1) / math.sqrt(difference.size)) if difference.size > 1 else 0.0
    return float(difference.mean()), se
