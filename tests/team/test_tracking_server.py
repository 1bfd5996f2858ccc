"""Team mode for real: the main job, a promotion, a rollback and a served champion through an ``mlflow server``
whose backend store is PostgreSQL 15, with Optuna's studies in another database of the same PostgreSQL.

One module-scoped run, as a team member would type it (subprocesses started from another folder, with their own
project home, ``MLFLOW_TRACKING_URI=http://127.0.0.1:<port>``):

1. ``storefront main --quick --storage postgresql+psycopg://...``: a small generated shop, every family of the
   main job trained, registered (the version source is the logged model, which a server accepts only with its
   ``model_id``) and promoted, the recommender slot filled;
2. ``storefront train-itemcf`` once more (a second version of ``storefront-itemcf``), ``storefront promote`` (which
   re-scores both versions on the challenger's held-out data, read back through the server) and ``storefront
   rollback``;
3. ``mlflow models serve -m models:/storefront-recommender@champion`` against the server, called over HTTP.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest

from tests.e2e.conftest import MAIN_JOB_MODELS, Server
from tests.team.servers import VENV_BIN, clean_env
from tests.team.servers import open_optuna_storage as open_storage

pytestmark = pytest.mark.e2e

FAMILY_EXPERIMENTS = ("storefront-itemcf", "storefront-svdpp", "storefront-churn", "storefront-sarima")


def _storefront(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "storefront"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)


def _model_id(version) -> str:
    return version.source.removeprefix("models:/")


def _ok(done: subprocess.CompletedProcess, server) -> subprocess.CompletedProcess:
    assert done.returncode == 0, (f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}\n"
                                  f"--- mlflow server log ---\n{server.log(3000)}")
    return done


@pytest.fixture(scope="module")
def team(mlflow_server, optuna_storage, tmp_path_factory):
    """Runs steps 1 and 2 of the module docstring; returns what the tests look at."""
    home = tmp_path_factory.mktemp("team-home")
    elsewhere = tmp_path_factory.mktemp("team-cwd")
    data = tmp_path_factory.mktemp("team-shop") / "shop"
    env = clean_env(MLFLOW_TRACKING_URI=mlflow_server.url, STOREFRONT_HOME=str(home))
    started = time.monotonic()
    main = _ok(_storefront(["main", "--quick", "--data-dir", str(data), "--storage", optuna_storage], elsewhere, env),
               mlflow_server)
    client = mlflow_server.client()
    after_main = {name: {a: str(v) for a, v in client.get_registered_model(name).aliases.items()}
                  for name in MAIN_JOB_MODELS}
    second = _ok(_storefront(["train-itemcf", "--data-dir", str(data), "--n-trials", "2", "--seed", "7",
                              "--storage", optuna_storage, "--study-name", "itemcf-second"], elsewhere, env),
                 mlflow_server)
    promote = _ok(_storefront(["promote", "--model", "itemcf"], elsewhere, env), mlflow_server)
    after_promote = {a: str(v) for a, v in client.get_registered_model("storefront-itemcf").aliases.items()}
    steps = {"main": main, "second": second, "promote": promote}
    if after_promote["champion"] == "1":  # the re-scored champion held: make version 2 champion to roll it back
        steps["force"] = _ok(_storefront(["promote", "--model", "itemcf", "--force"], elsewhere, env), mlflow_server)
    steps["rollback"] = _ok(_storefront(["rollback", "--model", "itemcf"], elsewhere, env), mlflow_server)
    return dict(home=home, data=data, client=client, after_main=after_main, after_promote=after_promote,
                steps=steps, seconds=time.monotonic() - started)


def test_main_job_trains_registers_and_promotes_every_family_through_the_server(team, mlflow_server):
    client, out = team["client"], team["steps"]["main"].stdout
    for family in ("itemcf", "svdpp", "churn", "sarima", "recommender"):
        assert f"\n{family} " in out, out
    # every registered winner of the first run is champion, with its tags, linked to its logged model
    assert all(aliases.get("champion") == "1" for aliases in team["after_main"].values()), team["after_main"]
    for name in MAIN_JOB_MODELS:
        version = client.get_model_version(name, "1")
        assert version.status == "READY" and version.tags["gate_verdict"] == "passed", name
        # the source is the run's logged model, and the logged model lists the version once (the REST API does not
        # return a version's model_id: MLflow's proto has no field for it)
        assert version.source.startswith("models:/m-"), version.source
        logged = client.get_logged_model(_model_id(version))
        assert logged.source_run_id == version.run_id
        listed = json.loads(logged.tags["mlflow.modelVersions"])
        assert [v for v in listed if v["name"] == name] == [{"name": name, "version": 1}], listed
        assert client.get_run(version.run_id).info.status == "FINISHED"
    # the summary points at the server's own UI, not at `mlflow ui --backend-store-uri http://...`
    assert f"open the tracking server's UI at {mlflow_server.url}" in out
    assert "mlflow ui --backend-store-uri" not in out
    assert f"{mlflow_server.url}/#/models?workflowType=machine_learning" in out


def test_runs_and_models_live_on_the_server_and_artifacts_in_its_destination(team, mlflow_server):
    client, destination = team["client"], mlflow_server.artifacts_destination
    for name in MAIN_JOB_MODELS:
        version = client.get_model_version(name, "1")
        run = client.get_run(version.run_id)
        assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri  # proxied
        logged = client.get_logged_model(_model_id(version))
        assert logged.artifact_location.startswith("mlflow-artifacts:"), logged.artifact_location
        folder = destination / logged.artifact_location.removeprefix("mlflow-artifacts:").lstrip("/")
        assert (folder / "MLmodel").is_file(), (name, folder)
        # the held-out data promotion re-scores on went to the server too
        assert client.list_artifacts(version.run_id, "holdout"), name
    # nothing went to the client's project home: no local store, no local artifacts
    home = team["home"]
    assert not (home / "mlflow.db").exists() and not (home / "mlartifacts").exists()
    assert not list(team["data"].parent.glob("mlruns"))


def test_every_study_is_stored_in_the_postgres_optuna_storage(team, optuna_storage):
    client, storage = team["client"], open_storage(optuna_storage)
    stored = {s.study_name: s for s in optuna.get_all_study_summaries(storage)}
    for experiment in FAMILY_EXPERIMENTS:
        exp = client.get_experiment_by_name(experiment)
        runs = client.search_runs([exp.experiment_id], "params.study_name != ''")
        names = {r.data.params["study_name"] for r in runs}
        assert names and names <= set(stored), (experiment, names, sorted(stored))
        for run in runs:  # the parent run names the storage, its credentials redacted
            assert run.data.params["storage"] == f"postgresql+psycopg://***@{optuna_storage.split('@', 1)[1]}"
        for study in names:
            complete = [t for t in optuna.load_study(study_name=study, storage=storage).trials
                        if t.state == optuna.trial.TrialState.COMPLETE]
            assert complete, study
    assert len(optuna.load_study(study_name="itemcf-second", storage=storage).trials) == 2


def test_promote_and_rollback_move_aliases_on_the_server(team):
    client, steps = team["client"], team["steps"]
    assert "registered storefront-itemcf version 2 as challenger" in steps["second"].stdout + steps["second"].stderr
    # promote re-scored champion v1 and challenger v2 on v2's held-out data (downloaded through the server)
    verdict = client.get_model_version("storefront-itemcf", "2").tags["promotion_verdict"]
    assert ("promoted" in verdict) == (team["after_promote"]["champion"] == "2"), verdict
    assert "champion v1" in verdict, verdict
    assert "storefront-itemcf: " in steps["promote"].stdout
    # after the rollback version 1 is champion again; version 2 stays registered, marked rolled back
    model = client.get_registered_model("storefront-itemcf")
    assert {a: str(v) for a, v in model.aliases.items()} == {"champion": "1", "challenger": "2"}
    assert client.get_model_version("storefront-itemcf", "2").tags["rolled_back"] == "true"
    assert client.get_model_version("storefront-itemcf", "2").tags["previous_champion"] == "1"
    history = [model.tags[k] for k in sorted(k for k in model.tags if k.startswith("history."))]
    assert "rolled back champion from v2 to v1" in history[-1], history
    assert "champion is version 1 again" in steps["rollback"].stdout


def test_champion_served_from_the_tracking_server(team, mlflow_server, tmp_path):
    customers = pd.read_parquet(team["data"] / "customers.parquet")["customer_id"].astype(str)
    server = Server("models:/storefront-recommender@champion", mlflow_server.url, tmp_path / "serve.log")
    try:
        server.wait(timeout=180)
        answer = server.invoke({"dataframe_records": [{"customer_id": customers.iloc[0]}], "params": {"k": 4}})
        assert answer.status_code == 200, answer.text
        rows = pd.DataFrame(answer.json()["predictions"])
        assert list(rows.columns) == ["customer_id", "rank", "product_id", "score", "reason"]
        assert rows["rank"].tolist() == [1, 2, 3, 4] and (rows["customer_id"] == customers.iloc[0]).all()
        assert rows["product_id"].is_unique and rows["score"].is_monotonic_decreasing
        bad = server.invoke({"dataframe_records": [{"customer_id": customers.iloc[0]}], "params": {"k": 500}})
        assert bad.status_code == 400 and "param 'k'" in bad.json()["message"]
    finally:
        server.stop()
