from __future__ import annotations

import subprocess
import sys
import textwrap
from types import SimpleNamespace

import mlflow
import numpy as np
import optuna
import pandas as pd
import pytest

from models.threads import thread_count
from pipelines.recommenders import training as rt
from pipelines import registry
from pipelines.recommenders import train_svdpp
from pipelines.cli import main as cli_main
from pipelines.cli import parse_args, run_training, train_from_args
from pipelines.rescoring import rescorer_for
from pipelines.recommenders.train_svdpp import (
    RANKING_DEFAULTS,
    SURPRISE_DEFAULTS,
    fit_svdpp,
    heldout_pairs,
    item_labels,
    make_objective,
    subsample_customers,
    svdpp_recommender,

)

RANKING_KEYS = ("precision_at_10", "recall_at_10", "ndcg_at_10", "map_at_10", "coverage", "personalization")


@pytest.fixture(scope="module")
def shop_dir(shop_folder):
    """A small generated shop: 1,500 customers (about 450 of them buy in the test window), 60 products."""
    return shop_folder(customers=1500, products=60, years=3, seed=11)


@pytest.fixture(scope="module")
def shop_data(shop_dir):
    data = rt.load_recommender_data(shop_dir)
    return data, rt.popularity_baseline(data, 10)


def child_runs(parent_id: str):
    parent = mlflow.get_run(parent_id)
    return mlflow.search_runs(experiment_ids=[parent.info.experiment_id],
                              filter_string=f"tags.mlflow.parentRunId = '{parent_id}'", output_format="list")


@pytest.mark.e2e
def test_precision_study_beats_popularity_and_the_logged_model_serves_training_answers(mlflow_env, shop_dir, child_env,
                                                                                     shop_data, monkeypatch):
    # the refit on everyone runs in a second process (a small shop's refit stays in this one by default); the
    # served answers below are compared with a fit in this process
    monkeypatch.setattr(train_svdpp, "BACKGROUND_REFIT_PAIRS", 0)
    # no content blend: the served scores below are compared with the plain SVD++ scorer's
    result = train_from_args(parse_args(["train-svdpp", "--data-dir", str(shop_dir), "--n-trials", "2",
                                                     "--timeout", "0", "--objective", "precision",
                                                     "--study-name", "svdpp-e2e", "--blend-trials", "0"]))
    parent = mlflow.get_run(result.run_id)
    assert parent.info.status == "FINISHED"
    assert mlflow.get_experiment(parent.info.experiment_id).name == "storefront-svdpp"
    children = child_runs(result.run_id)
    assert len(children) == 2
    assert {c.data.tags["trial_state"] for c in children} == {"COMPLETE"}
    assert all("val_precision_at_10" in c.data.metrics for c in children)
    metrics = parent.data.metrics
    for key in ("rmse", "mae", "hit_rate_at_10", *RANKING_KEYS):
        assert f"test_{key}" in metrics
    for key in ("rmse", "mae", *RANKING_KEYS):
        assert f"baseline_test_{key}" in metrics
    assert result.primary_metric == "precision_at_10"
    assert result.test_value == pytest.approx(metrics["test_precision_at_10"])
    assert result.baseline_value == pytest.approx(metrics["baseline_test_precision_at_10"])
    # The ranking objective beats the popularity baseline on the held-out test window (fixed seeds).
    assert result.test_value > 1.1 * result.baseline_value, (result.test_value, result.baseline_value)
    artifacts = {a.path for folder in ("plots", "study")
                 for a in mlflow.MlflowClient().list_artifacts(result.run_id, folder)}
    assert {"plots/precision_at_k.png", "plots/predicted_vs_actual.png", "study/optimization_history.png"} <= artifacts
    assert parent.data.tags["refit_choice"].startswith(f"trial {parent.data.tags['best_trial']}:")
    assert parent.data.tags["refit_process"] == ("background" if thread_count() >= 2 else "this process")
    assert metrics["fit_seconds"] > 0 and metrics["refit_wait_seconds"] >= 0
    # Promotion re-scores a model on this run's holdout/: the logged model scores the logged test metric.
    version = SimpleNamespace(run_id=result.run_id, source=result.model_uri)
    assert rescorer_for(version)(result.model_uri) == pytest.approx(metrics["test_precision_at_10"], abs=1e-6)

    # Round trip: the loaded pyfunc answers what the same fit gives in training (fits are seeded).
    data, baseline = shop_data
    log = data.log("test")
    model = fit_svdpp(result.extra["params"], log.matrix(), item_labels(data, log.product_ids), 42)
    recommender = svdpp_recommender(model, log, baseline.popularity("test"))
    known_ids = [c for c in data.relevant("test") if recommender.customer_index(c) is not None]
    customers = [*known_ids[:25], "no-such-customer"]
    loaded = mlflow.pyfunc.load_model(result.model_uri)
    served = loaded.predict(pd.DataFrame({"customer_id": customers}), params={"k": 5})
    expected = recommender.recommend_frame(customers, 5)
    pd.testing.assert_frame_equal(served.reset_index(drop=True), expected, check_exact=False, rtol=1e-12)
    assert set(served.loc[served["customer_id"] == "no-such-customer", "reason"]) == {"popular"}
    known = served[served["customer_id"] != "no-such-customer"]
    bought = {(c, p) for c, p in zip(log.customer_ids[log.tx_user], log.product_ids[log.tx_item])}
    category = dict(zip(data.tables["products"]["product_id"], data.tables["products"]["category"]))
    tastes = {}
    for c, p in bought:
        tastes.setdefault(c, set()).add(category[p])
    expected_reasons = [f"matches your taste in {category[p]}" if category[p] in tastes[c]
                        else f"customers with similar taste buy this ({category[p]})"
                        for c, p in zip(known["customer_id"], known["product_id"])]
    assert known["reason"].tolist() == expected_reasons
    assert any(r.startswith("matches your taste in ") for r in expected_reasons)
    assert not any((c, p) in bought for c, p in zip(known["customer_id"], known["product_id"]))
    with_bought = loaded.predict(pd.DataFrame({"customer_id": customers[:5]}),
                                 params={"k": 20, "exclude_purchased": False})
    assert any((c, p) in bought for c, p in zip(with_bought["customer_id"], with_bought["product_id"]))
    # the SVD++ model answers bad parameters with INVALID_PARAMETER_VALUE (HTTP 400) naming them
    from mlflow.exceptions import MlflowException

    for params in ({"k": 101}, {"k": "ten"}, {"exclude_purchased": "perhaps"}):
        with pytest.raises(MlflowException) as info:
            loaded.predict(pd.DataFrame({"customer_id": customers[:1]}), params=params)
        assert info.value.error_code == "INVALID_PARAMETER_VALUE" and next(iter(params)) in info.value.message

    with open(mlflow.pyfunc.get_model_dependencies(result.model_uri)) as f:
        requirements = f.read().lower()
    assert "surprise" not in requirements and "numpy" in requirements
    # A fresh interpreter serves the model without importing Surprise.
    script = textwrap.dedent(f"""
        import sys, mlflow, pandas as pd
        model = mlflow.pyfunc.load_model({result.model_uri!r})
        out = model.predict(pd.DataFrame({{"customer_id": [{customers[0]!r}]}}), params={{"k": 3}})
        assert len(out) == 3, out
        print("surprise" in sys.modules, "models.recommenders.svdpp" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env=child_env(MLFLOW_TRACKING_URI=mlflow.get_tracking_uri()))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["False", "True"]


@pytest.mark.e2e
def test_multi_objective_refits_the_pareto_trial_with_the_best_precision(mlflow_env, shop_dir, capsys):
    # through the command: parsed options -> train_from_args -> registration gate -> one summary line
    args = parse_args(["train-svdpp", "--data-dir", str(shop_dir), "--n-trials", "3", "--timeout", "0", "--seed", "3",
                       "--objective", "multi", "--study-name", "svdpp-multi"])
    assert run_training(args) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    run_id = line.rsplit("run ", 1)[1]
    parent = mlflow.get_run(run_id)
    test_value = parent.data.metrics["test_precision_at_10"]
    baseline_value = parent.data.metrics["baseline_test_precision_at_10"]
    assert line.startswith(f"SVD++ (multi): test precision_at_10 {test_value:.4f} (popularity {baseline_value:.4f}), "
                           f"test rmse {parent.data.metrics['test_rmse']:.4f}; ")
    if test_value > baseline_value:
        version = registry.alias_version("storefront-svdpp", registry.CHALLENGER)
        assert version.run_id == run_id
        assert f"registered storefront-svdpp version {version.version} as challenger" in line
    else:
        assert "not registered: " in line and parent.data.tags["gate_verdict"] == "failed"
    result = SimpleNamespace(run_id=run_id)
    children = child_runs(result.run_id)
    assert len(children) == 3
    assert all({"val_rmse", "val_precision_at_10"} <= set(c.data.metrics) for c in children)
    front = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=result.run_id,
                                                            artifact_path="study/pareto_front.csv"))
    chosen = front.sort_values(["val_precision_at_10", "val_rmse"], ascending=[False, True]).iloc[0]
    assert parent.data.tags["refit_trial"] == str(int(chosen["trial"]))
    assert parent.data.tags["pareto_choice"].startswith(f"trial {int(chosen['trial'])}: highest val precision")
    # the plain rating model (neg_ratio 0, enqueued) has the best rmse of the trials
    by_number = {c.data.tags["trial_number"]: c.data for c in children}
    assert float(by_number["1"].params["neg_ratio"]) == 0.0
    assert by_number["1"].metrics["val_rmse"] == min(c.metrics["val_rmse"] for c in by_number.values())
    assert "pareto_front.png" in {a.path.split("/")[-1] for a in mlflow.MlflowClient().list_artifacts(result.run_id, "study")}


@pytest.mark.e2e
def test_rmse_objective_beats_the_mean_rating_on_validation(shop_data):
    data, baseline = shop_data
    objective = make_objective(data, baseline, 10, "rmse", seed=0)
    value = objective(optuna.trial.FixedTrial(SURPRISE_DEFAULTS))
    users, items, ratings = heldout_pairs(data, "validation", data.log("validation"))
    mean = data.log("validation").matrix().data.mean()
    assert 0 < value < float(np.sqrt(np.mean((ratings - mean) ** 2)))


@pytest.mark.e2e
def test_ranking_defaults_beat_popularity_on_validation_with_subsampled_customers(shop_data):
    data, baseline = shop_data
    full = make_objective(data, baseline, 10, "precision", seed=0)(optuna.trial.FixedTrial(RANKING_DEFAULTS))
    popularity = rt.validation_score(baseline.recommenders["validation"], data, 10)
    assert full > popularity
    half = make_objective(data, baseline, 10, "precision", seed=0, tuning_customers=750)
    assert 0 < half(optuna.trial.FixedTrial(RANKING_DEFAULTS)) < 1


def test_heldout_pairs_are_new_pairs_of_known_customers_rated_by_window_spend(shop_data):
    data, _ = shop_data
    log = data.log("test")
    users, items, ratings = heldout_pairs(data, "test", log)
    assert len(users) > 100
    assert not np.asarray(log.purchased()[users, items]).any()
    window = data.window_transactions("test")
    customer, product = log.customer_ids[users[0]], log.product_ids[items[0]]
    spent = window.loc[(window["customer_id"] == customer) & (window["product_id"] == product), "amount"].sum()
    assert ratings[0] == pytest.approx(np.log1p(spent))
    known = set(log.customer_ids)
    new_customers = set(window["customer_id"]) - known
    assert len({log.customer_ids[u] for u in users} & new_customers) == 0


def test_subsample_customers_keeps_the_shape_and_only_the_chosen_rows():
    from scipy import sparse

    matrix = sparse.csr_matrix(np.arange(1, 41, dtype=float).reshape(10, 4))
    kept, rows = subsample_customers(matrix, 3, seed=0)
    assert kept.shape == (10, 4) and len(rows) == 3
    assert sorted(set(kept.tocoo().row)) == sorted(rows.tolist())
    assert kept.nnz == 12 and (kept.data != 0).all()
    np.testing.assert_array_equal(kept[rows].toarray(), matrix[rows].toarray())
    same, none = subsample_customers(matrix, 0, seed=0)
    assert same is matrix and none is None


def test_bad_options_are_named(mlflow_env, shop_dir, capsys):
    for argv, message in ((["--objective", "ndcg"], "invalid choice: 'ndcg'"),
                          (["--k", "0"], "--k must be an integer from 1 to 100"),
                          (["--tuning-customers", "-5"], "--tuning-customers: expected 'auto', 0 (every customer)"),
                          (["--tuning-customers", "many"], "--tuning-customers: expected an integer")):
        with pytest.raises(SystemExit):
            parse_args(["train-svdpp", *argv])
        assert message in capsys.readouterr().err
    assert train_svdpp.config_from_args(parse_args(["train-svdpp"])).tuning_customers is None  # the rule
    assert train_svdpp.config_from_args(parse_args(["train-svdpp", "--tuning-customers", "AUTO"])).tuning_customers is None
    assert train_svdpp.config_from_args(parse_args(["train-svdpp", "--tuning-customers", "0"])).tuning_customers == 0
    assert cli_main(["train-svdpp", "--data-dir", str(shop_dir / "missing")]) == 2
    assert "no customers.parquet or customers.csv" in capsys.readouterr().err


def test_search_space_has_the_implicit_regularisation_for_every_objective():
    from models.recommenders.svdpp import SVDppRecommender
    from pipelines.recommenders.train_svdpp import IMPLICIT_REGULARISATION, RATING_IMPLICIT_REGULARISATION, model_params, \
        suggest_params

    for objective, (low, high) in [("rmse", RATING_IMPLICIT_REGULARISATION), ("precision", IMPLICIT_REGULARISATION),
                                   ("multi", IMPLICIT_REGULARISATION)]:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
        for _ in range(25):
            trial = study.ask()
            params = suggest_params(trial, objective)
            assert low <= params["reg_yj"] <= high
            assert params["objective"] == ("rmse" if objective == "rmse" else params["objective"])
            rebuilt = model_params(trial.params)
            assert rebuilt["reg_yj"] == params["reg_yj"]  # kept for rating models too
            SVDppRecommender(**rebuilt)._check_params()
            study.tell(trial, 0.0)
    # the enqueued start for rmse is exactly Surprise's default (reg_yj = reg_all = 0.02)
    assert SURPRISE_DEFAULTS["reg_yj"] == SURPRISE_DEFAULTS["reg_all"] == 0.02
    assert RATING_IMPLICIT_REGULARISATION[0] < 0.01 < RATING_IMPLICIT_REGULARISATION[1]


@pytest.mark.e2e
def test_svdpp_runs_choose_the_cold_start_and_blend_on_validation_and_log_metrics_by_segment(mlflow_env, shop_dir):
    result = train_from_args(parse_args(["train-svdpp", "--data-dir", str(shop_dir), "--n-trials", "1",
                                         "--timeout", "0", "--study-name", "svdpp-hybrid", "--blend-trials", "6"]))
    run = mlflow.get_run(result.run_id)
    params, metrics = run.data.params, run.data.metrics
    assert params["cold_start_attributes"] != "none" and "blend_weight" in params
    assert metrics["val_blend_precision_at_10"] >= metrics["val_unblended_precision_at_10"]
    trials = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=result.run_id,
                                                             artifact_path="study/blend_trials.csv"))
    assert len(trials) == 6 and trials["params_weight"].iloc[0] == 0.0
    for key in ("test_warm_precision_at_10", "segment_baseline_test_cold_precision_at_10",
                "test_coldsim_precision_at_10", "baseline_test_coldsim_precision_at_10", "test_new_item_hit_share"):
        assert key in metrics
    # the served model answers an unknown customer with demographics from its segment
    model = mlflow.pyfunc.load_model(result.model_uri)
    answer = model.predict(pd.DataFrame({"customer_id": ["new"], "age": [30], "gender": ["Female"]}), params={"k": 3})
    assert answer["reason"].iloc[0].startswith("popular with customers like you (")


@pytest.mark.e2e
def test_a_sampled_study_chooses_its_refit_winner_on_every_customer(mlflow_env, shop_dir, shop_data, monkeypatch):
    # the second candidate is fitted in a second process, as on a large shop (a small shop's stays in this one)
    monkeypatch.setattr(train_svdpp, "BACKGROUND_REFIT_PAIRS", 0)
    result = train_from_args(parse_args(["train-svdpp", "--data-dir", str(shop_dir), "--n-trials", "4",
                                         "--timeout", "0", "--tuning-customers", "400", "--study-name", "svdpp-check",
                                         "--blend-trials", "0"]))
    parent = mlflow.get_run(result.run_id)
    params, metrics, tags = parent.data.params, parent.data.metrics, parent.data.tags
    assert params["tuning_customers"] == "400" and metrics["tuning_check_customers"] > 1000
    check = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=result.run_id,
                                                            artifact_path="study/tuning_agreement.csv"))
    # the candidates: the sample's best trial and the enqueued start (trial 0), or the runner-up when they are one
    assert len(check) == 2 and check["trial"].iloc[0] == int(tags["best_trial"])
    assert 0 in check["trial"].tolist()
    # the refit winner is the better one on every customer's validation, and that score is reproducible here
    winner = check.loc[check["full_value"].idxmax()]
    assert tags["refit_trial"] == str(int(winner["trial"]))
    assert tags["refit_choice"].startswith(f"trial {int(winner['trial'])}: best val_precision_at_10 on every customer")
    assert metrics["tuning_agreement_best"] == float(check["full_value"].idxmax() == check["sample_value"].idxmax())
    data, baseline = shop_data
    chosen = {k.removeprefix("refit_"): v for k, v in params.items() if k.startswith("refit_")}
    assert result.extra["params"]["n_factors"] == int(chosen["n_factors"])
    full = train_svdpp.SampleScorer(data, baseline, 10, "precision", 42, None)(result.extra["params"])
    assert full == pytest.approx(winner["full_value"], abs=1e-6)
