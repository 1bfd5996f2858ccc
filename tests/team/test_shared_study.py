"""One study, many workers, one result, for real: ``storefront train-itemcf --workers 2`` against a real PostgreSQL
(the Optuna storage and the MLflow tracking store are two fresh databases of the session's server), two worker
processes. The study ends with exactly ``--n-trials`` trials, one parent run holds every trial of both workers,
one version is registered; a worker killed mid-trial blocks nobody and its trial ends FAIL; processes creating a
fresh storage's schema together all live."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.team.servers import clean_env

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
N_TRIALS = 30
HEARTBEAT = 2  # seconds: a killed worker's trial is stale after 4 s


@pytest.fixture(scope="module")
def team(postgres, mlflow_server, tmp_path_factory, shop_folder):
    """The environment of the module's commands: a real ``mlflow server`` on PostgreSQL (proxied artifacts), a shop
    whose item-CF trials take long enough (about a second) that both workers run some."""
    home = tmp_path_factory.mktemp("shared-study")
    env = clean_env(MLFLOW_TRACKING_URI=mlflow_server.url, STOREFRONT_HOME=str(home),
                    STOREFRONT_HEARTBEAT_SECONDS=str(HEARTBEAT))
    return {"env": env, "home": home, "shop": shop_folder(2500, 150, 2, 11), "postgres": postgres}


def launch(team, study: str, storage: str, workers: int = 2) -> subprocess.Popen:
    argv = [sys.executable, "-m", "pipelines.cli", "train-itemcf", "--data-dir", str(team["shop"]),
            "--n-trials", str(N_TRIALS), "--timeout", "0", "--seed", "3", "--blend-trials", "0",
            "--storage", storage, "--study-name", study, "--workers", str(workers)]
    return subprocess.Popen(argv, cwd=team["home"], env=team["env"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[str, str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-4000:]
    return out, err


def client(team):
    """The module's one MLflow client of its tracking server."""
    import mlflow

    if "client" not in team:
        uri = team["env"]["MLFLOW_TRACKING_URI"]
        team["client"] = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    return team["client"]


@pytest.fixture(scope="module", autouse=True)
def _closed_connections(team):
    """Database connections another module left for the garbage collector are collected before this module (their
    ResourceWarning is not this module's failure); this module closes its own."""
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    yield
    if "client" in team:
        for store in (team["client"]._tracking_client.store, team["client"]._get_registry_client().store):
            engine = getattr(store, "engine", None)
            if engine is not None:
                engine.dispose()


def runs_of(team, parent_id: str):
    c = client(team)
    experiment = c.get_run(parent_id).info.experiment_id
    return c.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent_id}'", max_results=1000)


def parent_of(study) -> str:
    from pipelines.workers import ATTR

    return study.user_attrs[ATTR]["parent_run_id"]


@pytest.fixture(scope="module")
def storages():
    """``storages(url)``: one Optuna storage per URL for the module's checks, closed at the end."""
    import optuna

    made = {}
    yield lambda url: made.setdefault(url, optuna.storages.RDBStorage(url))
    for storage in made.values():
        storage.engine.dispose()


@pytest.fixture(scope="module")
def shared_run(team, storages):
    """One launch with two workers on a fresh Optuna database; its study, parent run id and output."""
    import optuna

    url = team["postgres"].url(team["postgres"].create_database())
    started = time.monotonic()
    out, err = finish(launch(team, "itemcf-shared", url))
    study = optuna.load_study(study_name="itemcf-shared", storage=storages(url))
    return {"study": study, "parent": parent_of(study), "out": out, "err": err,
            "seconds": time.monotonic() - started}


def test_the_study_ends_with_exactly_n_trials_run_by_both_workers(shared_run):
    study = shared_run["study"]
    assert len(study.trials) == N_TRIALS
    assert sorted(t.number for t in study.trials) == list(range(N_TRIALS))
    assert all(t.state.name == "COMPLETE" for t in study.trials), [t.state.name for t in study.trials]
    assert "tune-worker: ran " in shared_run["err"]  # the second worker's closing line (its stdout goes to stderr)


def test_one_parent_run_holds_every_trial_of_both_workers_and_the_worker_run(team, shared_run):
    c = client(team)
    parent = c.get_run(shared_run["parent"])
    assert parent.info.status == "FINISHED" and parent.data.tags["role"] == "study"
    studies = c.search_runs([parent.info.experiment_id], "tags.role = 'study'")
    assert [r.info.run_id for r in studies] == [parent.info.run_id]  # N workers, one parent run
    children = runs_of(team, parent.info.run_id)
    trials = [r for r in children if r.data.tags.get("role") == "trial"]
    assert sorted(int(r.data.tags["trial_number"]) for r in trials) == list(range(N_TRIALS))
    ran_by = {r.data.tags["storefront.worker"] for r in trials}
    assert len(ran_by) == 2, ran_by  # both processes ran trials
    worker_runs = [r for r in children if r.data.tags.get("role") == "worker"]
    assert len(worker_runs) == 1 and worker_runs[0].info.status == "FINISHED"
    assert worker_runs[0].data.tags["data_digest"] == parent.data.tags["data_digest"]  # the same data
    assert parent.data.metrics["n_trials_total"] == N_TRIALS
    assert parent.data.metrics["n_trials_complete"] == N_TRIALS
    best = max((t for t in shared_run["study"].trials), key=lambda t: t.value)
    assert parent.data.tags["best_trial"] == str(best.number)


def test_exactly_one_version_is_registered_from_the_parent_run(team, shared_run):
    versions = client(team).search_model_versions("name = 'storefront-itemcf'")
    mine = [v for v in versions if v.run_id == shared_run["parent"]]
    assert len(mine) == 1
    assert shared_run["out"].count("registered storefront-itemcf version") == 1
    every_run = {v.run_id for v in versions}
    children = {r.info.run_id for r in runs_of(team, shared_run["parent"])}
    assert not every_run & children  # no worker registered anything


def test_a_killed_worker_blocks_nobody_and_its_trial_ends_fail(team, storages):
    import optuna

    url = team["postgres"].url(team["postgres"].create_database())
    proc = launch(team, "itemcf-killed", url)
    storage, study, victim, deadline = storages(url), None, None, time.monotonic() + 300
    while victim is None:  # wait until the second worker is inside a trial, then SIGKILL it there
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:]
        if study is None:
            try:
                study = optuna.load_study(study_name="itemcf-killed", storage=storage)
            except KeyError:
                time.sleep(0.2)
                continue
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True,
                                  text=True).stdout.split()
        helper = f"{socket.gethostname()}:{children[0]}" if children else None
        for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            if helper and trial.system_attrs.get("storefront.worker") == helper:
                os.kill(int(children[0]), signal.SIGKILL)
                victim = trial.number
                break
        else:
            time.sleep(0.05)
    out, err = finish(proc)
    states = [t.state.name for t in optuna.load_study(study_name="itemcf-killed", storage=storage).trials]
    assert len(states) == N_TRIALS and states.count("COMPLETE") == N_TRIALS - 1, states
    assert states[victim] == "FAIL", (victim, states)
    assert f"study itemcf-killed: trial {victim} of worker {helper} marked FAIL (no heartbeat for {2 * HEARTBEAT} s: its " \
           "process died)" in err
    assert f"worker process {helper.split(':')[1]} ended with exit code -9" in err
    parent = client(team).get_run(parent_of(study))
    assert parent.info.status == "FINISHED" and parent.data.metrics["n_trials_failed"] == 1
    children = runs_of(team, parent.info.run_id)
    worker_runs = [r for r in children if r.data.tags.get("role") == "worker"]
    assert [r.info.status for r in worker_runs] == ["FAILED"]  # the launcher closed the dead worker's run
    trial_runs = {int(r.data.tags["trial_number"]): r for r in children if r.data.tags.get("role") == "trial"}
    assert sorted(trial_runs) == list(range(N_TRIALS))  # the dead worker's trial too, written by the launcher
    dead = trial_runs[victim]
    assert (dead.info.status, dead.data.tags["trial_state"], dead.data.tags["storefront.worker"]) == \
        ("FAILED", "FAIL", helper)
    assert dead.data.tags["error"] == f"WorkerDied: no heartbeat for {2 * HEARTBEAT} s: its process died"
    assert "registered storefront-itemcf version" in out


def test_processes_creating_a_fresh_storage_together_all_live(team):
    """The issue's UniqueViolation (pg_type_typname_nsp_index) when two workers create the schema at once."""
    code = ("import sys, optuna; from pipelines.study import study_storage; "
            "s = optuna.create_study(study_name='race', storage=study_storage(sys.argv[1]), load_if_exists=True); "
            "print(len(s.trials))")
    url = team["postgres"].url(team["postgres"].create_database())
    procs = [subprocess.Popen([sys.executable, "-c", code, url], cwd=ROOT, env=team["env"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [(*p.communicate(timeout=180), p.returncode) for p in procs]
    assert [rc for _, _, rc in results] == [0, 0, 0], "\n".join(err[-1500:] for _, err, _ in results)
    assert [out.strip() for out, _, _ in results] == ["0", "0", "0"]  # one empty study, seen by all three
