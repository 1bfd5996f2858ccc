"""The README's main job, run twice as a user would, then every registered champion served over real HTTP.

One module-scoped project home: ``storefront main --quick`` (a subprocess started from another working
directory) generates a small shop, trains the four families, registers and promotes; a second run adds
versions. Then `mlflow models serve` answers for the recommender, churn and SARIMA champions.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest

pytestmark = pytest.mark.e2e

VENV_BIN = Path(sys.executable).parent
MODELS = ("storefront-itemcf", "storefront-svdpp", "storefront-churn", "storefront-sarima", "storefront-recommender")


def _aliases(client, name: str) -> dict[str, str]:
    return {alias: str(version) for alias, version in client.get_registered_model(name).aliases.items()}


@pytest.fixture(scope="module")
def shop(main_job):
    """The project home after two runs of the main job (tests/e2e/conftest.py)."""
    return main_job


@pytest.fixture(scope="module")
def client(shop):
    uri = shop[1]
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_main_job_prints_the_summary_and_the_exact_next_commands(shop):
    home, uri, first, _, after_first = shop
    out = first.stdout
    assert (home / "data" / "generated" / "transactions.parquet").is_file()
    assert not (Path.cwd() / "mlruns").exists()
    for family in ("itemcf", "svdpp", "churn", "sarima", "recommender"):
        assert re.search(rf"^{family}\s+storefront-", out, re.M), out
    assert f"mlflow ui --backend-store-uri {uri}" in out
    for name in ("storefront-recommender", "storefront-churn", "storefront-sarima"):
        assert f"mlflow models serve -m models:/{name}@champion" in out
        assert "--env-manager local" in out
    # the first run makes every registered winner champion (there was none)
    assert all(aliases.get("champion") == "1" for aliases in after_first.values()), after_first
    # --quick budgets (2-3 trials) are below the floor of 10: the summary says so, with the command that fixes it
    assert "THIN TUNING (fewer than 10 completed trials" in out, out
    for family, command in (("itemcf", "train-itemcf"), ("svdpp", "train-svdpp"), ("churn", "train-churn")):
        assert re.search(rf"^  {family}: only \d trials completed \(--n-trials \d is below the minimum of 10\); "
                         rf"fix: storefront {command} --data-dir \S+ --n-trials 10$", out, re.M), out
    assert re.search(r"^stages: itemcf \d+ s \(peak [\d.]+ GB so far\), svdpp", out, re.M), out


def test_second_run_adds_versions_and_keeps_the_registry_consistent(shop, client):
    for name in MODELS:
        versions = {str(v.version): v for v in client.search_model_versions(f"name='{name}'")}
        assert set(versions) == {"1", "2"}, name
        aliases = _aliases(client, name)
        assert aliases["challenger"] == "2"
        champion = versions[aliases["champion"]]
        # the champion's version exists, passed the gate and names its run, data and commit
        assert champion.tags["gate_verdict"] == "passed"
        for tag in ("primary_metric", "data_digest", "git_commit", "parent_run_id", "baseline_test_" +
                    champion.tags["primary_metric"]):
            assert champion.tags[tag], (name, tag)
        assert champion.description
        history = [v for k, v in client.get_registered_model(name).tags.items() if k.startswith("history.")]
        assert history, name
        if aliases["champion"] == "2":
            assert champion.tags["previous_champion"] == "1"
    # same data both times: the digests match
    for name in MODELS:
        digests = {v.tags["data_digest"] for v in client.search_model_versions(f"name='{name}'")}
        assert len(digests) == 1


def test_recommender_slot_holds_the_better_family_on_test_precision(shop, client):
    slot = client.get_model_version("storefront-recommender", "1")
    run = client.get_run(slot.run_id)
    family = run.data.tags.get("family") or slot.tags["family"]
    assert family in ("svdpp", "itemcf")
    other = {"svdpp": "storefront-itemcf", "itemcf": "storefront-svdpp"}[family]
    other_run = client.get_run(client.get_model_version(other, "1").run_id)
    assert run.data.metrics["test_precision_at_10"] >= other_run.data.metrics["test_precision_at_10"]


# --- serving ---------------------------------------------------------------------------------------------


def _error(response) -> str:
    assert response.status_code == 400, (response.status_code, response.text[:500])
    return response.json()["message"]


def _still_serving(server, good_payload) -> None:
    import requests

    assert requests.get(f"{server.url}/ping", timeout=5).status_code == 200
    assert server.invoke(good_payload).status_code == 200


def test_served_recommender(shop, serve):
    home, uri = shop[0], shop[1]
    server = serve("models:/storefront-recommender@champion", uri)
    customers = pd.read_parquet(home / "data" / "generated" / "customers.parquet")["customer_id"].astype(str)
    known = customers.iloc[0]

    answer = server.invoke({"dataframe_records": [{"customer_id": known}], "params": {"k": 3}})
    assert answer.status_code == 200, answer.text
    rows = pd.DataFrame(answer.json()["predictions"])
    assert list(rows.columns) == ["customer_id", "rank", "product_id", "score", "reason"]
    assert rows["rank"].tolist() == [1, 2, 3] and (rows["customer_id"] == known).all()
    assert rows["product_id"].is_unique and rows["score"].is_monotonic_decreasing

    default = pd.DataFrame(server.invoke({"dataframe_records": [{"customer_id": known}]}).json()["predictions"])
    assert len(default) == 10 and default["product_id"].head(3).tolist() == rows["product_id"].tolist()

    unknown = pd.DataFrame(server.invoke({"dataframe_records": [{"customer_id": "nobody-123"}],
                                          "params": {"k": 5}}).json()["predictions"])
    assert len(unknown) == 5 and set(unknown["reason"]) == {"popular"}

    assert "k" in _error(server.invoke({"dataframe_records": [{"customer_id": known}], "params": {"k": 0}}))
    assert "k" in _error(server.invoke({"dataframe_records": [{"customer_id": known}], "params": {"k": 101}}))
    assert "k" in _error(server.invoke({"dataframe_records": [{"customer_id": known}], "params": {"k": "ten"}}))
    assert "customer_id" in _error(server.invoke({"dataframe_records": [{"user": known}]}))
    _error(server.invoke(None, raw='{"dataframe_records": [{"customer_id": '))
    _still_serving(server, {"dataframe_records": [{"customer_id": known}]})


def _champion_arrays(uri: str, name: str = "storefront-recommender") -> dict:
    """The arrays of a served recommender's ``.npz``, read straight from the registry's artifacts."""
    import numpy as np

    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}@champion"))
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
    with np.load(next(local.rglob("recommender.npz")), allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def _top(scores, popularity, k: int) -> list[int]:
    """Indices of the k best scores, equal scores by popularity then index (the engine's documented order)."""
    import numpy as np

    return np.lexsort((np.arange(len(scores)), -popularity, -scores))[:k].tolist()


def test_served_recommender_uses_demographics_only_for_unknown_customers(shop, serve):
    import numpy as np

    from models.recommenders.coldstart import SegmentTable

    home, uri = shop[0], shop[1]
    server = serve("models:/storefront-recommender@champion", uri)  # one server per model (conftest)
    arrays = _champion_arrays(uri)
    table = SegmentTable.from_arrays(arrays)
    assert table is not None, "the champion holds no segment table"
    products, popularity = arrays["product_ids"], arrays["popularity"]
    visitor = {"age": 30, "gender": "female", "location": "Boston", "profession": "Engineer"}

    # an unknown customer with demographics: the top of their segment's row, and a reason naming the segment
    answer = server.invoke({"dataframe_records": [{"customer_id": "new-visitor-1", **visitor}], "params": {"k": 5}})
    assert answer.status_code == 200, answer.text
    rows = pd.DataFrame(answer.json()["predictions"])
    row, (label,) = table.lookup({k: [v] for k, v in visitor.items()}, 1)
    expected_label = ", ".join({"gender": "Female", "age": "25-34", "profession": "Engineer",
                                "location": "Boston"}[a] for a in table.attributes)
    assert label == expected_label
    assert set(rows["reason"]) == {f"popular with customers like you ({expected_label})"}
    segment_scores = table.table[row[0]].astype(float)
    assert rows["product_id"].tolist() == products[_top(segment_scores, popularity, 5)].tolist()
    np.testing.assert_allclose(rows["score"], np.sort(segment_scores)[::-1][:5], rtol=1e-6)

    # without demographics (absent, or all null): the global popular products, reason popular
    popular = products[_top(popularity, popularity, 5)].tolist()
    for record in ({"customer_id": "new-visitor-2"},
                   {"customer_id": "new-visitor-2", "age": None, "gender": None, "location": None, "profession": None},
                   {"customer_id": "new-visitor-2", "gender": "robot"}):  # a value the model never saw
        plain = pd.DataFrame(server.invoke({"dataframe_records": [record], "params": {"k": 5}}).json()["predictions"])
        assert plain["product_id"].tolist() == popular and set(plain["reason"]) == {"popular"}, record

    # a malformed demographic value: HTTP 400 naming the column; the server keeps serving
    for bad in ({"age": "old"}, {"age": 500}, {"age": 30.5}, {"gender": True}):
        message = _error(server.invoke({"dataframe_records": [{"customer_id": "new-visitor-3", **bad}]}))
        assert f"column {next(iter(bad))!r}" in message, message
    message = _error(server.invoke({"dataframe_records": [{"customer_id": "x"}, {"customer_id": "y", "age": "old"}]}))
    assert "'age' in row 1" in message

    # a known customer's answer is the same with or without demographics (even demographics unlike theirs)
    customers = pd.read_parquet(home / "data" / "generated" / "customers.parquet")["customer_id"].astype(str)
    known = [c for c in customers if c in set(arrays["customer_ids"].tolist())][:3]
    plain = server.invoke({"dataframe_records": [{"customer_id": c} for c in known], "params": {"k": 10}})
    described = server.invoke({"dataframe_records": [{"customer_id": c, **visitor, "age": 80 - i}
                                                     for i, c in enumerate(known)], "params": {"k": 10}})
    assert plain.status_code == described.status_code == 200
    assert plain.json() == described.json()
    assert not any(r["reason"].startswith("popular with") for r in plain.json()["predictions"])

    # one request mixing all three kinds of rows answers each as alone
    mixed = server.invoke({"dataframe_records": [{"customer_id": known[0], **visitor},
                                                 {"customer_id": "new-visitor-1", **visitor},
                                                 {"customer_id": "new-visitor-2"}], "params": {"k": 5}})
    frame = pd.DataFrame(mixed.json()["predictions"])
    assert frame.loc[frame["customer_id"] == "new-visitor-1", "product_id"].tolist() == rows["product_id"].tolist()
    assert frame.loc[frame["customer_id"] == "new-visitor-2", "product_id"].tolist() == popular
    _still_serving(server, {"dataframe_records": [{"customer_id": "new-visitor-1", **visitor}]})


CHURN = "models:/storefront-churn@champion"


@pytest.fixture(scope="module")
def churn_example(shop) -> pd.DataFrame:
    """The churn champion's input example, read from the main job's store."""
    uri = shop[1]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("MLFLOW_REGISTRY_URI", uri)
        previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            local = mlflow.artifacts.download_artifacts(CHURN)
        finally:
            mlflow.set_tracking_uri(previous[0])
            mlflow.set_registry_uri(previous[1])
    return mlflow.models.Model.load(local).load_input_example(local)


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def test_served_churn_model(shop, serve, churn_example):
    uri = shop[1]
    model_uri = CHURN
    server = serve(model_uri, uri)
    example = churn_example
    records = _records(example.head(2))

    answer = server.invoke({"dataframe_records": records})
    assert answer.status_code == 200, answer.text
    rows = pd.DataFrame(answer.json()["predictions"])
    assert list(rows.columns) == ["customer_id", "churn_probability", "risk_segment", "churn"]
    assert rows["customer_id"].tolist() == [str(r["customer_id"]) for r in records]
    assert rows["churn_probability"].between(0, 1).all()
    assert set(rows["risk_segment"]) <= {"low", "medium", "high"}

    feature = next(c for c in example.columns if c != "customer_id")
    missing = [{k: v for k, v in r.items() if k != feature} for r in records]
    assert feature in _error(server.invoke({"dataframe_records": missing}))
    numeric = next(c for c in example.columns if c != "customer_id" and pd.api.types.is_numeric_dtype(example[c]))
    mistyped = [{**records[0], numeric: "lots"}]
    assert numeric in _error(server.invoke({"dataframe_records": mistyped}))
    _error(server.invoke(None, raw="not json"))
    _still_serving(server, {"dataframe_records": records})


def test_served_sarima_model(shop, serve):
    uri = shop[1]
    server = serve("models:/storefront-sarima@champion", uri)
    category = "Books"

    answer = server.invoke({"dataframe_records": [{"category": category, "horizon": 12}]})
    assert answer.status_code == 200, answer.text
    rows = pd.DataFrame(answer.json()["predictions"])
    assert list(rows.columns) == ["category", "period", "step", "forecast", "lower", "upper"]
    assert rows["step"].tolist() == list(range(1, 13)) and (rows["category"] == category).all()
    periods = pd.to_datetime(rows["period"])
    assert periods.is_monotonic_increasing and periods.is_unique
    assert ((rows["lower"] <= rows["forecast"]) & (rows["forecast"] <= rows["upper"])).all()

    narrow = pd.DataFrame(server.invoke({"dataframe_records": [{"category": category, "horizon": 12}],
                                         "params": {"confidence": 0.5}}).json()["predictions"])
    assert ((narrow["upper"] - narrow["lower"]) <= (rows["upper"] - rows["lower"]) + 1e-9).all()
    assert ((narrow["upper"] - narrow["lower"]) < (rows["upper"] - rows["lower"])).any()

    message = _error(server.invoke({"dataframe_records": [{"category": "Toys", "horizon": 3}]}))
    assert "Toys" in message and "Electronics" in message and "Books" in message
    for horizon in (0, 37):
        assert "horizon" in _error(server.invoke({"dataframe_records": [{"category": category, "horizon": horizon}]}))
    assert "horizon" in _error(server.invoke({"dataframe_records": [{"category": category, "horizon": "soon"}]}))
    assert "horizon" in _error(server.invoke({"dataframe_records": [{"category": category}]}))
    _error(server.invoke(None, raw="{"))
    _still_serving(server, {"dataframe_records": [{"category": category, "horizon": 1}]})


# --- the contract, strictly, and a bounded fuzz (the same servers) ---------------------------------------------


def _known_customer(shop) -> str:
    return pd.read_parquet(shop[0] / "data" / "generated" / "customers.parquet")["customer_id"].astype(str).iloc[0]


def test_served_recommender_is_strict_about_ids_k_and_rows(shop, serve):
    import time

    server = serve("models:/storefront-recommender@champion", shop[1])
    known = _known_customer(shop)
    for bad in ({"a": 1}, [1, 2], True, 1.5):
        message = _error(server.invoke({"dataframe_records": [{"customer_id": known}, {"customer_id": bad}]}))
        assert "column 'customer_id' in row 1 must be a string (or an integer)" in message, message
    assert "column 'customer_id' has a missing value in row 0" in _error(
        server.invoke({"dataframe_records": [{"customer_id": None}]}))
    numeric_id = server.invoke({"dataframe_records": [{"customer_id": 42}], "params": {"k": 2}})
    assert numeric_id.status_code == 200 and numeric_id.json()["predictions"][0]["customer_id"] == "42"
    whole = server.invoke({"dataframe_records": [{"customer_id": known}], "params": {"k": 2.0}})
    assert whole.status_code == 200 and len(whole.json()["predictions"]) == 2
    assert "param 'k' must be an integer from 1 to 100, got 2.5" in _error(
        server.invoke({"dataframe_records": [{"customer_id": known}], "params": {"k": 2.5}}))
    assert "'k'" in _error(server.invoke({"dataframe_records": [{"customer_id": known}], "params": {"k": True}}))
    started = time.monotonic()  # 10,000 rows at k=100 once took 19-29 s and answered 89 MB
    big = server.invoke({"dataframe_records": [{"customer_id": known}] * 10_000, "params": {"k": 100}})
    assert "10000 rows in one request; this model answers at most 1000 rows per request" in _error(big)
    assert time.monotonic() - started < 10 and len(big.content) < 10_000
    _still_serving(server, {"dataframe_records": [{"customer_id": known}]})


def test_served_sarima_horizon_is_a_whole_number(shop, serve):
    server = serve("models:/storefront-sarima@champion", shop[1])
    two = server.invoke({"dataframe_records": [{"category": "Books", "horizon": 2.0}]})
    assert two.status_code == 200 and len(two.json()["predictions"]) == 2
    for bad in (2.5, 36.7, True, "3", None, [1]):
        message = _error(server.invoke({"dataframe_records": [{"category": "Books", "horizon": bad}]}))
        assert "column 'horizon' in row 0 must be an integer from 1 to 36" in message, (bad, message)
    assert "column 'category' in row 0 must be a string" in _error(
        server.invoke({"dataframe_records": [{"category": {"a": 1}, "horizon": 1}]}))


def test_served_churn_nulls_booleans_and_huge_numbers_are_400s(shop, serve, churn_example):
    server = serve(CHURN, shop[1])
    record = _records(churn_example.head(1))[0]
    numeric = next(c for c in churn_example.columns if c != "customer_id"
                   and pd.api.types.is_numeric_dtype(churn_example[c]))
    for value, needle in ((None, "is null"), (True, "a boolean, not a number"), (1e308, "beyond the largest"),
                          ("3", "text, not a number")):
        message = _error(server.invoke({"dataframe_records": [{**record, numeric: value}]}))
        assert f"column {numeric!r} in row 0" in message and needle in message, message
    all_null = {k: (v if k == "customer_id" else None) for k, v in record.items()}
    assert "is null" in _error(server.invoke({"dataframe_records": [all_null]}))
    _still_serving(server, {"dataframe_records": [record]})


@pytest.mark.parametrize("model", ["recommender", "churn", "sarima"])
def test_fuzzed_requests_never_get_a_5xx_from_the_project(shop, serve, churn_example, model):
    from tests.e2e import fuzz

    if model == "recommender":
        uri, record, params = "models:/storefront-recommender@champion", {"customer_id": _known_customer(shop)}, \
            {"k": 3, "exclude_purchased": True}
    elif model == "churn":
        uri, record, params = CHURN, _records(churn_example.head(1))[0], {}
    else:
        uri, record, params = "models:/storefront-sarima@champion", {"category": "Books", "horizon": 2}, \
            {"confidence": 0.9}
    server = serve(uri, shop[1])
    payloads = fuzz.corpus(record, params) + fuzz.mutations(record, params, seed=13, count=40)
    if model == "churn":  # 26 columns: fuzz the id and a sample of features, mutate all
        keep = {"customer_id", *list(record)[1:5]}
        payloads = [p for p in payloads if not any(p.name.startswith(f"{c} ") or p.name == f"without {c}"
                                                   for c in record if c not in keep)]
    statuses = fuzz.fuzz(server.url, payloads)
    print(f"fuzz {model}: {len(payloads)} payloads, statuses {dict(sorted(statuses.items()))}")
    assert len(payloads) >= 50 and statuses[200] >= 2 and statuses[400] >= 20
    seen = fuzz.mlflow_500s(server.url, {"dataframe_records": [record]})
    print(f"MLflow's own answers for {model}: {[(name, status, body) for name, status, body in seen]}")
    assert [status for _, status, _ in seen] == [500, 500]  # MLflow 3.17, before the model runs (README)
