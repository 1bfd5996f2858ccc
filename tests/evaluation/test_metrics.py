import math
from itertools import combinations

import numpy as np
import pytest
from sklearn import metrics as skm

from evaluation import metrics as m
from evaluation.metrics import MetricInputError

RANKING = [m.precision_at_k, m.recall_at_k, m.ndcg_at_k, m.map_at_k, m.hit_rate_at_k]

# u1 likes a and b; u2 likes c. Recommendations are ranked best first.
RELEVANT = {"u1": {"a", "b"}, "u2": {"c"}}
MISS = {"u1": ["x", "y"], "u2": ["y", "x"]}
# u1: hit at rank 2 of 3 (a); u2: hit at rank 1 (c).
MIXED = {"u1": ["x", "a", "y"], "u2": ["c", "x", "y"]}


@pytest.mark.parametrize("metric", RANKING)
def test_ranking_perfect_is_one_and_miss_is_zero(metric):
    # Each user gets exactly their k = 2 relevant items, in any order.
    assert metric({"u1": {"a", "b"}, "u2": {"c", "d"}}, {"u1": ["b", "a"], "u2": ["d", "c"]}, 2) == 1.0
    assert metric(RELEVANT, MISS, 2) == 0.0


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        # u1: 1 hit / 3, u2: 1 hit / 3 -> 1/3
        (m.precision_at_k, 1 / 3),
        # u1: 1 of 2 relevant, u2: 1 of 1 -> (0.5 + 1) / 2
        (m.recall_at_k, 0.75),
        # u1: DCG 1/log2(3), IDCG 1 + 1/log2(3); u2: 1/1 -> mean of the two
        (m.ndcg_at_k, ((1 / math.log2(3)) / (1 + 1 / math.log2(3)) + 1) / 2),
        # u1: precision@2 = 1/2, divided by min(3, 2) = 2 -> 0.25; u2: 1/1 -> (0.25 + 1) / 2
        (m.map_at_k, 0.625),
        (m.hit_rate_at_k, 1.0),
    ],
)
def test_ranking_hand_computed(metric, expected):
    assert metric(RELEVANT, MIXED, 3) == pytest.approx(expected, abs=1e-15)


def test_map_normalises_by_relevant_count_when_smaller_than_k():
    # Hits at ranks 1 and 3 of 5, |relevant| = 2: (1/1 + 2/3) / min(5, 2) = 5/6
    assert m.map_at_k({"u": ["a", "b"]}, {"u": ["a", "x", "b", "y", "z"]}, 5) == pytest.approx(5 / 6)


def test_k_larger_than_catalogue():
    # Every item of a 3-item catalogue recommended, k = 10.
    relevant, recommended = {"u": {"a", "b", "c"}}, {"u": ["a", "b", "c"]}
    assert m.precision_at_k(relevant, recommended, 10) == pytest.approx(3 / 10)  # divides by k
    assert m.recall_at_k(relevant, recommended, 10) == 1.0
    assert m.ndcg_at_k(relevant, recommended, 10) == pytest.approx(1.0)
    assert m.map_at_k(relevant, recommended, 10) == pytest.approx(1.0)
    assert m.coverage(recommended, ["a", "b", "c"], 10) == 1.0


def test_user_without_recommendations_scores_zero_and_empty_truth_is_skipped():
    relevant = {"u1": {"a"}, "u2": {"b"}, "u3": set()}
    recommended = {"u1": ["a"]}  # u2 has none; u3 has no relevant item and is not averaged
    # u1 scores 1 (precision 1/5), u2 scores 0 -> mean over two users
    expected = {m.precision_at_k: 0.1, m.recall_at_k: 0.5, m.ndcg_at_k: 0.5, m.map_at_k: 0.5, m.hit_rate_at_k: 0.5}
    for metric, value in expected.items():
        assert metric(relevant, recommended, 5) == pytest.approx(value)


@pytest.mark.parametrize("metric", RANKING)
def test_ranking_rejects_bad_input(metric):
    with pytest.raises(MetricInputError, match="no user with at least one relevant item"):
        metric({}, MIXED, 10)
    with pytest.raises(MetricInputError, match="no user with at least one relevant item"):
        metric({"u1": []}, MIXED, 10)
    with pytest.raises(MetricInputError, match="k must be a positive integer"):
        metric(RELEVANT, MIXED, 0)
    with pytest.raises(MetricInputError, match="more than once"):
        metric(RELEVANT, {"u1": ["a", "a"]}, 2)


def test_coverage():
    # Full lists show x, a, y, c; only a and c are in the catalogue of 4 -> 2/4.
    assert m.coverage(MIXED, ["a", "b", "c", "d"]) == pytest.approx(2 / 4)
    # Top-1 lists show x and c -> 2 of 4.
    assert m.coverage(MIXED, ["a", "c", "x", "y"], 1) == pytest.approx(2 / 4)
    with pytest.raises(MetricInputError, match="catalog is empty"):
        m.coverage(MIXED, [])
    with pytest.raises(MetricInputError, match="recommended is empty"):
        m.coverage({}, ["a"])


def test_personalization_extremes_and_hand_value():
    assert m.personalization({"u1": ["a", "b"], "u2": ["a", "b"], "u3": ["b", "a"]}, 2) == 0.0
    assert m.personalization({"u1": ["a", "b"], "u2": ["c", "d"]}, 2) == 1.0
    # Overlaps at k=2: (u1,u2) = {b} -> 1/2, (u1,u3) = {} -> 0, (u2,u3) = {c} -> 1/2; mean 1/3 -> 2/3
    value = m.personalization({"u1": ["a", "b"], "u2": ["b", "c"], "u3": ["c", "d"], "u4": []}, 2)
    assert value == pytest.approx(2 / 3)
    with pytest.raises(MetricInputError, match="at least two users"):
        m.personalization({"u1": ["a"], "u2": []}, 2)


def test_personalization_matches_pairwise_definition_at_scale():
    rng = np.random.default_rng(0)
    k, items = 10, np.arange(300)
    recommended = {u: list(rng.choice(items, size=k, replace=False)) for u in range(5000)}
    value = m.personalization(recommended, k)
    sample = dict(list(recommended.items())[:60])
    brute = 1 - np.mean([len(set(a) & set(b)) / k for a, b in combinations(sample.values(), 2)])
    assert m.personalization(sample, k) == pytest.approx(brute, abs=1e-12)
    assert 0.9 < value < 1.0  # random lists from 300 items share about 10/300 of an item list


def test_evaluate_ranking_keys():
    result = m.evaluate_ranking(RELEVANT, MIXED, 3, ["a", "b", "c", "x", "y"])
    assert list(result) == [
        "precision_at_3",
        "recall_at_3",
        "ndcg_at_3",
        "map_at_3",
        "hit_rate_at_3",
        "coverage",
        "personalization",
    ]
    assert result["coverage"] == pytest.approx(4 / 5)
    assert result["recall_at_3"] == pytest.approx(0.75)


def test_regression_hand_computed():
    # errors 1, -2, 0 -> MAE 3/3 = 1, RMSE sqrt((1 + 4 + 0) / 3)
    assert m.mae([1, 2, 3], [2, 0, 3]) == 1.0
    assert m.rmse([1, 2, 3], [2, 0, 3]) == pytest.approx(math.sqrt(5 / 3))
    assert m.rmse([1.5, 2.5], [1.5, 2.5]) == 0.0


@pytest.mark.parametrize("metric", [m.rmse, m.mae, m.mape, m.smape])
def test_pointwise_input_errors(metric):
    with pytest.raises(MetricInputError, match="y_true is empty"):
        metric([], [])
    with pytest.raises(MetricInputError, match="y_true has 2 values but y_pred has 3"):
        metric([1, 2], [1, 2, 3])
    with pytest.raises(MetricInputError, match="NaN"):
        metric([1, np.nan], [1, 2])


@pytest.mark.parametrize(
    ("ours", "reference"),
    [
        (m.auc, skm.roc_auc_score),
        (m.pr_auc, skm.average_precision_score),
        (m.brier, skm.brier_score_loss),
        (m.log_loss, skm.log_loss),
    ],
)
def test_classification_matches_sklearn(ours, reference):
    rng = np.random.default_rng(42)
    y_true = rng.integers(0, 2, size=500)
    y_prob = np.clip(0.3 * y_true + 0.7 * rng.random(500), 0, 1)
    assert ours(y_true, y_prob) == pytest.approx(reference(y_true, y_prob), abs=1e-12)
    assert ours(y_true.astype(bool), y_prob) == pytest.approx(reference(y_true, y_prob), abs=1e-12)


def test_classification_reference_values_and_errors():
    # Pairs (positive, negative) ranked correctly: (0.8 > 0.1), (0.8 > 0.4), (0.35 > 0.1), (0.35 < 0.4) -> 3/4
    assert m.auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    # ((0.1)^2 + (0.4)^2 + (0.65)^2 + (0.2)^2) / 4
    assert m.brier([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    for metric in (m.auc, m.pr_auc, m.brier, m.log_loss):
        with pytest.raises(MetricInputError, match="only class 1"):
            metric([1, 1, 1], [0.2, 0.5, 0.9])
        with pytest.raises(MetricInputError, match="only 0 and 1"):
            metric([0, 2], [0.2, 0.5])
    with pytest.raises(MetricInputError, match=r"y_prob must be probabilities in \[0, 1\]"):
        m.log_loss([0, 1], [0.2, 1.5])


def test_mape_is_a_fraction_and_rejects_zero_actuals():
    # |100 - 98| / 100 = 0.02 and |50 - 51.3| / 50 = 0.026 -> mean 0.023
    assert m.mape([100, 50], [98, 51.3]) == pytest.approx(0.023)
    with pytest.raises(MetricInputError, match="mape is undefined: y_true has 1 zero value"):
        m.mape([100, 0], [98, 1])


def test_smape():
    # 2 * 10 / (100 + 90) = 0.10526..., 0/0 -> 0, opposite signs -> 2; mean of the three
    assert m.smape([100, 0, 1], [90, 0, -1]) == pytest.approx((20 / 190 + 0 + 2) / 3)
    assert m.smape([1, 2], [1, 2]) == 0.0


def test_mase_hand_computed():
    # Seasonal-naive (season 2) errors of y_train [1, 3, 2, 6]: |2 - 1| = 1, |6 - 3| = 3 -> scale 2.
    # Forecast errors |5 - 4| = 1 and |7 - 10| = 3 -> MAE 2 -> MASE 2 / 2 = 1.
    assert m.mase([5, 7], [4, 10], [1, 3, 2, 6], season=2) == 1.0
    # Series shorter than season + 1 falls back to lag 1: |3 - 1| = 2, |2 - 3| = 1 -> scale 1.5.
    assert m.mase([5, 7], [4, 10], [1, 3, 2], season=12) == pytest.approx(2 / 1.5)
    with pytest.raises(MetricInputError, match="zero error"):
        m.mase([1], [2], [4, 4, 4])
    with pytest.raises(MetricInputError, match="y_train is empty"):
        m.mase([1], [2], [])
    with pytest.raises(MetricInputError, match="season must be a positive integer"):
        m.mase([1], [2], [1, 2], season=0)



def test_mase_leaves_missing_training_values_out_of_its_scale():
    # season 2, y_train [1, 3, nan, 6, 4]: pairs (1, nan) and (3, 6), (nan, 4) -> only |6 - 3| = 3 is observed
    assert m.mase([5], [2], [1, 3, np.nan, 6, 4], season=2) == pytest.approx(3 / 3)
    with pytest.raises(MetricInputError, match="no pair of observed values 2 apart"):
        m.mase([5], [2], [1, np.nan, np.nan, 6], season=2)
    with pytest.raises(MetricInputError, match="NaN"):
        m.mase([np.nan], [2], [1, 3, 2, 6], season=2)  # the actuals must be complete: see observed()


def test_observed_keeps_the_positions_of_observed_actuals():
    truth, pred, low = m.observed([1.0, np.nan, 3.0], [1.5, 2.0, 2.5], [0.0, 1.0, 2.0])
    assert truth.tolist() == [1.0, 3.0] and pred.tolist() == [1.5, 2.5] and low.tolist() == [0.0, 2.0]
    assert m.mape(truth, pred) == pytest.approx(np.mean([0.5, 0.5 / 3]))
    with pytest.raises(MetricInputError, match="no observed value"):
        m.observed([np.nan, np.nan], [1.0, 2.0])

def test_interval_coverage():
    # 1 in [0, 2] yes, 5 in [4, 5] yes (inclusive), 9 in [1, 3] no -> 2/3
    assert m.interval_coverage([1, 5, 9], [0, 4, 1], [2, 5, 3]) == pytest.approx(2 / 3)
    with pytest.raises(MetricInputError, match="y_true has 1 values but upper has 2"):
        m.interval_coverage([1], [0], [2, 3])
    with pytest.raises(MetricInputError, match="lower exceeds upper at position 0"):
        m.interval_coverage([1], [3], [2])


def test_metrics_map_names_every_metric():
    assert m.METRICS["precision_at_k"] is m.precision_at_k
    assert set(m.METRICS) >= {"rmse", "mae", "auc", "pr_auc", "brier", "log_loss", "mape", "smape", "mase"}
    assert all(name == func.__name__ for name, func in m.METRICS.items())


def test_hit_share_counts_the_hits_on_given_items():
    relevant = {"u1": {"a", "new"}, "u2": {"b"}, "u3": {"new"}, "u4": set()}
    recommended = {"u1": ["new", "a", "x"], "u2": ["x", "b"], "u3": ["x", "y", "new"], "u4": ["new"]}
    assert m.hit_share(relevant, recommended, 3, {"new"}) == pytest.approx(2 / 4)  # hits: new, a, b, new
    assert m.hit_share(relevant, recommended, 2, {"new"}) == pytest.approx(1 / 3)  # u3's hit is at rank 3
    assert m.hit_share(relevant, {"u1": ["x"]}, 3, {"new"}) == 0.0  # no hits at all
    with pytest.raises(MetricInputError, match="k must be"):
        m.hit_share(relevant, recommended, 0, {"new"})


def test_precision_by_user_holds_the_terms_of_the_mean():
    relevant = {"u1": {"a", "b"}, "u2": {"c"}, "u3": set()}
    recommended = {"u1": ["a", "x", "b"], "u2": ["x"]}
    by_user = m.precision_at_k_by_user(relevant, recommended, 2)
    assert by_user == {"u1": 0.5, "u2": 0.0}  # u3 has nothing relevant
    assert np.mean(list(by_user.values())) == m.precision_at_k(relevant, recommended, 2)


def test_evaluate_ranking_equals_the_single_metrics():
    rng = np.random.default_rng(3)
    catalog = [f"i{j}" for j in range(30)]
    relevant = {f"u{u}": set(rng.choice(catalog, size=rng.integers(1, 6), replace=False)) for u in range(40)}
    recommended = {u: list(rng.choice(catalog, size=10, replace=False)) for u in relevant}
    recommended["u0"] = recommended["u0"][:4]  # a short list
    found = m.evaluate_ranking(relevant, recommended, 10, catalog)
    assert found == {"precision_at_10": m.precision_at_k(relevant, recommended, 10),
                     "recall_at_10": m.recall_at_k(relevant, recommended, 10),
                     "ndcg_at_10": m.ndcg_at_k(relevant, recommended, 10),
                     "map_at_10": m.map_at_k(relevant, recommended, 10),
                     "hit_rate_at_10": m.hit_rate_at_k(relevant, recommended, 10),
                     "coverage": m.coverage(recommended, catalog, 10),
                     "personalization": m.personalization(recommended, 10)}
    assert 0 < found["precision_at_10"] < 1
