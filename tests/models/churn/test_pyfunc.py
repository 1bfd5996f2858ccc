from __future__ import annotations

import re
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from models.churn.classifier import PlattCalibration, fit_pipeline, make_pipeline, risk_segments
from models.churn.columns import coerce_features, infer_spec
from models.churn.contract import model_signature
from models.churn.pyfunc import ChurnModel, load_classifier, model_config, save_artifacts

MODELS_DIR = Path(__file__).resolve().parents[3] / "models"


def telco_like(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Raw strings as read from a CSV, with blank TotalCharges like the IBM Telco file."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, n)
    monthly = rng.uniform(20, 110, n).round(2)
    contract = rng.choice(["Month-to-month", "One year", "Two year"], n)
    churn = rng.random(n) < 1 / (1 + np.exp(-(1.5 * (contract == "Month-to-month") - 0.04 * tenure + 0.01 * monthly - 1)))
    total = np.where(tenure == 0, " ", (tenure * monthly).round(2).astype(str))
    return pd.DataFrame({"customerID": [f"{i:04d}-X" for i in range(n)], "tenure": tenure.astype(str),
                         "MonthlyCharges": monthly.astype(str), "TotalCharges": total, "Contract": contract,
                         "Churn": np.where(churn, "Yes", "No")})


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A classifier trained on the raw table, saved as the pyfunc model and loaded back with MLflow."""
    from models.churn.classifier import ChurnClassifier

    raw = telco_like()
    spec = infer_spec(raw, exclude=["customerID", "Churn"])
    X = coerce_features(raw, spec)
    y = (raw["Churn"] == "Yes").to_numpy(int)
    pipeline = make_pipeline({"numeric_transform": "spline", "n_knots": 4, "class_weight": "balanced"}, spec)
    fit_pipeline(pipeline, X, y)
    classifier = ChurnClassifier(pipeline, spec, threshold=0.45, calibration=PlattCalibration(0.9, -0.4))
    folder = tmp_path_factory.mktemp("churn-model")
    artifacts = save_artifacts(classifier, model_config(classifier, "churn", source="table"), folder / "artifacts")
    requests = pd.concat([pd.DataFrame({"customer_id": raw["customerID"]}), X], axis=1)
    example = requests.head(3)
    mlflow.pyfunc.save_model(folder / "model", python_model=str(MODELS_DIR / "churn" / "pyfunc.py"), artifacts=artifacts,
                             code_paths=[str(MODELS_DIR)], signature=model_signature(example, spec, "churn"),
                             input_example=example, pip_requirements=["mlflow", "scikit-learn", "pandas"])
    return {"model": mlflow.pyfunc.load_model(str(folder / "model")), "classifier": classifier, "raw": raw,
            "X": X, "requests": requests, "artifacts": artifacts}


def test_round_trip_gives_the_training_time_probabilities(served):
    out = served["model"].predict(served["requests"])
    expected = served["classifier"].predict_proba(served["X"])
    assert list(out.columns) == ["customer_id", "churn_probability", "risk_segment", "churn"]
    assert out["customer_id"].tolist() == served["raw"]["customerID"].tolist()
    np.testing.assert_allclose(out["churn_probability"].to_numpy(), expected, rtol=0, atol=1e-12)
    assert out["risk_segment"].tolist() == risk_segments(expected).tolist()
    assert out["churn"].tolist() == (expected >= 0.45).tolist()
    assert {"low", "medium", "high"} == set(out["risk_segment"])


def test_signature_declares_numbers_as_any_so_the_model_sees_them_unconverted(served):
    schema = {c.name: c.to_dict()["type"] for c in served["model"].metadata.get_input_schema().inputs}
    # MLflow would turn true into 1.0 and "3" into 3.0 in a double column: numbers are checked by the model
    assert schema["TotalCharges"] == "any" and schema["MonthlyCharges"] == "any" and schema["tenure"] == "any"
    assert schema["Contract"] == "string" and schema["customer_id"] == "string"


def test_blank_and_text_numbers_are_handled_as_in_training(served):
    row = served["requests"].iloc[[5, 5, 5, 5]].reset_index(drop=True)
    row["TotalCharges"] = [" ", "", None, "1234.5"]
    out = served["model"].predict(row)["churn_probability"].to_numpy()
    assert out[0] == out[1] == out[2]  # all three mean "missing": imputed with the training median
    raw_like = served["raw"].iloc[[5, 5]].reset_index(drop=True).assign(TotalCharges=[" ", "1234.5"])
    expected = served["classifier"].predict_proba(coerce_features(raw_like, served["classifier"].spec))
    np.testing.assert_allclose(out[[0, 3]], expected, atol=1e-12)


def test_an_unseen_category_is_scored(served):
    row = served["requests"].iloc[[0, 0, 0]].reset_index(drop=True).assign(Contract=["Lifetime", "Forever", "Two year"])
    out = served["model"].predict(row)
    assert np.isfinite(out["churn_probability"]).all()
    assert out["risk_segment"].isin(["low", "medium", "high"]).all()
    p = out["churn_probability"].to_numpy()
    assert p[0] == p[1] != p[2]  # any unseen level: every Contract indicator is 0
    # exactly: the log-odds of a known level minus that level's one-hot coefficient (then calibrated)
    classifier = served["classifier"]
    terms = dict(zip(*[classifier.pipeline.named_steps["features"].get_feature_names_out(),
                       classifier.pipeline.named_steps["model"].coef_[0]]))
    z = classifier.pipeline.decision_function(coerce_features(row.iloc[[2]], classifier.spec))[0] - terms["cat__Contract_Two year"]
    cal = classifier.calibration
    assert p[0] == pytest.approx(1 / (1 + np.exp(-(cal.slope * z + cal.intercept))), abs=1e-9)


@pytest.mark.parametrize("change, needle", [
    (lambda df: df.drop(columns="Contract"), "Contract"),
    (lambda df: df.assign(TotalCharges="lots"), "TotalCharges"),
    (lambda df: df.assign(MonthlyCharges="cheap"), "MonthlyCharges"),
])
def test_missing_or_mistyped_columns_are_bad_requests(served, change, needle):
    with pytest.raises(MlflowException) as err:
        served["model"].predict(change(served["requests"].head(3)))
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert needle in err.value.message


def test_the_class_itself_names_missing_and_mistyped_columns(served):
    """Without MLflow's schema enforcement in front (a Python caller of the class), the model answers itself."""
    model = ChurnModel()
    model.classifier, model.config = load_classifier(served["artifacts"]["pipeline"], served["artifacts"]["config"])
    rows = served["requests"].head(2)
    for frame, message in [
        (rows.drop(columns="tenure"), "missing required column(s) 'tenure'"),
        (rows.assign(tenure=[3.0, "many"]), "column 'tenure' in row 1 must hold a number (text, not a number: send "
                                             "numbers as JSON numbers), got 'many'"),
        (rows.assign(tenure=[True, 3.0]), "column 'tenure' in row 0 must hold a number (a boolean, not a number), "
                                          "got True"),
        (rows.assign(tenure=[1e308, 3.0]), "column 'tenure' in row 0 must hold a number (beyond the largest magnitude"),
        (rows.assign(customer_id=[None, "a"]), "column 'customer_id' has a missing value in row 0"),
        (rows.assign(Contract=[["x"], "One year"]), "column 'Contract' in row 0 must hold text, got ['x']"),
    ]:
        with pytest.raises(MlflowException, match=re.escape(message)) as err:
            model.predict(None, frame)
        assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_purchase_models_name_their_outputs(served):
    model = ChurnModel()
    model.classifier, config = load_classifier(served["artifacts"]["pipeline"], served["artifacts"]["config"])
    model.config = {**config, "target": "purchase"}
    out = model.predict(None, served["requests"].head(2))
    assert list(out.columns) == ["customer_id", "purchase_probability", "propensity_segment", "purchase"]
