from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest

from models.churn.classifier import (
    ChurnClassifier,
    PlattCalibration,
    choose_calibration,
    classification_at,
    coefficient_table,
    complete_params,
    fit_pipeline,
    make_pipeline,
    odds_ratio_table,
    risk_segments,
    suggest_params,
    tune_threshold,
)
from models.churn.columns import FeatureSpec, FeatureTypeError, coerce_features, infer_spec


def toy(n: int = 600, seed: int = 0, intercept: float = -0.5) -> tuple[pd.DataFrame, np.ndarray, FeatureSpec]:
    """Churn rises with recency, falls with frequency, and is higher on the 'monthly' plan (most are yearly)."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "recency": rng.exponential(40, n),
        "frequency": rng.poisson(5, n).astype(float),
        "senior": rng.integers(0, 2, n).astype(float),
        "plan": rng.choice(["monthly", "yearly", "two-year"], n, p=[0.25, 0.5, 0.25]),
    })
    logit = 0.03 * X["recency"] - 0.3 * X["frequency"] + 1.2 * (X["plan"] == "monthly") + intercept
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    return X, y, FeatureSpec.from_frame(X)


def test_risk_segments_cut_at_0_4_and_0_7():
    p = np.array([0.0, 0.3999, 0.4, 0.6999, 0.7, 1.0])
    assert risk_segments(p).tolist() == ["low", "low", "medium", "medium", "high", "high"]


def test_threshold_maximises_f1_by_hand():
    y = np.array([1, 1, 0, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.3, 0.1])
    # F1 at 0.9, 0.8, 0.7, 0.6, 0.3, 0.1: 2/4, 4/5, 4/6, 6/7, 6/8, 6/9 -> 0.6 wins.
    assert tune_threshold(y, p) == 0.6
    assert classification_at(y, p, 0.6) == pytest.approx({"precision": 0.75, "recall": 1.0, "f1": 6 / 7})


def test_threshold_minimises_cost_with_a_cost_ratio():
    y = np.array([1, 1, 0, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.3, 0.1])
    # Cost = FP + r * FN. r = 0.1: 0.9 -> 0.2, 0.8 -> 0.1, 0.7 -> 1.1, 0.6 -> 1.0: 0.8 wins.
    assert tune_threshold(y, p, cost_ratio=0.1) == 0.8
    # r = 10: 0.6 -> 1 (all churners caught, one false alarm) wins.
    assert tune_threshold(y, p, cost_ratio=10) == 0.6
    # A false alarm on top: at r = 0.5 flagging nobody (0.5) beats 0.9 (1.5) and 0.2 (1.0), so the
    # threshold lies above every score.
    assert tune_threshold(np.array([0, 1]), np.array([0.9, 0.2]), cost_ratio=0.5) > 0.9
    with pytest.raises(ValueError, match="cost_ratio"):
        tune_threshold(y, p, cost_ratio=0)


def test_threshold_keeps_ties_together():
    assert tune_threshold(np.array([1, 0, 0]), np.array([0.5, 0.5, 0.2])) == 0.5


def test_platt_calibration_recovers_a_known_distortion():
    rng = np.random.default_rng(1)
    true_p = rng.uniform(0.02, 0.98, 20000)
    y = (rng.random(true_p.size) < true_p).astype(int)
    logit = np.log(true_p / (1 - true_p))
    distorted = 1 / (1 + np.exp(-(2.0 * logit + 1.0)))  # over-confident and shifted up
    cal = PlattCalibration.fit(y, distorted)
    assert cal.slope == pytest.approx(0.5, abs=0.03)
    assert cal.intercept == pytest.approx(-0.5, abs=0.05)
    np.testing.assert_allclose(cal.apply(distorted), true_p, atol=0.03)


def test_class_weights_distort_probabilities_and_calibration_undoes_it():
    X, y, spec = toy(1500, intercept=-2.5)
    assert 0.08 < y.mean() < 0.3
    fit, val = slice(0, 1000), slice(1000, None)
    pipe = make_pipeline({"class_weight": "balanced"}, spec)
    fit_pipeline(pipe, X.iloc[fit], y[fit])
    p = pipe.predict_proba(X.iloc[val])[:, 1]
    assert p.mean() > y[val].mean() + 0.05  # balanced weights inflate the minority class
    choice = choose_calibration(y[val], p, seed=0)
    assert choice.calibration is not None
    assert choice.brier_calibrated < choice.brier_raw
    assert abs(choice.calibration.apply(p).mean() - y[val].mean()) < 0.02


def test_pipeline_uses_splines_on_continuous_columns_only_and_ignores_unseen_categories():
    X, y, spec = toy()
    assert spec.continuous == ("recency", "frequency") and spec.categorical == ("plan",)
    pipe = make_pipeline({"numeric_transform": "spline", "n_knots": 4, "log_transform": True}, spec)
    fit_pipeline(pipe, X, y)
    terms = coefficient_table(pipe)["term"].tolist()
    assert sum(t.startswith("recency_sp_") for t in terms) == 6  # n_knots + degree - 1 basis functions
    assert "senior" in terms and not any(t.startswith("senior_sp") for t in terms)
    unseen = X.head(3).assign(plan="lifetime")  # never seen in training
    p = pipe.predict_proba(unseen)[:, 1]
    assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()


def test_penalties_map_to_solvers_and_l1_zeroes_coefficients():
    X, y, spec = toy()
    X = X.assign(noise=np.random.default_rng(3).normal(size=len(X)))
    spec = FeatureSpec.from_frame(X)
    l1 = make_pipeline({"penalty": "l1", "C": 0.02}, spec)
    fit_pipeline(l1, X, y)
    assert l1.named_steps["model"].solver == "liblinear"
    assert (l1.named_steps["model"].coef_ == 0).sum() >= 1
    net = make_pipeline({"penalty": "elasticnet", "l1_ratio": 0.5}, spec)
    assert net.named_steps["model"].solver == "saga" and net.named_steps["model"].l1_ratio == 0.5
    with pytest.raises(ValueError, match="l1_ratio"):
        complete_params({"penalty": "elasticnet", "l1_ratio": 1.0})
    with pytest.raises(ValueError, match="penalty"):
        complete_params({"penalty": "l3"})


def test_search_space_gives_complete_parameters():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(20):
        trial = study.ask()
        params = complete_params(suggest_params(trial))
        seen.add(params["penalty"])
        assert 1e-3 <= params["C"] <= 30
        assert (params["n_knots"] >= 3) == (params["numeric_transform"] == "spline")
        study.tell(trial, 0.5)
    assert seen == {"l1", "l2", "elasticnet"}


def test_odds_ratios_point_the_right_way():
    X, y, spec = toy(3000)
    pipe = make_pipeline({}, spec)
    fit_pipeline(pipe, X, y)
    table = odds_ratio_table(ChurnClassifier(pipe, spec, 0.5), X).set_index("comparison")["odds_ratio"]
    assert table["p90 vs p10"].size == 2 and table["max vs min"].size == 1  # senior is 0/1: min to max
    ratios = odds_ratio_table(ChurnClassifier(pipe, spec, 0.5), X).set_index("feature")["odds_ratio"]
    # exact values: exp(coefficient x (p90 - p10)) with the true coefficients 0.03 and -0.3
    p10, p90 = np.quantile(X["recency"], [0.1, 0.9])
    assert ratios["recency"] == pytest.approx(np.exp(0.03 * (p90 - p10)), rel=0.35)
    assert ratios["frequency"] < 0.3
    assert table["monthly vs yearly"] == pytest.approx(np.exp(1.2), rel=0.35)  # yearly: the reference
    assert 0.6 < table["two-year vs yearly"] < 1.6


def test_blank_strings_in_numeric_columns_are_missing_values():
    raw = pd.DataFrame({"TotalCharges": ["29.85", " ", "1889.5", ""], "MonthlyCharges": ["29.85", "56.95", "53.85", "42.3"],
                        "Contract": ["Month-to-month", "One year", "", "Two year"]})
    spec = infer_spec(raw)
    assert spec.numeric == ("TotalCharges", "MonthlyCharges") and spec.categorical == ("Contract",)
    assert spec.lenient == ("TotalCharges",)
    X = coerce_features(raw, spec)
    assert X["TotalCharges"].tolist()[0] == 29.85 and X["TotalCharges"].isna().tolist() == [False, True, False, True]
    assert X["Contract"].tolist()[2] == "missing"
    with pytest.raises(FeatureTypeError, match=r"column 'TotalCharges' in row 1 must hold a number \(text, not a number\), got 'n/a'") as err:
        coerce_features(raw.assign(TotalCharges=["1", "n/a", "2", "3"]), spec)
    assert (err.value.column, err.value.row) == ("TotalCharges", 1)
