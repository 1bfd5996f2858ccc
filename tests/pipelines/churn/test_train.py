"""End-to-end: ``train_churn`` on a small generated shop and on a Telco-shaped table, then ``score-churn``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.cli import parse_args as parse
from pipelines.cli import train_from_args

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def shop_dir(shop_folder):
    # 1,500 customers: on a few hundred test customers recency alone is often as good (AUC noise ~0.02)
    return shop_folder(customers=1500, products=60, years=3, seed=11)


@pytest.fixture(scope="module")
def shop_result(tracking_home, shop_dir):
    return train_from_args(parse(["train-churn", "--data-dir", str(shop_dir), "--n-trials", "4", "--seed", "3"]))


def test_shop_run_beats_the_recency_baseline_and_logs_everything(shop_result):
    import mlflow

    r = shop_result
    assert (r.family, r.primary_metric, r.higher_is_better, r.registered_model) == ("churn", "auc", True, None)
    assert r.test_value > r.baseline_value + 0.01  # the tuned model beats recency-only logistic regression
    run = mlflow.get_run(r.run_id)
    assert run.info.status == "FINISHED"
    m, params = run.data.metrics, run.data.params
    assert m["baseline_test_auc"] == pytest.approx(r.baseline_value)
    assert m["test_auc"] == pytest.approx(r.test_value)
    for key in ("test_pr_auc", "test_brier", "test_log_loss", "test_precision", "test_recall", "test_f1", "val_auc",
                "threshold"):
        assert np.isfinite(m[key]), key
    assert 0 < m["threshold"] < 1 and m["test_f1"] > 0.4
    assert params["target"] == "churn" and params["window_days"] == "90" and params["calibration"] in ("platt", "none")
    # the refit never sees the test window: its only snapshot is the validation one, 90 days before T
    assert params["final_fit_cutoffs"] == params["val_cutoff"][:10]
    assert pd.Timestamp(params["test_cutoff"]) - pd.Timestamp(params["val_cutoff"]) == pd.Timedelta(days=90)
    children = mlflow.search_runs(experiment_ids=[run.info.experiment_id], output_format="list",
                                  filter_string=f"tags.mlflow.parentRunId = '{r.run_id}'")
    assert len(children) == 4 and all("val_auc" in c.data.metrics for c in children)
    first = next(c for c in children if c.data.tags["trial_number"] == "0")  # the enqueued defaults
    assert (first.data.params["penalty"], first.data.params["numeric_transform"], float(first.data.params["C"])) == \
        ("l2", "scale", 1.0)
    client = mlflow.MlflowClient()
    files = {a.path for folder in ("plots", "tables", "holdout") for a in client.list_artifacts(r.run_id, folder)}
    assert {"plots/roc_curve.png", "plots/pr_curve.png", "plots/reliability.png", "plots/score_distribution.png",
            "plots/odds_ratios.png", "tables/odds_ratios.csv", "tables/coefficients.csv",
            "holdout/requests.parquet", "holdout/truth.parquet"} <= files
    odds = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=r.run_id, artifact_path="tables/odds_ratios.csv"))
    assert {"recency_days", "frequency"} <= set(odds["feature"]) and (odds["odds_ratio"] > 0).all()


def test_logged_model_round_trip(shop_result):
    import mlflow

    from pipelines.rescoring import load_holdout

    from pipelines.mlflow_logging import predict_in_batches

    requests, truth, spec = load_holdout(shop_result.run_id)
    assert spec["family"] == "churn" and spec["metric"] == "auc"
    model = mlflow.pyfunc.load_model(shop_result.model_uri)
    assert len(requests) > model.unwrap_python_model().max_rows  # more than one served request may hold
    out = predict_in_batches(model, requests)
    np.testing.assert_allclose(out["churn_probability"].to_numpy(), shop_result.extra["test_probabilities"], atol=1e-9)
    assert out["customer_id"].tolist() == truth["customer_id"].tolist()
    assert (out["churn"] == (out["churn_probability"] >= shop_result.extra["threshold"])).all()


def test_rescorer_gives_the_logged_test_auc(shop_result):
    """Promotion re-scores a champion on this run's holdout/: the run's own model must score its test_auc."""
    from types import SimpleNamespace

    import mlflow

    from pipelines import rescoring

    logged = mlflow.get_run(shop_result.run_id).data.metrics["test_auc"]
    version = SimpleNamespace(run_id=shop_result.run_id, source=shop_result.model_uri)
    assert rescoring.rescorer_for(version)(shop_result.model_uri) == pytest.approx(logged, abs=1e-6)


def test_run_registers_a_purchase_model_under_its_own_name_and_rescores_it(fresh_mlflow_env, shop_dir, capsys):
    """``storefront train-churn --target purchase``: gate, ``storefront-purchase@challenger``, re-scorable."""
    from types import SimpleNamespace

    import mlflow

    from pipelines import rescoring
    from pipelines.cli import main

    assert main(["train-churn", "--data-dir", str(shop_dir), "--target", "purchase", "--n-trials", "2",
                 "--seed", "5"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias("storefront-purchase", "challenger")
    assert f"registered storefront-purchase version {version.version} as challenger" in line
    assert [m.name for m in client.search_registered_models()] == ["storefront-purchase"]  # never storefront-churn
    run = mlflow.get_run(version.run_id)
    assert run.data.tags["gate_verdict"] == "passed"
    assert f"test auc {run.data.metrics['test_auc']:.4f}" in line
    assert f"baseline {run.data.metrics['baseline_test_auc']:.4f}" in line
    rescored = rescoring.rescorer_for(SimpleNamespace(run_id=version.run_id, source=version.source))(
        f"models:/storefront-purchase/{version.version}")
    assert rescored == pytest.approx(run.data.metrics["test_auc"], abs=1e-6)


def test_score_churn_writes_every_active_customer_ranked_by_risk(shop_result, shop_dir, tmp_path):
    from models.churn.features import active_customers
    from pipelines.cli import main
    from pipelines.data.tables import load_tables

    out = tmp_path / "scores" / "churn.csv"
    assert main(["score-churn", "--model", shop_result.model_uri, "--data-dir", str(shop_dir),
                 "--cutoff", "2025-06-01", "--output", str(out)]) == 0
    scores = pd.read_csv(out, dtype={"customer_id": str})
    assert list(scores.columns) == ["rank", "customer_id", "churn_probability", "risk_segment", "churn"]
    expected = active_customers(load_tables(shop_dir)["transactions"], pd.Timestamp("2025-06-01"), 365)
    assert sorted(scores["customer_id"]) == sorted(expected)
    assert scores["rank"].tolist() == list(range(1, len(scores) + 1))
    assert scores["churn_probability"].is_monotonic_decreasing
    assert [p.name for p in out.parent.iterdir()] == ["churn.csv"]  # no temporary file left behind


def test_purchase_target_builds_seven_day_labels_and_never_registers_over_churn(tracking_home, shop_dir):
    from pipelines.churn.steps import prepare_shop
    from pipelines.churn.train import config_from_args

    prepared = prepare_shop(config_from_args(parse(["train-churn", "--data-dir", str(shop_dir), "--target", "purchase"])))
    assert prepared.run_params["window_days"] == 7 and prepared.registered_model == "storefront-purchase"
    cutoffs = {k: pd.Timestamp(prepared.run_params[k]) for k in ("test_cutoff", "val_cutoff")}
    assert cutoffs["test_cutoff"] - cutoffs["val_cutoff"] == pd.Timedelta(days=7)
    assert 0.05 < prepared.y_test.mean() < 0.6  # some, not all, active customers buy within a week
    assert prepared.problem.y_val.mean() == pytest.approx(prepared.y_fit.mean())  # refit = validation snapshot


def telco_csv(path, n: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, n)
    monthly = rng.uniform(18, 118, n).round(2)
    contract = rng.choice(["Month-to-month", "One year", "Two year"], n, p=[0.55, 0.25, 0.2])
    internet = rng.choice(["DSL", "Fiber optic", "No"], n)
    logit = 2.5 * (contract == "Month-to-month") + 1.2 * (internet == "Fiber optic") - 0.08 * tenure - 1.0
    churn = rng.random(n) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame({
        "customerID": [f"{i:04d}-ABCDE" for i in range(n)], "gender": rng.choice(["Female", "Male"], n),
        "SeniorCitizen": rng.integers(0, 2, n), "tenure": tenure, "InternetService": internet,
        "Contract": contract, "MonthlyCharges": monthly,
        "TotalCharges": np.where(tenure == 0, " ", (tenure * monthly).round(2).astype(str)),
        "Churn": np.where(churn, "Yes", "No"),
    })
    frame.to_csv(path, index=False)
    return frame


def test_bring_your_own_table_trains_and_serves_blank_numbers(tracking_home, tmp_path):
    import mlflow


    path = tmp_path / "telco_like.csv"
    frame = telco_csv(path)
    assert (frame["TotalCharges"] == " ").any()
    result = train_from_args(parse(["train-churn", "--table", str(path), "--label-column", "Churn",
                                      "--id-column", "customerID", "--n-trials", "2"]))
    assert result.registered_model == "storefront-churn-telco-like"
    assert result.test_value > 0.75
    run = mlflow.get_run(result.run_id)
    assert run.data.params["lenient_columns"] == "TotalCharges" and run.data.metrics["n_test_rows"] == 80
    model = mlflow.pyfunc.load_model(result.model_uri)
    rows = frame.head(3).drop(columns="Churn").rename(columns={"customerID": "customer_id"})
    rows["TotalCharges"] = [" ", "100.5", ""]
    rows[["tenure", "SeniorCitizen", "MonthlyCharges"]] = rows[["tenure", "SeniorCitizen", "MonthlyCharges"]].astype(float)
    out = model.predict(rows)
    assert out["customer_id"].tolist() == frame["customerID"].head(3).tolist()
    assert out["churn_probability"].between(0, 1).all()


@pytest.mark.parametrize("argv, message", [
    (["--table", "{csv}"], "--table needs --label-column"),
    (["--table", "{csv}", "--label-column", "Nope"], "no label column 'Nope'"),
    (["--table", "{csv}", "--label-column", "gender"], "label column 'gender' must hold yes/no"),
    (["--table", "{csv}", "--label-column", "Churn", "--target", "purchase"], "--target purchase needs the shop"),
    (["--data-dir", "{shop}", "--cutoff", "2025-12-01"], "after the data ends"),
    (["--data-dir", "{shop}", "--cost-ratio", "0"], "--cost-ratio must be positive"),
    (["--table", "{csv}", "--label-column", "Churn", "--registered-model", "storefront-churn"],
     "--registered-model 'storefront-churn' is one of the shop's own models"),
    (["--table", "{csv}", "--label-column", "Churn", "--registered-model", "storefront-sarima"],
     "is one of the shop's own models"),
])
def test_bad_options_exit_2_with_a_message(tracking_home, shop_dir, tmp_path, capsys, argv, message):
    from pipelines.cli import main

    csv = tmp_path / "t.csv"
    telco_csv(csv, n=60)
    argv = [a.format(csv=csv, shop=shop_dir) for a in argv]
    assert main(["train-churn", *argv]) == 2
    assert message in capsys.readouterr().err


def test_score_churn_refuses_a_table_model(tracking_home, shop_dir, tmp_path, capsys):
    from pipelines.cli import main

    assert main(["score-churn", "--model", "runs:/0123456789abcdef/model", "--data-dir", str(shop_dir),
                 "--output", str(tmp_path / "x.csv")]) == 2
    assert "cannot load" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_score_churn_model_names_mean_the_champion():
    from pipelines.churn.score import model_uri

    assert model_uri("storefront-churn") == "models:/storefront-churn@champion"
    assert model_uri("models:/storefront-churn/3") == "models:/storefront-churn/3"
    assert model_uri("runs:/abc/model") == "runs:/abc/model"


def test_mlproject_style_empty_parameters_mean_not_set():
    args = parse(["train-churn", "--data-dir", "", "--cost-ratio", "", "--window-days", "", "--n-trials", "5.0",
                  "--table", "", "--cutoff", ""])
    assert (args.data_dir, args.cost_ratio, args.window_days, args.n_trials, args.table, args.cutoff) == \
        (None, None, None, 5, None, None)


def test_family_run_under_mlflow_run_opens_its_own_run_linked_to_the_launcher(mlflow_env, monkeypatch):
    """``mlflow run . -e train_churn`` exports MLFLOW_RUN_ID (a run in another experiment): the study still gets
    its parent run in ``storefront-churn`` and the two runs name each other."""
    import os

    import mlflow

    from pipelines import tracking
    from pipelines.mlflow_logging import family_run

    client = mlflow.MlflowClient()
    launcher = client.create_run(client.get_experiment_by_name("Default").experiment_id).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", launcher)
    with family_run("churn", "launched", params={"window_days": 90}) as run:
        pass
    assert "MLFLOW_RUN_ID" not in os.environ
    own = mlflow.get_run(run.info.run_id)
    assert own.info.run_id != launcher and own.info.status == "FINISHED"
    assert own.info.experiment_id == tracking.experiment_id("storefront-churn")
    assert own.data.tags["storefront.launcher_run_id"] == launcher
    assert mlflow.get_run(launcher).data.tags["storefront.family_run_id"] == own.info.run_id
