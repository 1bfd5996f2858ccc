"""Champion-versus-challenger comparison: a pure decision on two scores of the same test data."""

from __future__ import annotations

import math
from dataclasses import dataclass


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
