"""End-to-end: ``train_next_category`` on a generated shop beats the history baseline; re-scoring; registration."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from pipelines.cli import parse_args as parse
from pipelines.cli import train_from_args

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def shop_dir(shop_folder):
    # 1,500 customers: ~600 test customers; on a few hundred the AUC noise (~0.02) hides the model's edge
    return shop_folder(customers=1500, products=50, years=3, seed=11)


@pytest.fixture(scope="module")
def result(tracking_home, shop_dir):
    return train_from_args(parse(["train-next-category", "--data-dir", str(shop_dir),
                                                      "--n-trials", "3", "--seed", "1"]))


def test_model_beats_the_most_frequent_category_baseline(result):
    import mlflow

    r = result
    assert (r.family, r.primary_metric, r.higher_is_better) == ("next_category", "auc_ovr", True)
    assert r.test_value > r.baseline_value
    m, b = r.extra["test_metrics"], r.extra["baseline_test_metrics"]
    assert m["mean_ap"] > b["mean_ap"] and m["log_loss"] < b["log_loss"]
    run = mlflow.get_run(r.run_id)
    assert mlflow.get_experiment(run.info.experiment_id).name == "storefront-next-category"
    metrics, params = run.data.metrics, run.data.params
    for key in ("test_auc_ovr", "test_mean_ap", "test_accuracy", "test_log_loss"):
        assert metrics[key] == pytest.approx(m[key[5:]])
        assert metrics[f"baseline_{key}"] == pytest.approx(b[key[5:]])
    assert metrics["n_trials_complete"] == 3 and "val_auc_ovr" in metrics
    # tuning never sees the test window; the refit's labels end at the test cutoff
    test_cutoff = pd.Timestamp(params["test_cutoff"])
    final_cutoffs = [pd.Timestamp(c) for c in params["final_fit_cutoffs"].split(",")]
    assert max(final_cutoffs) + pd.Timedelta(days=int(params["horizon_days"])) <= test_cutoff
    assert pd.Timestamp(params["validation_cutoff"]) == max(final_cutoffs)
    client = mlflow.MlflowClient()
    assert {f.path for f in client.list_artifacts(r.run_id, "plots")} == {"plots/per_category_scores.png"}
    per_category = r.extra["per_category"]
    assert list(per_category["category"]) == r.extra["categories"] and per_category["support"].sum() > 300


def test_logged_model_answers_probabilities_per_category(result):
    import mlflow
    from mlflow.exceptions import MlflowException

    from pipelines.rescoring import load_holdout

    requests, truth, spec = load_holdout(result.run_id)
    model = mlflow.pyfunc.load_model(result.model_uri)
    out = model.predict(requests.head(20))
    prob = [c for c in out.columns if c.startswith("prob_")]
    assert len(prob) == len(spec["categories"]) == 5
    np.testing.assert_allclose(out[prob].sum(axis=1), 1.0)
    assert set(out["top_category"]) <= set(spec["categories"])
    with pytest.raises(MlflowException, match="share_books") as info:
        model.predict(requests.head(2).drop(columns=["share_books"]))
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_rescoring_reproduces_the_logged_test_auc(result):
    from pipelines import rescoring

    version = SimpleNamespace(run_id=result.run_id, source=result.model_uri)
    assert rescoring.rescorer_for(version)(result.model_uri) == pytest.approx(result.test_value, abs=1e-6)


def test_command_registers_the_result_as_challenger(result, shop_dir, monkeypatch, capsys):
    import mlflow

    from pipelines import registry


    from pipelines import cli

    monkeypatch.setattr(cli, "train_from_args", lambda args: result)
    assert cli.run_training(parse(["train-next-category", "--data-dir", str(shop_dir)])) == 0
    out = capsys.readouterr().out
    number = registry.alias_number("storefront-next-category", "challenger")
    assert f"registered storefront-next-category version {number} as challenger" in out
    version = mlflow.MlflowClient().get_model_version("storefront-next-category", number)
    assert version.run_id == result.run_id and version.tags["primary_metric"] == "auc_ovr"


def test_too_little_history_is_a_clear_error(mlflow_env, shop_dir, capsys):
    from pipelines.cli import main

    assert main(["train-next-category", "--data-dir", str(shop_dir), "--cutoff", "2023-02-01"]) == 2
    assert "customers with history before" in capsys.readouterr().err
    assert main(["train-next-category", "--data-dir", str(shop_dir), "--horizon-days", "0"]) == 2
    assert "--horizon-days must be at least 1" in capsys.readouterr().err
