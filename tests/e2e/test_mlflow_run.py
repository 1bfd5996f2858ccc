"""`mlflow run . -e <entry point> --env-manager local` runs the project's entry points as users start them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import mlflow
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_mlflow_run_generate_data_writes_the_tables_and_logs_them_as_inputs(tmp_path, child_env):
    home = tmp_path / "home"
    uri = f"sqlite:///{home / 'mlflow.db'}"
    env = child_env(STOREFRONT_HOME=str(home), MLFLOW_TRACKING_URI=uri)
    done = subprocess.run(
        ["mlflow", "run", str(ROOT), "-e", "generate_data", "--env-manager", "local",
         "-P", "customers=60", "-P", "products=15", "-P", "years=1", "-P", f"output_dir={tmp_path / 'data'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [
        "customers.parquet", "events.parquet", "products.parquet", "transactions.parquet"]
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("storefront-data")
    [run] = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["customers"] == "60"
    # linked to the launcher run `mlflow run` created, and the four tables are its dataset inputs
    assert run.data.tags["storefront.launcher_run_id"]
    assert sorted(d.dataset.name for d in run.inputs.dataset_inputs) == ["customers", "events", "products",
                                                                       "transactions"]
