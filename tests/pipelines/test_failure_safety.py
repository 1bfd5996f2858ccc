"""A training run that fails or is killed midway leaves a FAILED/KILLED run, no new version, no alias change."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from pipelines import cli, registry
from pipelines.recommenders import training as rt

NAME = "storefront-itemcf"


@pytest.fixture
def shop_dir(shop_folder) -> Path:
    return shop_folder(customers=400, products=40, years=2, seed=5)


def _registry_state(client) -> tuple[set[str], dict[str, str]]:
    versions = {str(v.version) for v in client.search_model_versions(f"name='{NAME}'")}
    return versions, {alias: str(v) for alias, v in client.get_registered_model(NAME).aliases.items()}


def _experiment(client) -> str:
    return client.get_experiment_by_name("storefront-itemcf").experiment_id


def _parent_runs(client) -> list:
    runs = client.search_runs([_experiment(client)], order_by=["attributes.start_time DESC"])
    return [r for r in runs if "mlflow.parentRunId" not in r.data.tags]


@pytest.mark.e2e
def test_failing_or_killed_training_changes_nothing_in_the_registry(fresh_mlflow_env, shop_dir, monkeypatch,
                                                                   tmp_path, child_env, capsys):
    client = mlflow.MlflowClient()
    argv = ["train-itemcf", "--data-dir", str(shop_dir), "--n-trials", "2", "--seed", "1"]
    assert cli.main(argv) == 0
    registry.promote(NAME)
    before = _registry_state(client)
    assert before == ({"1"}, {"champion": "1", "challenger": "1"})

    # 1. the model is logged, then the run fails before it ends: FAILED, not registered, one line and exit code 1
    real_finish = rt.finish_training

    def finish_then_fail(**kwargs):
        real_finish(**kwargs)
        raise RuntimeError("disk full while writing the report")

    with monkeypatch.context() as patch:
        patch.setattr(rt, "finish_training", finish_then_fail)
        capsys.readouterr()
        assert cli.main(argv) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "storefront train-itemcf: error: unexpected RuntimeError: disk full while writing the report (a bug: "
        "rerun with `storefront -v ...` for the traceback and report it)")
    failed = _parent_runs(client)[0]
    assert failed.info.status == "FAILED"
    assert "registered_model" not in failed.data.tags and "gate_verdict" not in failed.data.tags
    assert _registry_state(client) == before

    # 2. a training process killed (SIGTERM) during its study: KILLED, exit code 143 and one line (no traceback),
    #    not registered
    env = child_env(MLFLOW_TRACKING_URI=f"sqlite:///{fresh_mlflow_env / 'mlflow.db'}",
                    STOREFRONT_HOME=str(fresh_mlflow_env))
    log = tmp_path / "killed.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", *argv[:3], "--n-trials", "100000",
                                 "--timeout", "600", "--study-name", "killed"], env=env,
                                stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while True:  # wait until the study has finished at least one trial
            assert proc.poll() is None, log.read_text()[-3000:]
            try:  # the training process holds SQLite write locks now and then: poll gently, retry
                running = [r for r in _parent_runs(client) if r.info.status == "RUNNING"]
                if running and client.search_runs([_experiment(client)],
                                                  f"tags.mlflow.parentRunId = '{running[0].info.run_id}'"):
                    break
            except MlflowException:
                pass
            assert time.monotonic() < deadline, "the study never started:\n" + log.read_text()[-3000:]
            time.sleep(2)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail("the training process ignored SIGTERM for 120 s:\n" + log.read_text()[-3000:])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, log.read_text()[-3000:]
    output = log.read_text()
    assert "Traceback" not in output, output[-3000:]
    assert output.strip().splitlines()[-1] == ("storefront train-itemcf: error: terminated by signal 15 (SIGTERM); "
                                               "a run in progress ends KILLED")
    killed = client.get_run(running[0].info.run_id)
    assert killed.info.status == "KILLED"
    assert _registry_state(client) == before
