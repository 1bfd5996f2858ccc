"""End to end: ``train_itemcf`` on a small generated shop, then ``storefront recommend`` on what it logged."""

from __future__ import annotations

import argparse
import io
from contextlib import redirect_stdout

import mlflow
import numpy as np
import pandas as pd
import pytest

from pipelines.recommenders import hybrid
from pipelines.recommenders import recommend as recommend_cmd
from pipelines.recommenders import train_itemcf
from pipelines.cli import parse_args, train_from_args
from pipelines.errors import ConfigurationError
from pipelines.recommenders.training import compare_recommendations, load_recommender_data, relevant_items

N_TRIALS = 6


@pytest.fixture(scope="module")
def shop_dir(shop_folder):
    return shop_folder(customers=600, products=60, years=3, seed=1)


@pytest.fixture(scope="module")
def trained(tracking_home, shop_dir):
    return train_from_args(parse_args(["train-itemcf", "--data-dir", str(shop_dir), "--n-trials",
                                                    str(N_TRIALS), "--timeout", "0", "--seed", "3",
                                                    "--study-name", "itemcf-e2e"]))


@pytest.mark.e2e
def test_item_cf_beats_popularity_on_test_precision(trained):
    assert trained.family == "itemcf"
    assert trained.primary_metric == "precision_at_10"
    assert trained.higher_is_better
    assert trained.test_value > trained.baseline_value > 0
    assert trained.test_value > 1.1 * trained.baseline_value


@pytest.mark.e2e
def test_parent_run_holds_study_metrics_figures_and_model(trained):
    run = mlflow.get_run(trained.run_id)
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    for name in ("precision_at_10", "recall_at_10", "ndcg_at_10", "map_at_10", "hit_rate_at_10", "coverage",
                 "personalization"):
        assert 0.0 <= metrics[f"test_{name}"] <= 1.0
        assert f"baseline_test_{name}" in metrics
    assert metrics["test_precision_at_10"] == pytest.approx(trained.test_value)
    assert metrics["baseline_test_precision_at_10"] == pytest.approx(trained.baseline_value)
    assert 0 < metrics["val_precision_at_10"] <= 1
    assert metrics["n_trials_complete"] == N_TRIALS
    assert run.data.tags["round_trip_check"].startswith("passed")
    assert run.data.params["similarity"] in {"cosine", "asymmetric", "shrunk"}  # under the trials' key
    assert pd.Timestamp(run.data.params["val_cutoff"]) < pd.Timestamp(run.data.params["test_cutoff"])
    children = mlflow.search_runs(experiment_ids=[run.info.experiment_id], output_format="list",
                                  filter_string=f"tags.mlflow.parentRunId = '{trained.run_id}'")
    assert len(children) == N_TRIALS
    assert all("val_precision_at_10" in c.data.metrics for c in children)
    first = next(c for c in children if c.data.tags["trial_number"] == "0")
    assert first.data.params["similarity"] == "cosine" and first.data.params["n_neighbours"] == "50"
    client = mlflow.MlflowClient()
    plots = {a.path for a in client.list_artifacts(trained.run_id, "plots")}
    assert {"plots/precision_at_k.png", "plots/category_coverage.png", "plots/precision_by_segment.png"} <= plots
    # the cold start and the blend, chosen on validation, and the test metrics by segment against both baselines
    params = run.data.params
    assert params["cold_start_attributes"] in {",".join(a) for a in hybrid.COLD_START_ATTRIBUTES}
    assert float(params["cold_start_strength"]) in hybrid.COLD_START_STRENGTHS
    assert 0 <= float(params["blend_weight"]) <= 1
    assert metrics["val_blend_precision_at_10"] >= metrics["val_unblended_precision_at_10"] > 0
    for prefix in ("test_", "baseline_test_", "segment_baseline_test_"):
        for population in ("warm", "cold"):
            assert 0 <= metrics[f"{prefix}{population}_precision_at_10"] <= 1
    for prefix in ("test_", "baseline_test_"):
        assert 0 < metrics[f"{prefix}coldsim_precision_at_10"] <= 1
    assert metrics["test_warm_customers"] + metrics["test_cold_customers"] <= metrics["test_customers"]
    assert metrics["test_coldsim_customers"] > metrics["test_cold_customers"]
    assert metrics["test_new_items"] == 0 and metrics["test_new_item_hit_share"] == 0
    segments = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=trained.run_id,
                                                               artifact_path="plots/precision_by_segment.csv"),
                           index_col=0)
    assert segments.loc["warm", "model"] == pytest.approx(metrics["test_warm_precision_at_10"])
    grid = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=trained.run_id,
                                                           artifact_path="cold_start/validation_grid.csv"))
    assert grid["val_coldsim_precision_at_10"].max() == pytest.approx(metrics["val_coldsim_precision_at_10"])
    holdout = {a.path for a in client.list_artifacts(trained.run_id, "holdout")}
    assert "holdout/truth.parquet" in holdout
    assert trained.model_uri.startswith("models:/")


@pytest.mark.e2e
def test_logged_model_gives_the_training_recommendations(trained):
    expected = pd.read_csv(mlflow.artifacts.download_artifacts(
        run_id=trained.run_id, artifact_path="round_trip/expected_top_k.csv"), dtype={"customer_id": str,
                                                                                       "product_id": str})
    model = mlflow.pyfunc.load_model(trained.model_uri)
    with_demographics = expected["customer_id"].str.startswith("__unknown_customer_with_demographics")
    segment, expected = expected[with_demographics], expected[~with_demographics]
    customers = list(dict.fromkeys(expected["customer_id"]))
    assert len(customers) > 10 and len(segment) == 10  # the round trip also asked for an unknown described customer
    actual = model.predict(pd.DataFrame({"customer_id": customers}), params={"k": 10})
    assert compare_recommendations(expected, actual) == []
    reasons = actual["reason"]
    assert (reasons.str.startswith("because you ") | reasons.str.startswith("similar to ")
            | (reasons == "popular")).all()


@pytest.mark.e2e
def test_tuning_never_sees_the_test_window(shop_dir):
    data = load_recommender_data(shop_dir)
    tx, events = data.tables["transactions"], data.tables["events"]
    assert data.test_cutoff - data.val_cutoff == pd.Timedelta(days=data.val_days)
    # tuning fits on rows strictly before the validation cutoff ...
    log = data.log("validation")
    assert log.reference_date == data.val_cutoff
    assert len(log.tx_user) == int((tx["purchase_date"] < data.val_cutoff).sum())
    weighted = events["event_type"].isin(["product_view", "add_to_cart"])
    assert len(log.ev_user) == int((weighted & (events["event_date"] < data.val_cutoff)).sum())
    # ... and scores on purchases before the test cutoff
    val_pairs = {(c, p) for c, items in data.relevant("validation").items() for p in items}
    window = tx[(tx["purchase_date"] >= data.val_cutoff) & (tx["purchase_date"] < data.test_cutoff)]
    assert val_pairs and val_pairs <= set(zip(window["customer_id"], window["product_id"]))
    # the final model's history ends at the test cutoff
    assert len(data.log("test").tx_user) == int((tx["purchase_date"] < data.test_cutoff).sum())


def test_relevant_items_drop_repeat_purchases():
    history = pd.DataFrame({"customer_id": ["A", "B"], "product_id": ["x", "x"]})
    window = pd.DataFrame({"customer_id": ["A", "A", "B", "C"], "product_id": ["x", "y", "y", "x"]})
    assert relevant_items(window, history) == {"A": {"y"}, "B": {"y"}, "C": {"x"}}
    assert relevant_items(window) == {"A": {"x", "y"}, "B": {"y"}, "C": {"x"}}


def run_recommend(*argv: str) -> str:
    parser = argparse.ArgumentParser()
    recommend_cmd.add_arguments(parser)
    out = io.StringIO()
    with redirect_stdout(out):
        assert recommend_cmd.run(parser.parse_args(list(argv))) == 0
    return out.getvalue()


@pytest.mark.e2e
def test_recommend_command_prints_top_k_from_the_latest_model(trained, shop_dir):
    tx = pd.read_parquet(shop_dir / "transactions.parquet")
    customer = tx["customer_id"].iloc[0]
    text = run_recommend("--model", "itemcf", "--customer", customer, "-k", "5")
    lines = text.splitlines()
    uri = lines[0].removeprefix("model: ")
    # the champion when another test registered one, else the newest finished itemcf run: this one
    assert uri in (trained.model_uri, "models:/storefront-itemcf@champion")
    assert f"top 5 for customer {customer}" in text
    table = [line.split() for line in lines[lines.index(f"top 5 for customer {customer}") + 1:] if line.strip()]
    assert table[0][:3] == ["rank", "product_id", "score"]
    assert [row[0] for row in table[1:]] == ["1", "2", "3", "4", "5"]
    model = mlflow.pyfunc.load_model(uri)
    expected = model.predict(pd.DataFrame({"customer_id": [customer]}), params={"k": 5})
    assert [row[1] for row in table[1:]] == expected["product_id"].tolist()
    bought = set(tx.loc[tx["customer_id"] == customer, "product_id"])
    assert not bought & {row[1] for row in table[1:]}
    cold = run_recommend("--model", f"runs:/{trained.run_id}/itemcf-recommender", "--customer", "nobody-at-all",
                         "-k", "3")
    assert "unknown customer: popular products" in cold
    assert cold.count("popular") >= 4


@pytest.mark.e2e
def test_recommend_command_errors_name_the_problem(trained):
    with pytest.raises(ConfigurationError, match="-k must be an integer from 1 to 100"):
        recommend_cmd.recommend("itemcf", ["C1"], k=0)
    with pytest.raises(ConfigurationError, match="no registered model 'no-such-model'"):
        recommend_cmd.recommend("no-such-model", ["C1"], k=5)
    assert recommend_cmd.resolve_model_uri("runs:/abc/model") == "runs:/abc/model"
    assert recommend_cmd.resolve_model_uri("recommender").startswith("models:/")


def test_bad_options_are_usage_or_configuration_errors(shop_dir, capsys):
    with pytest.raises(SystemExit):
        parse_args(["train-itemcf", "--k", "0"])
    assert "--k must be an integer from 1 to 100, got 0" in capsys.readouterr().err
    with pytest.raises(ConfigurationError, match="--max-neighbours must be a positive integer, got 0"):
        train_itemcf.config_from_args(parse_args(["train-itemcf", "--data-dir", str(shop_dir), "--max-neighbours", "0"]))
    with pytest.raises(ConfigurationError, match="test_days"):
        load_recommender_data(shop_dir, test_days=5000)


def test_search_space_is_conditional():
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize")
    seen = set()
    for _ in range(30):
        trial = study.ask()
        params = train_itemcf.suggest_params(trial, n_products=60)
        seen.add(params["similarity"])
        assert ("alpha" in params) == (params["similarity"] == "asymmetric")
        assert ("shrinkage" in params) == (params["similarity"] == "shrunk")
        assert 5 <= params["n_neighbours"] <= 59
        study.tell(trial, float(np.random.default_rng(0).random()))
    assert seen == {"cosine", "asymmetric", "shrunk"}
    # the neighbourhood cap: the search stays within --max-neighbours, and within the catalogue
    assert train_itemcf.neighbour_range(5000, max_neighbours=300) == (5, 300)
    assert train_itemcf.neighbour_range(60) == (5, 59)
    assert train_itemcf.neighbour_range(3) == (2, 2)
    capped = [train_itemcf.suggest_params(study.ask(), n_products=5000, max_neighbours=40)["n_neighbours"]
              for _ in range(20)]
    assert 5 <= min(capped) and max(capped) <= 40
    assert train_itemcf.default_trial(5000, max_neighbours=20)["n_neighbours"] == 20
    flat = {"similarity": "shrunk", "shrinkage": 3.0, "n_neighbours": 9, "half_life_days": 30.0,
            "w_product_view": 0.2, "w_add_to_cart": 1.5}
    assert train_itemcf.model_params(flat) == {"similarity": "shrunk", "shrinkage": 3.0, "n_neighbours": 9,
                                               "half_life_days": 30.0,
                                               "event_weights": {"product_view": 0.2, "add_to_cart": 1.5}}


@pytest.mark.e2e
def test_rescoring_the_logged_model_on_its_holdout_gives_the_test_metric(trained):
    from types import SimpleNamespace

    from pipelines.rescoring import rescorer_for

    logged = mlflow.get_run(trained.run_id).data.metrics["test_precision_at_10"]
    version = SimpleNamespace(run_id=trained.run_id, source=trained.model_uri)
    assert rescorer_for(version)(trained.model_uri) == pytest.approx(logged, abs=1e-6)


@pytest.fixture
def own_store(tmp_path):
    """A tracking store and registry of the test's own; the module's store is restored afterwards."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STOREFRONT_HOME", str(tmp_path))
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            yield tmp_path
        finally:
            mlflow.set_tracking_uri(previous)
            mlflow.set_registry_uri(previous)


@pytest.mark.e2e
def test_command_resumes_a_sqlite_study_registers_the_challenger_and_recommends_from_the_champion(
        tracking_home, own_store, shop_dir, capsys):
    import optuna

    from pipelines import registry
    from pipelines.cli import main as cli_main

    storage = f"sqlite:///{own_store / 'optuna.db'}"
    first = train_from_args(parse_args(["train-itemcf", "--data-dir", str(shop_dir), "--n-trials", "2",
                                        "--storage", storage, "--study-name", "resumable"]))
    assert registry.alias_version("storefront-itemcf", registry.CHALLENGER) is None  # train_from_args never registers
    # the command: same storage and study name resume the study (--n-trials is its total: 2 more), then the gate
    # registers
    assert cli_main(["train-itemcf", "--data-dir", str(shop_dir), "--n-trials", "4", "--storage", storage,
                     "--study-name", "resumable", "--timeout", ""]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert len(optuna.load_study(study_name="resumable", storage=storage).trials) == 4
    version = registry.alias_version("storefront-itemcf", registry.CHALLENGER)
    assert version is not None and version.run_id != first.run_id
    assert line.startswith("item-CF: test precision_at_10 ")
    assert f"registered storefront-itemcf version {version.version} as challenger" in line
    run = mlflow.get_run(version.run_id)
    assert run.data.tags["gate_verdict"] == "passed"
    assert run.data.metrics["n_trials_complete"] == 2

    registry.promote("storefront-itemcf")
    tx = pd.read_parquet(shop_dir / "transactions.parquet")
    customer = tx["customer_id"].iloc[-1]
    text = run_recommend("--model", "itemcf", "--customer", customer, "-k", "5")
    assert text.splitlines()[0] == "model: models:/storefront-itemcf@champion"
    served = mlflow.pyfunc.load_model(f"models:/storefront-itemcf/{version.version}").predict(
        pd.DataFrame({"customer_id": [customer]}), params={"k": 5})
    for product in served["product_id"]:
        assert f" {product} " in text
    assert len(served) == 5


@pytest.mark.e2e
def test_a_model_that_does_not_beat_popularity_is_not_registered(tracking_home, own_store):
    from pipelines import registry
    from pipelines.mlflow_logging import TrainResult, family_run

    with family_run("itemcf", "weak-model") as run:
        pass
    result = TrainResult(family="itemcf", run_id=run.info.run_id, model_uri="runs:/x/model",
                         primary_metric="precision_at_10", test_value=0.05, baseline_value=0.08,
                         higher_is_better=True, data_digest="d")
    line = train_itemcf.summary(result, registry.register_and_say(result))
    assert line.startswith("item-CF: test precision_at_10 0.0500 (popularity 0.0800); not registered: ")
    assert "does not beat baseline 0.0800" in line
    assert mlflow.get_run(run.info.run_id).data.tags["gate_verdict"] == "failed"
    assert mlflow.MlflowClient().search_registered_models() == []
