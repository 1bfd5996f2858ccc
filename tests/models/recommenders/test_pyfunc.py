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


def logged_in(home, make, example):
    """(recommender, model URI, loaded pyfunc) of ``make()`` logged in the session's store (a fixture's body)."""
    uri = f"sqlite:///{home / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STOREFRONT_HOME", str(home))
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        from pipelines.tracking import experiment_id

        rec = make()
        with mlflow.start_run(experiment_id=experiment_id("recommender-pyfunc-tests")):
            info = log_recommender_model(rec, example() if callable(example) else example, k=10)
        yield rec, info.model_uri, mlflow.pyfunc.load_model(info.model_uri)


@pytest.fixture(scope="module")
def logged(_session_home):
    """(recommender, model URI, loaded pyfunc), logged once for the module in the session's store."""
    yield from logged_in(_session_home, build, ["C000", "C001"])


def predict(model, customers, **params):
    return model.predict(pd.DataFrame({"customer_id": customers}), params=params or None)


def error_code(exc: MlflowException) -> int:
    return ErrorCode.Value(exc.error_code)


@pytest.mark.e2e
def test_signature_and_requirements_follow_the_contract(logged):
    _, uri, model = logged
    signature = model.metadata.signature
    assert signature.inputs.input_names() == ["customer_id", "age", "gender", "location", "profession"]
    # the demographic columns are optional and untyped in the signature (the model checks them)
    assert signature.inputs.required_input_names() == ["customer_id"]
    assert {str(spec.type) for spec in signature.inputs.inputs[1:]} == {"Any"}
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


# --- demographics and the content blend ------------------------------------------------------------------


def build_hybrid() -> Recommender:
    """build() with a segment table (women and men buy different products) and a content blend."""
    from models.recommenders.coldstart import SegmentPopularity
    from models.recommenders.content import ContentBlend, content_similarity, product_features

    coo = X.tocoo()
    transactions = pd.DataFrame({"customer_id": CUSTOMERS[coo.row], "product_id": PRODUCTS[coo.col],
                                 "purchase_date": pd.Timestamp("2024-01-01")})
    women = transactions["customer_id"].str[-1].astype(int) % 2 == 0
    transactions.loc[women, "product_id"] = PRODUCTS[(coo.col[women.to_numpy()] % 5)]  # women: P000..P004
    customers = pd.DataFrame({"customer_id": CUSTOMERS, "gender": ["Female", "Male"] * (N_USERS // 2),
                              "age": np.arange(N_USERS) + 20})
    table = SegmentPopularity(("gender", "age"), 10.0).fit(customers, transactions, PRODUCTS,
                                                           reference_date="2024-02-01").table_
    products = pd.DataFrame({"product_id": PRODUCTS, "category": np.array(["A", "B", "C"])[np.arange(N_ITEMS) % 3]})
    blend = ContentBlend(content_similarity(product_features(products, PRODUCTS), 6), 0.3)
    return build().with_parts(blend=blend, segments=table)


def hybrid_example():
    from pipelines.recommenders.training import request_frame

    return request_frame(["C000", "someone-new"], {"age": [None, 30], "gender": [None, "Female"]})


@pytest.fixture(scope="module")
def logged_hybrid(_session_home):
    """The same for :func:`build_hybrid`, with demographics in the input example."""
    yield from logged_in(_session_home, build_hybrid, hybrid_example)


@pytest.mark.e2e
def test_unknown_customers_with_demographics_get_their_segment_through_the_signature(logged_hybrid):
    rec, _, model = logged_hybrid
    rows = pd.DataFrame({"customer_id": ["new-1", "new-2", "new-3"], "age": [23, None, 34],
                         "gender": ["female", "Male", None], "location": [None, "Atlantis", None]})
    frame = model.predict(rows, params={"k": 4})
    reasons = frame.groupby("customer_id")["reason"].agg(set).to_dict()
    assert reasons == {"new-1": {"popular with customers like you (Female, 13-24)"},
                       "new-2": {"popular with customers like you (Male)"},
                       "new-3": {"popular with customers like you (25-34)"}}
    women = frame.loc[frame["customer_id"] == "new-1", "product_id"].tolist()
    assert set(women) <= set(PRODUCTS[:5])  # what women bought
    row, _ = rec.segments.lookup({"gender": ["Female"], "age": [23]}, 1)
    assert women == PRODUCTS[np.argsort(-rec.segments.table[row[0]].astype(float), kind="stable")[:4]].tolist()
    nobody = model.predict(pd.DataFrame({"customer_id": ["new-4"], "age": [None], "gender": [None]}), params={"k": 4})
    assert nobody["reason"].tolist() == ["popular"] * 4
    assert nobody["product_id"].tolist() == PRODUCTS[rec.popular(4)].tolist()


@pytest.mark.e2e
def test_known_customers_answer_the_same_with_or_without_demographics(logged_hybrid):
    rec, _, model = logged_hybrid
    plain = model.predict(pd.DataFrame({"customer_id": ["C001", "C002"]}))
    sent = model.predict(pd.DataFrame({"customer_id": ["C001", "C002"], "age": [80, 15],
                                       "gender": ["Female", "Male"], "profession": ["Nurse", None]}))
    pd.testing.assert_frame_equal(plain, sent)
    pd.testing.assert_frame_equal(plain, rec.recommend_frame(["C001", "C002"], 10))  # the blended scorer
    assert plain["score"].max() <= 1.0  # blended scores are normalised


@pytest.mark.e2e
@pytest.mark.parametrize("column, value", [("age", "old"), ("age", 500), ("age", 7), ("age", 30.5),
                                           ("gender", True), ("profession", 2.5)])
def test_a_malformed_demographic_value_is_a_bad_request_naming_the_column(logged_hybrid, column, value):
    _, _, model = logged_hybrid
    rows = pd.DataFrame({"customer_id": ["C001", "new"], column: pd.Series([None, value], dtype=object)})
    with pytest.raises(MlflowException) as info:
        model.predict(rows)
    assert error_code(info.value) == INVALID_PARAMETER_VALUE
    assert f"column {column!r} in row 1" in info.value.message


@pytest.mark.e2e
def test_round_trip_with_demographics_equals_the_vectorised_path(logged_hybrid):
    from models.recommenders.coldstart import request_demographics
    from pipelines.recommenders.training import request_frame

    rec, uri, _ = logged_hybrid
    requests = request_frame(["C000", "C007", "new-a", "new-b"], {"age": [33, None, 41, None],
                                                                   "gender": ["Male", None, "Female", None]})
    expected = recommendations_table(rec, requests["customer_id"], 6, demographics=request_demographics(requests))
    assert check_round_trip(uri, requests, expected, compare_recommendations, params={"k": 6}) == 24
