"""End-to-end: ``train_segments`` on a small generated shop; re-scoring; registration through the command."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pipelines.cli import parse_args as parse
from pipelines.cli import train_from_args

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def shop_dir(shop_folder):
    return shop_folder(customers=500, products=40, years=2, seed=13)


@pytest.fixture(scope="module")
def result(tracking_home, shop_dir):
    return train_from_args(parse(["train-segments", "--data-dir", str(shop_dir), "--n-trials", "4",
                                                 "--seed", "5", "--max-k", "6"]))


def test_run_logs_study_segments_figures_and_a_positive_silhouette(result):
    import mlflow

    r = result
    assert (r.family, r.primary_metric, r.higher_is_better, r.baseline_value) == ("segments", "silhouette", True, 0.0)
    assert 2 <= r.extra["k"] <= 6 and 0 < r.test_value <= 1
    run = mlflow.get_run(r.run_id)
    assert mlflow.get_experiment(run.info.experiment_id).name == "storefront-segments"
    m = run.data.metrics
    assert m["test_silhouette"] == pytest.approx(r.test_value) and m["baseline_test_silhouette"] == 0.0
    assert m["n_segments"] == r.extra["k"] and m["n_trials_complete"] == 4
    assert int(run.data.params["k"]) == r.extra["k"]  # the chosen k, under the trials' key
    children = mlflow.search_runs([run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{r.run_id}'")
    assert len(children) == 4 and children["metrics.val_silhouette"].notna().all()
    client = mlflow.MlflowClient()
    plots = {f.path for f in client.list_artifacts(r.run_id, "plots")}
    assert plots == {"plots/segment_scatter.png", "plots/segment_sizes.png"}
    summary = mlflow.artifacts.load_text(f"runs:/{r.run_id}/segments/summary.md")
    assert all(name in summary for name in r.extra["names"]) and "customers (" in summary
    profile = r.extra["profile"]
    assert profile["size"].sum() > 400 and profile["share"].sum() == pytest.approx(1.0)


def test_logged_model_serves_segments_and_rejects_bad_input(result):
    import mlflow
    from mlflow.exceptions import MlflowException

    from pipelines.rescoring import load_holdout

    model = mlflow.pyfunc.load_model(result.model_uri)

    requests, truth, spec = load_holdout(result.run_id)
    out = model.predict(requests)
    assert list(out.columns) == ["segment_id", "segment_name"]
    assert (out["segment_id"].to_numpy() == truth["segment_id"].to_numpy()).all()
    assert set(out["segment_name"]) <= set(result.extra["names"])
    bad = requests.head(2).assign(avg_spend_per_item=[1.0, -5.0])
    with pytest.raises(MlflowException, match="avg_spend_per_item") as info:
        model.predict(bad)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_rescoring_reproduces_the_logged_test_silhouette(result):
    from pipelines import rescoring

    version = SimpleNamespace(run_id=result.run_id, source=result.model_uri)
    assert rescoring.rescorer_for(version)(result.model_uri) == pytest.approx(result.test_value, abs=1e-6)


def test_command_registers_the_result_as_challenger(result, shop_dir, monkeypatch, capsys):
    """``run`` hands the TrainResult to the gate (training itself is the module's fixture, not repeated)."""
    from pipelines import registry

    from pipelines import cli

    monkeypatch.setattr(cli, "train_from_args", lambda args: result)
    assert cli.run_training(parse(["train-segments", "--data-dir", str(shop_dir)])) == 0
    out = capsys.readouterr().out
    number = registry.alias_number("storefront-segments", "challenger")
    assert f"registered storefront-segments version {number} as challenger" in out
    assert f"test silhouette {result.test_value:.4f} (baseline 0.0000" in out
    version = mlflow_version("storefront-segments", number)
    assert version.run_id == result.run_id and version.tags["primary_metric"] == "silhouette"


def mlflow_version(name, number):
    import mlflow

    return mlflow.MlflowClient().get_model_version(name, number)


def test_bad_options_exit_2(mlflow_env, shop_dir, capsys):
    from pipelines.cli import main

    assert main(["train-segments", "--data-dir", str(shop_dir), "--min-k", "1"]) == 2
    assert "--min-k and --max-k must satisfy 2 <= min-k <= max-k" in capsys.readouterr().err
    assert main(["train-segments", "--data-dir", str(shop_dir), "--max-k", "400"]) == 2
    assert "too few for up to 400 segments" in capsys.readouterr().err
