"""A training run that fails or is killed midway leaves a FAILED/KILLED run, no new version, no alias change."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
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
                                                                   tmp_path, child_env):
    client = mlflow.MlflowClient()
    argv = ["train-itemcf", "--data-dir", str(shop_dir), "--n-trials", "2", "--seed", "1"]
    assert cli.main(argv) == 0
    registry.promote(NAME)
    before = _registry_state(client)
    assert before == ({"1"}, {"champion": "1", "challenger": "1"})

    # 1. the model is logged, then the run fails before it ends: FAILED, not registered
    real_finish = rt.finish_training

    def finish_then_fail(**kwargs):
        real_finish(**kwargs)
        raise RuntimeError("disk full while writing the report")

    with monkeypatch.context() as patch:
        patch.setattr(rt, "finish_training", finish_then_fail)
        with pytest.raises(RuntimeError, match="disk full"):
            cli.main(argv)
    failed = _parent_runs(client)[0]
    assert failed.info.status == "FAILED"
    assert not any(k.startswith("registered_model") for k in failed.data.tags) and "gate_verdict" not in failed.data.tags
    assert _registry_state(client) == before

    # 2. a training process killed (SIGTERM) during its study: KILLED, exit code non-zero, not registered
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
    assert proc.returncode != 0
    killed = client.get_run(running[0].info.run_id)
    assert killed.info.status == "KILLED"
    assert _registry_state(client) == before


# A study in a real process: trial 1 hangs (after a marker file appears) until the process is SIGKILLed.
KILLABLE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from pipelines.mlflow_logging import family_run
    from pipelines.options import StudyOptions
    from pipelines.study import run_study

    marker, storage, hang = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "hang"

    def objective(trial):
        x = trial.suggest_float("x", -1, 1)
        if hang and trial.number == 1:
            marker.write_text("trial 1 running")
            time.sleep(600)
        return x * x

    with family_run("segments", "killable") as run:
        run_study(objective, options=StudyOptions(study_name="killable", n_trials=4, storage=storage),
                  metrics="silhouette", directions="minimize")
    print(run.info.run_id)
""")


@pytest.mark.e2e
def test_a_sigkilled_study_is_recovered_by_the_next_run(fresh_mlflow_env, tmp_path, child_env):
    """SIGKILL leaves the parent run RUNNING and the Optuna trial RUNNING; the next run of the family marks the
    run FAILED (its process is gone) and the trial FAIL (its heartbeat stopped), and completes the study's total."""
    import optuna

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    marker = tmp_path / "marker"
    env = child_env(MLFLOW_TRACKING_URI=f"sqlite:///{fresh_mlflow_env / 'mlflow.db'}",
                    STOREFRONT_HOME=str(fresh_mlflow_env), STOREFRONT_HEARTBEAT_SECONDS="1")
    proc = subprocess.Popen([sys.executable, "-c", KILLABLE, str(marker), storage, "hang"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the study never reached trial 1"
        time.sleep(0.2)
    proc.kill()
    proc.communicate()  # reaps it and closes the pipes
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("storefront-segments").experiment_id
    orphan = client.search_runs([experiment], "attributes.status = 'RUNNING'")
    assert len(orphan) == 1  # the parent; no trial run is left RUNNING (trial runs are written when they end)
    states = [t.state.name for t in optuna.load_study(study_name="killable", storage=storage).trials]
    assert states == ["COMPLETE", "RUNNING"]

    time.sleep(2.5)  # the dead trial's heartbeat is now older than its grace period (2 x 1 s)
    done = subprocess.run([sys.executable, "-c", KILLABLE, str(marker), storage, "go"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    dead = client.get_run(orphan[0].info.run_id)
    assert dead.info.status == "FAILED"
    assert "ended without closing this run" in dead.data.tags["storefront.failed_reason"]
    study = optuna.load_study(study_name="killable", storage=storage)
    assert [t.state.name for t in study.trials][:2] == ["COMPLETE", "FAIL"]
    assert len(study.trials) == 4  # --n-trials is the study's total: 2 more after the 2 of the killed run
