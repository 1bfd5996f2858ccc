"""The NumPy-compiled churn pipeline scores exactly as the scikit-learn pipeline it was compiled from."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from models.churn.classifier import ChurnClassifier, PlattCalibration, fit_pipeline, make_pipeline
from models.churn.columns import FeatureSpec, FrameColumns, coerce_arrays, coerce_features, infer_spec
from models.churn.compiled import UnsupportedPipeline, compile_pipeline
from models.churn.pyfunc import ChurnModel

PARAMS = [
    {},
    {"log_transform": True, "penalty": "l1", "C": 0.5},
    {"numeric_transform": "spline", "n_knots": 3},
    {"numeric_transform": "spline", "n_knots": 6, "log_transform": True, "class_weight": "balanced"},
    {"numeric_transform": "spline", "n_knots": 8, "penalty": "elasticnet", "l1_ratio": 0.5, "C": 3.0},
]


def shop_like(n: int = 500, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, FeatureSpec]:
    """Skewed counts and amounts, a binary flag, a constant column, missing values and three categoricals."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "recency_days": rng.exponential(60, n),
        "frequency": rng.poisson(4, n).astype(float),
        "monetary": rng.lognormal(5, 1.2, n),
        "spend_trend": rng.normal(0, 1, n),
        "has_app": rng.integers(0, 2, n).astype(float),
        "constant": np.full(n, 3.0),
        "age": np.where(rng.random(n) < 0.1, np.nan, rng.integers(18, 80, n).astype(float)),
        "gender": rng.choice(["Female", "Male", "missing"], n),
        "location": rng.choice(["New York", "Paris", "Berlin", "Tokyo"], n),
        "profession": rng.choice(["Engineer", "Doctor", "Artist"], n),
    })
    logit = 0.02 * X["recency_days"] - 0.4 * X["frequency"] + 0.5 * X["spend_trend"] + (X["location"] == "Paris") - 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    return X, y, FeatureSpec.from_frame(X)


def requests_for(X: pd.DataFrame, spec: FeatureSpec, seed: int = 1) -> pd.DataFrame:
    """Scoring rows beyond the training data: unseen levels, missing values, values outside the training range."""
    rng = np.random.default_rng(seed)
    rows = X.sample(200, random_state=seed).reset_index(drop=True)
    for col in spec.numeric:
        spread = float(np.nanstd(X[col].to_numpy(float))) or 1.0
        rows.loc[0:19, col] = rows.loc[0:19, col] + rng.choice([-1, 1], 20) * 10 * spread  # both tails
        rows.loc[20:24, col] = np.nan
    rows.loc[30:39, spec.categorical[0]] = "never seen"
    rows.loc[40:44, list(spec.categorical)] = "unknown"
    return rows


@pytest.mark.parametrize("params", PARAMS)
def test_compiled_probabilities_equal_the_pipeline(params):
    X, y, spec = shop_like()
    pipeline = make_pipeline(params, spec, seed=3)
    fit_pipeline(pipeline, X, y)
    rows = coerce_features(requests_for(X, spec), spec)
    compiled = compile_pipeline(pipeline, spec)
    numeric, categorical = coerce_arrays(rows, spec)
    np.testing.assert_allclose(compiled.predict_proba(numeric, categorical), pipeline.predict_proba(rows)[:, 1],
                               rtol=0, atol=1e-9)
    np.testing.assert_allclose(compiled.decision_function(numeric, categorical), pipeline.decision_function(rows),
                               rtol=0, atol=1e-9)
    one = compiled.predict_proba(numeric[:1], [c[:1] for c in categorical])  # a single row, as served
    assert one.shape == (1,) and one[0] == pytest.approx(pipeline.predict_proba(rows.head(1))[0, 1], abs=1e-9)


def test_blank_strings_in_a_raw_table_score_as_in_training():
    rng = np.random.default_rng(4)
    n = 300
    tenure = rng.integers(0, 72, n)
    raw = pd.DataFrame({"tenure": tenure.astype(str), "MonthlyCharges": rng.uniform(20, 110, n).round(2).astype(str),
                        "TotalCharges": np.where(tenure < 3, " ", (tenure * 50.5).astype(str)),
                        "Contract": rng.choice(["Month-to-month", "One year", "Two year"], n)})
    y = (rng.random(n) < 1 / (1 + np.exp(0.05 * tenure - 1))).astype(int)
    spec = infer_spec(raw)
    X = coerce_features(raw, spec)
    pipeline = make_pipeline({"numeric_transform": "spline", "n_knots": 5, "log_transform": True}, spec)
    fit_pipeline(pipeline, X, y)
    requests = raw.head(50).assign(Contract=["Lifetime"] * 10 + raw["Contract"].head(40).tolist())
    requests.loc[10:14, "TotalCharges"] = ["", " ", None, "1e7", "-5"]
    numeric, categorical = coerce_arrays(requests, spec)
    expected = pipeline.predict_proba(coerce_features(requests, spec))[:, 1]
    np.testing.assert_allclose(compile_pipeline(pipeline, spec).predict_proba(numeric, categorical), expected,
                               rtol=0, atol=1e-9)


def test_coerce_arrays_reads_small_and_large_frames_alike():
    X, _, spec = shop_like(n=300)
    mixed = X.assign(frequency=X["frequency"].astype(int), age=X["age"].astype(object),
                     location=X["location"].astype("category"))
    small = [coerce_arrays(mixed.iloc[i:i + 1], spec) for i in range(5)]
    large_numeric, large_categorical = coerce_arrays(mixed, spec)
    assert len(mixed) > FrameColumns.SMALL
    for i, (numeric, categorical) in enumerate(small):
        np.testing.assert_array_equal(numeric[0], large_numeric[i])
        assert [c[0] for c in categorical] == [c[i] for c in large_categorical]
    frame = coerce_features(mixed, spec)
    assert list(frame.columns) == spec.features and frame.index.equals(mixed.index)


def test_an_infinite_number_is_rejected_naming_its_column():
    X, y, spec = shop_like(n=200)
    pipeline = make_pipeline({}, spec)
    fit_pipeline(pipeline, X, y)
    model = ChurnModel()
    model.classifier = ChurnClassifier(pipeline, spec, threshold=0.5)
    rows = X.head(2).assign(customer_id=["a", "b"], monetary=[1.0, np.inf])
    with pytest.raises(MlflowException, match=r"column 'monetary' in row 1 must hold a number \(not a finite number\), got inf") as err:
        model.predict(None, rows)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_the_served_class_uses_the_compiled_form_and_falls_back_to_scikit_learn():
    X, y, spec = shop_like()
    spec = replace(spec, nullable=tuple(spec.features))  # the requests have missing values in every column
    pipeline = make_pipeline({"numeric_transform": "spline", "n_knots": 4}, spec)
    fit_pipeline(pipeline, X, y)
    classifier = ChurnClassifier(pipeline, spec, threshold=0.4, calibration=PlattCalibration(1.2, -0.3))
    rows = requests_for(X, spec).assign(customer_id=[f"C{i}" for i in range(200)])
    expected = classifier.predict_proba(coerce_features(rows, spec))

    model = ChurnModel()
    model.classifier = classifier
    assert model.compiled() is not None
    batch = model.predict(None, rows)["churn_probability"].to_numpy()
    singles = np.array([model.predict(None, rows.iloc[[i]])["churn_probability"].iloc[0] for i in range(0, 200, 7)])
    np.testing.assert_allclose(batch, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(singles, expected[::7], rtol=0, atol=1e-9)

    class Wrapped(type(pipeline)):  # a pipeline the compiler does not know: scored by scikit-learn instead
        pass

    fallback = ChurnModel()
    fallback.classifier = ChurnClassifier(Wrapped(pipeline.steps), spec, threshold=0.4,
                                          calibration=classifier.calibration)
    assert fallback.compiled() is None
    np.testing.assert_allclose(fallback.predict(None, rows)["churn_probability"].to_numpy(), expected, rtol=0,
                               atol=1e-12)


def test_unsupported_settings_are_refused():
    X, y, spec = shop_like(n=200)
    pipeline = make_pipeline({"numeric_transform": "spline"}, spec)
    fit_pipeline(pipeline, X, y)
    pipeline.named_steps["features"].named_transformers_["num"].named_steps["spline"].extrapolation = "linear"
    with pytest.raises(UnsupportedPipeline, match="spline"):
        compile_pipeline(pipeline, spec)
    other = FeatureSpec(spec.numeric, spec.categorical[:-1], spec.continuous)
    with pytest.raises(UnsupportedPipeline):
        compile_pipeline(make_pipeline({}, spec).fit(X, y), other)
