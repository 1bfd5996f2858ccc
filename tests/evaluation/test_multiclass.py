"""One-vs-rest multi-class metrics: perfect, reversed, hand-computed values and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.metrics import MetricInputError
from evaluation.multiclass import (evaluate, mean_average_precision, mean_ovr_auc, multiclass_log_loss,
                                   per_class_scores, top1_accuracy)

CLASSES = ["a", "b", "c"]
Y = np.array(["a", "b", "c", "a"])
PERFECT = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.7, 0.2, 0.1]])


def test_perfect_and_reversed():
    assert mean_ovr_auc(Y, PERFECT, CLASSES) == 1.0
    assert mean_average_precision(Y, PERFECT, CLASSES) == 1.0
    assert top1_accuracy(Y, PERFECT, CLASSES) == 1.0
    assert mean_ovr_auc(Y, 1 - PERFECT, CLASSES) == 0.0


def test_hand_computed_values():
    proba = np.array([[0.5, 0.3, 0.2], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]])
    rows = {r["class"]: r for r in per_class_scores(Y, proba, CLASSES)}
    # class a: positives score 0.5 and 0.3, negatives 0.6 and 0.2 -> 2 of 4 pairs ordered -> AUC 0.5
    assert rows["a"]["auc"] == pytest.approx(0.5) and rows["a"]["support"] == 2
    # class b: the positive (0.3) against 0.3, 0.2, 0.4 -> (0.5 + 1 + 0) / 3
    assert rows["b"]["auc"] == pytest.approx(0.5)
    assert rows["c"]["auc"] == pytest.approx(1.0)
    assert mean_ovr_auc(Y, proba, CLASSES) == pytest.approx(2 / 3)
    assert top1_accuracy(Y, proba, CLASSES) == pytest.approx(0.5)  # rows 0 and 2
    assert multiclass_log_loss(Y, proba, CLASSES) == pytest.approx(-np.mean(np.log([0.5, 0.3, 0.6, 0.3])))
    assert set(evaluate(Y, proba, CLASSES)) == {"auc_ovr", "mean_ap", "accuracy", "log_loss"}


def test_a_class_absent_from_the_truth_is_left_out_of_the_means():
    y = np.array(["a", "b", "a", "b"])
    proba = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.3, 0.6, 0.1]])
    rows = per_class_scores(y, proba, CLASSES)
    assert np.isnan(rows[2]["auc"]) and rows[2]["support"] == 0
    assert mean_ovr_auc(y, proba, CLASSES) == 1.0


def test_bad_input_names_the_problem():
    with pytest.raises(MetricInputError, match="shape"):
        mean_ovr_auc(Y, PERFECT[:, :2], CLASSES)
    with pytest.raises(MetricInputError, match="not in classes"):
        mean_ovr_auc(np.array(["a", "b", "z", "a"]), PERFECT, CLASSES)
    with pytest.raises(MetricInputError, match="both positives and negatives"):
        mean_ovr_auc(np.array(["a"] * 4), PERFECT, CLASSES)
