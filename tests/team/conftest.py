"""Team-mode fixtures: a real PostgreSQL 15, a real ``mlflow server`` on it, an Optuna storage on it.

The mechanics live in :mod:`tests.team.servers` (importable from anywhere: ``from tests.team.servers import
Postgres, MlflowServer``); these fixtures give every test under ``tests/team/``:

* ``postgres`` (session): one throwaway server for the whole session (:class:`~tests.team.servers.Postgres`);
* ``new_database`` (session): ``new_database(name=None) -> name``, a fresh empty database on it;
* ``mlflow_server`` (module): an ``mlflow server`` whose backend store is a fresh database of its own and whose
  artifacts go to a module temp folder (``mlflow_server.artifacts_destination``), through the server only;
* ``optuna_storage`` (module): ``postgresql+psycopg://...`` of another fresh database on the same server.

A missing ``initdb``/``pg_ctl`` (or ``psycopg``) fails the test with the package to install: never a skip.
"""

from __future__ import annotations

import pytest

from tests.team.servers import MissingTool, MlflowServer, Postgres


@pytest.fixture(scope="session")
def postgres():
    try:
        import psycopg  # noqa: F401  (the `team` extra)
    except ImportError:
        pytest.fail('psycopg is not installed: pip install -e ".[team]" (the team extra) to run the team tests')
    server = Postgres()
    try:
        server.start()
    except MissingTool as exc:
        server.stop()
        pytest.fail(str(exc))
    except Exception:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.fixture(scope="session")
def new_database(postgres):
    """Factory: ``new_database(name=None)`` creates a fresh empty database on the session's server."""
    return postgres.create_database


@pytest.fixture(scope="module")
def mlflow_server(postgres, tmp_path_factory):
    """A real ``mlflow server`` on a fresh PostgreSQL database, with proxied artifacts in a temp folder."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    server = MlflowServer(postgres.url(postgres.create_database()), folder / "artifacts", folder / "server.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def optuna_storage(postgres) -> str:
    """An Optuna storage URL: a fresh database on the session's PostgreSQL server."""
    return postgres.url(postgres.create_database())
