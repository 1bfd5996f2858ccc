"""The team fixtures start what they say: a loopback-only PostgreSQL with fresh databases, an ``mlflow server`` on
it whose artifacts go through the server, and an Optuna storage on the same PostgreSQL."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.e2e


def test_postgres_is_loopback_only_and_gives_fresh_databases(postgres, new_database):
    first, second = new_database(), new_database()
    assert first != second and {first, second} <= set(postgres.databases())
    with postgres.connect(first) as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (1)")
        assert conn.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
        assert conn.execute("SHOW server_version").fetchone()[0].startswith("15.")
    with postgres.connect(second) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 't'").fetchone()[0] == 0
    if os.geteuid() == 0:  # initdb refuses root: the server runs as the postgres user
        import pwd

        assert pwd.getpwuid(postgres.data_dir.stat().st_uid).pw_name == "postgres"


def test_mlflow_server_stores_runs_in_postgres_and_artifacts_through_the_server(mlflow_server, postgres, tmp_path):
    client = mlflow_server.client()
    exp = client.create_experiment("fixture-check")
    run = client.create_run(exp)
    client.log_metric(run.info.run_id, "m", 0.5)
    (tmp_path / "note.txt").write_text("through the server")
    client.log_artifact(run.info.run_id, str(tmp_path / "note.txt"))
    # the run's artifacts are proxied: the client never sees the server's folder
    assert client.get_run(run.info.run_id).info.artifact_uri.startswith("mlflow-artifacts:")
    stored = list(mlflow_server.artifacts_destination.rglob("note.txt"))
    assert len(stored) == 1 and stored[0].read_text() == "through the server"
    # and the run itself is a row of the server's PostgreSQL database
    database = mlflow_server.backend_store_uri.rsplit("/", 1)[1]
    with postgres.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM runs WHERE run_uuid = %s", (run.info.run_id,)).fetchone()[0] == 1


def test_optuna_storage_is_a_database_on_the_same_server(optuna_storage, postgres):
    import optuna

    from tests.team.servers import open_optuna_storage as open_storage

    assert optuna_storage.startswith(f"postgresql+psycopg://postgres@127.0.0.1:{postgres.port}/")
    storage = open_storage(optuna_storage)
    study = optuna.create_study(study_name="s", storage=storage, sampler=optuna.samplers.RandomSampler(0))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    again = optuna.load_study(study_name="s", storage=open_storage(optuna_storage))
    assert len(again.trials) == 3 and again.best_value == study.best_value
    # a plain postgresql:// URL reaches the same study through psycopg 3 (SQLAlchemy 2.1's default driver; README)
    plain = optuna_storage.replace("postgresql+psycopg://", "postgresql://")
    assert len(optuna.load_study(study_name="s", storage=open_storage(plain)).trials) == 3
