import math

import pytest

from evaluation.compare import compare_scores


def test_higher_is_better_needs_strict_gain_above_margin():
    assert compare_scores(0.31, 0.30, higher_is_better=True).challenger_wins
    assert not compare_scores(0.30, 0.30, higher_is_better=True).challenger_wins
    assert not compare_scores(0.305, 0.30, higher_is_better=True, margin=0.01).challenger_wins
    assert compare_scores(0.32, 0.30, higher_is_better=True, margin=0.01).challenger_wins


def test_lower_is_better_for_errors():
    v = compare_scores(0.05, 0.08, higher_is_better=False, metric="mape")
    assert v.challenger_wins and "mape 0.0500 beats champion 0.0800" in v.reason
    assert not compare_scores(0.09, 0.08, higher_is_better=False).challenger_wins


def test_nan_never_wins_and_negative_margin_is_rejected():
    assert not compare_scores(math.nan, 0.5, higher_is_better=True).challenger_wins
    with pytest.raises(ValueError, match="margin"):
        compare_scores(0.5, 0.4, higher_is_better=True, margin=-0.1)


def test_paired_gain_is_the_mean_difference_and_its_standard_error():
    import numpy as np

    from evaluation.compare import paired_gain

    gain, se = paired_gain([0.2, 0.1, 0.3, 0.0], [0.1, 0.1, 0.1, 0.0])
    assert gain == pytest.approx(0.075)
    assert se == pytest.approx(np.std([0.1, 0.0, 0.2, 0.0], ddof=1) / 2)
    assert paired_gain([1.0], [0.5]) == (0.5, 0.0)
    with pytest.raises(ValueError, match="paired"):
        paired_gain([1.0, 2.0], [1.0])
