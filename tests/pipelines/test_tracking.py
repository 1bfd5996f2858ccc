from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from pipelines import tracking

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_point_at_the_checkout_not_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("STOREFRONT_HOME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking.project_root() == ROOT
    assert tracking.tracking_uri() == f"sqlite:///{ROOT / 'mlflow.db'}"
    assert tracking.artifact_location("storefront-svdpp") == (ROOT / "mlartifacts" / "storefront-svdpp").as_uri()


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("STOREFRONT_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert tracking.project_root() == tmp_path.resolve()
    assert tracking.tracking_uri() == "http://127.0.0.1:5999"
    # a remote server keeps its own artifact root unless one is given
    assert tracking.artifact_location("storefront-churn") is None
    monkeypatch.setenv("STOREFRONT_ARTIFACT_ROOT", "s3://bucket/storefront/")
    assert tracking.artifact_location("storefront-churn") == "s3://bucket/storefront/storefront-churn"


def test_experiment_is_created_once_with_an_explicit_artifact_location(fresh_mlflow_env):
    first = tracking.experiment_id("storefront-itemcf")
    again = tracking.experiment_id("storefront-itemcf")
    assert first == again
    exp = mlflow.get_experiment(first)
    assert exp.artifact_location == (fresh_mlflow_env / "mlartifacts" / "storefront-itemcf").as_uri()


def _run_cli(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.e2e
def test_runs_started_from_any_directory_land_in_the_project_store(tmp_path, child_env):
    home, elsewhere = tmp_path / "home", tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    env = child_env(STOREFRONT_HOME=str(home), PYTHONPATH=str(ROOT))
    small = ["generate-data", "--customers", "40", "--products", "12", "--years", "1"]
    for cwd in (elsewhere, tmp_path):
        done = _run_cli([*small, "--output-dir", str(tmp_path / "data"), "--overwrite"], cwd, env)  # same folder
        assert done.returncode == 0, done.stderr
    assert (home / "mlflow.db").is_file()
    for cwd in (elsewhere, tmp_path):
        assert not (cwd / "mlflow.db").exists() and not (cwd / "mlruns").exists() and not (cwd / "mlartifacts").exists()
    client = mlflow.MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    exp = client.get_experiment_by_name("storefront-data")
    assert exp.artifact_location == (home / "mlartifacts" / "storefront-data").as_uri()
    assert len(client.search_runs([exp.experiment_id])) == 2


@pytest.mark.e2e
def test_the_same_code_logs_to_a_remote_tracking_server(tmp_path, serve_mlflow_server, child_env):
    server_url, artifact_root = serve_mlflow_server
    env = child_env(MLFLOW_TRACKING_URI=server_url, STOREFRONT_HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT))
    done = _run_cli(["generate-data", "--customers", "40", "--products", "12", "--years", "1",
                     "--output-dir", str(tmp_path / "data")], tmp_path, env)
    assert done.returncode == 0, done.stderr
    client = mlflow.MlflowClient(server_url)
    exp = client.get_experiment_by_name("storefront-data")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert not (tmp_path / "home" / "mlflow.db").exists()  # nothing went to the local store
    assert not (tmp_path / "home" / "mlartifacts").exists()
