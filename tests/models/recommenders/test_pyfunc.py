"""The served recommender: logged through the training helper, loaded back with ``mlflow.pyfunc.load_model``."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import ErrorCode, INVALID_PARAMETER_VALUE
from scipy import sparse

from models.recommenders.itemcf import ItemCFScorer, similarity_matrix
from models.recommenders.engine import Recommender
from pipelines.mlflow_logging import check_round_trip
from pipelines.recommenders.training import compare_recommendations, log_recommender_model, \
    recommendations_table

rng = np.random.default_rng(11)
N_USERS, N_ITEMS = 40, 25
X = sparse.random(N_USERS, N_ITEMS, density=0.2, random_state=rng, format="csr") * 5
CUSTOMERS = np.array([f"C{i:03d}" for i in range(N_USERS)])
PRODUCTS = np.array([f"P{j:03d}" for j in range(N_ITEMS)])


def build() -> Recommender:
    purchased = sparse.csr_matrix(X > 0)
    scorer = ItemCFScorer(X, similarity_matrix(X, n_neighbours=8), PRODUCTS, purchased)
    popularity = np.asarray((X > 0).sum(axis=0)).ravel().astype(float)
    return Recommender(scorer, CUSTOMERS, PRODUCTS, purchased, popularity)


@pytest.fixture(scope="module")
def logged(_session_home):
    """(recommender, model URI, loaded pyfunc), logged once for the module in the session's store."""
    home = _session_home
    uri = f"sqlite:///{home / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STOREFRONT_HOME", str(home))
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        from pipelines.tracking import experiment_id

        rec = build()
        with mlflow.start_run(experiment_id=experiment_id("recommender-pyfunc-tests")):
            info = log_recommender_model(rec, ["C000", "C001"], k=10)
        yield rec, info.model_uri, mlflow.pyfunc.load_model(info.model_uri)


def predict(model, customers, **params):
    return model.predict(pd.DataFrame({"customer_id": customers}), params=params or None)


def error_code(exc: MlflowException) -> int:
    return ErrorCode.Value(exc.error_code)


@pytest.mark.e2e
def test_signature_and_requirements_follow_the_contract(logged):
    _, uri, model = logged
    signature = model.metadata.signature
    assert signature.inputs.input_names() == ["customer_id"]
    params = {p.name: p for p in signature.params.params}
    assert params["k"].default == 10 and params["exclude_purchased"].default is True
    requirements = mlflow.pyfunc.get_model_dependencies(uri)
    text = Path(requirements).read_text()
    assert "scipy==" in text and "numpy==" in text and "pandas==" in text
    assert "surprise" not in text.lower()


@pytest.mark.e2e
def test_round_trip_equals_the_training_recommendations(logged):
    rec, uri, model = logged
    customers = list(CUSTOMERS) + ["unknown-1"]
    expected = recommendations_table(rec, customers, 10)  # the vectorised all-customer path
    actual = predict(model, customers)
    assert compare_recommendations(expected, actual) == []
    assert list(actual.columns) == ["customer_id", "rank", "product_id", "score", "reason"]
    import pandas as pd

    expected_7 = recommendations_table(rec, customers, 7, exclude_purchased=False)
    assert check_round_trip(uri, pd.DataFrame({"customer_id": customers}), expected_7, compare_recommendations,
                            params={"k": 7, "exclude_purchased": False}) == 7 * len(customers)


def test_compare_recommendations_reports_real_differences():
    rec = build()
    expected = recommendations_table(rec, ["C000", "C001"], 5)
    tampered = expected.copy()
    tampered.loc[0, "product_id"] = "P999"
    assert any("product P999" in p for p in compare_recommendations(expected, tampered))
    tampered = expected.copy()
    tampered.loc[1, "score"] += 1.0
    assert any("score" in p for p in compare_recommendations(expected, tampered))
    assert compare_recommendations(expected, expected.iloc[:-1])[0].endswith("only in expected")


@pytest.mark.e2e
def test_default_k_and_excluded_purchases(logged):
    _, _, model = logged
    frame = predict(model, ["C003"])
    assert frame["rank"].tolist() == list(range(1, 11))
    bought = set(PRODUCTS[X[3].indices])
    assert not bought & set(frame["product_id"])
    everything = predict(model, ["C003"], k=N_ITEMS, exclude_purchased=False)
    assert len(everything) == N_ITEMS and bought <= set(everything["product_id"])
    assert everything["score"].is_monotonic_decreasing


@pytest.mark.e2e
def test_unknown_customer_gets_popular_products(logged):
    rec, _, model = logged
    frame = predict(model, ["never-seen"], k=5)
    assert frame["reason"].tolist() == ["popular"] * 5
    assert frame["product_id"].tolist() == PRODUCTS[rec.popular(5)].tolist()
    assert frame["customer_id"].tolist() == ["never-seen"] * 5


@pytest.mark.e2e
def test_item_cf_reasons_name_a_bought_product(logged):
    _, _, model = logged
    frame = predict(model, ["C005"], k=5)
    bought = set(PRODUCTS[X[5].indices])
    for reason in frame["reason"]:
        assert reason == "popular" or (reason.startswith("because you bought ") and reason[19:] in bought)


@pytest.mark.e2e
def test_numeric_ids_are_read_as_strings(logged):
    _, _, model = logged
    unwrapped = model.unwrap_python_model()
    frame = unwrapped.predict(None, pd.DataFrame({"customer_id": [7, 7.0]}), params={"k": 2})
    assert frame["customer_id"].tolist() == ["7"] * 4


@pytest.mark.e2e
@pytest.mark.parametrize("params", [
    {"k": 0}, {"k": 101}, {"k": -3}, {"k": 2.5}, {"k": "many"}, {"k": True}, {"exclude_purchased": "maybe"},
])
def test_bad_params_are_bad_requests(logged, params):
    _, _, model = logged
    with pytest.raises(MlflowException) as info:
        predict(model, ["C001"], **params)
    assert error_code(info.value) == INVALID_PARAMETER_VALUE
    name = next(iter(params))
    assert name in info.value.message


@pytest.mark.e2e
def test_bad_params_are_rejected_by_the_model_itself(logged):
    """Without MLflow's signature check (e.g. a caller of the Python class), the model still answers 400."""
    _, _, model = logged
    unwrapped = model.unwrap_python_model()
    for params in ({"k": 0}, {"k": 101}, {"k": "ten"}, {"exclude_purchased": "perhaps"}):
        with pytest.raises(MlflowException) as info:
            unwrapped.predict(None, pd.DataFrame({"customer_id": ["C001"]}), params=params)
        assert error_code(info.value) == INVALID_PARAMETER_VALUE
        assert next(iter(params)) in info.value.message


@pytest.mark.e2e
def test_missing_column_and_missing_id_are_bad_requests(logged):
    _, _, model = logged
    with pytest.raises(MlflowException) as info:
        model.predict(pd.DataFrame({"customer": ["C001"]}))
    assert error_code(info.value) == INVALID_PARAMETER_VALUE
    assert "customer_id" in info.value.message
    unwrapped = model.unwrap_python_model()
    with pytest.raises(MlflowException) as info:
        unwrapped.predict(None, pd.DataFrame({"customer": ["C001"]}))
    assert error_code(info.value) == INVALID_PARAMETER_VALUE
    assert "missing required column(s) 'customer_id'" in info.value.message
    with pytest.raises(MlflowException) as info:
        unwrapped.predict(None, pd.DataFrame({"customer_id": ["C001", None]}))
    assert error_code(info.value) == INVALID_PARAMETER_VALUE
    assert "row 1" in info.value.message
