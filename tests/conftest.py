"""Shared fixtures: an isolated MLflow tracking store and project home for every test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


# MLflow exports what the test process set (``set_registry_uri`` writes MLFLOW_REGISTRY_URI, ``set_experiment``
# MLFLOW_EXPERIMENT_ID): a child process must not inherit a store or experiment of another test.
_MLFLOW_STATE = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME",
                 "MLFLOW_RUN_ID")


def child_env(**overrides: str) -> dict[str, str]:
    """The environment for a subprocess: no inherited MLflow state, the venv's bin first on PATH."""
    import sys

    env = {k: v for k, v in os.environ.items() if k not in _MLFLOW_STATE}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env.update(overrides)
    return env


@pytest.fixture(name="child_env")
def child_env_fixture():
    """:func:`child_env` for tests: ``child_env(MLFLOW_TRACKING_URI=..., STOREFRONT_HOME=...)``."""
    return child_env


@pytest.fixture(scope="module")
def module_child_env():
    """:func:`child_env` for module-scoped fixtures."""
    return child_env


@pytest.fixture(scope="session")
def session_child_env():
    """:func:`child_env` for session-scoped fixtures."""
    return child_env


def _point_mlflow_at(home: Path, monkeypatch: pytest.MonkeyPatch, template: Path | None = None) -> Path:
    import shutil

    import mlflow

    home.mkdir(parents=True, exist_ok=True)
    db = home / "mlflow.db"
    if template is not None and not db.exists():
        shutil.copyfile(template, db)  # an empty, migrated store: seconds saved per test
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("STOREFRONT_HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.delenv("STOREFRONT_ARTIFACT_ROOT", raising=False)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return home


@pytest.fixture(scope="session")
def _empty_store(tmp_path_factory) -> Path:
    """An empty MLflow SQLite store, created (and migrated) once per session; tests get copies of it, since
    creating one runs MLflow's migrations (2-4 s). Made from the same working directory as a store the test
    would create, so its Default experiment's artifact location is the same."""
    from mlflow.tracking import MlflowClient

    db = tmp_path_factory.mktemp("empty-store") / "mlflow.db"
    client = MlflowClient(f"sqlite:///{db}", f"sqlite:///{db}")
    client.search_experiments()
    client.search_registered_models()
    return db


@pytest.fixture(scope="session")
def _session_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("storefront-home")


@pytest.fixture(scope="session")
def shop_folder(tmp_path_factory):
    """Factory: ``shop_folder(customers, products, years, seed)`` -> a folder with that generated shop's tables.

    Each shop is generated and written once per session (tests only read it).
    """
    from pipelines.data.synthetic import generate_shop
    from pipelines.data.tables import write_tables

    made: dict[tuple[int, int, int, int], Path] = {}

    def make(customers: int, products: int, years: int, seed: int) -> Path:
        key = (customers, products, years, seed)
        if key not in made:
            tables, _ = generate_shop(customers=customers, products=products, years=years, seed=seed)
            folder = tmp_path_factory.mktemp(f"shop-{customers}-{products}-{years}-{seed}")
            write_tables(tables, folder)
            made[key] = folder
        return made[key]

    return make


@pytest.fixture(scope="module")
def tracking_home(_session_home) -> Path:
    """The session's tracking store for a whole module (module-scoped fixtures that train need it)."""
    import mlflow

    with pytest.MonkeyPatch.context() as mp:
        yield _point_mlflow_at(_session_home, mp)
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture
def mlflow_env(_session_home, monkeypatch) -> Path:
    """A tracking store shared by the session's tests (fast); returns the project home folder."""
    import mlflow

    home = _point_mlflow_at(_session_home, monkeypatch)
    yield home
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture
def fresh_mlflow_env(tmp_path, monkeypatch, _empty_store) -> Path:
    """A tracking store and registry of the test's own (for registry and promotion tests)."""
    import mlflow

    home = _point_mlflow_at(tmp_path / "home", monkeypatch, _empty_store)
    yield home
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture
def storeless_mlflow_env(tmp_path, monkeypatch) -> Path:
    """As :func:`fresh_mlflow_env`, but the store's file does not exist yet: for tests that check that a
    command wrote nothing to it (``--no-track``, refused arguments)."""
    import mlflow

    yield _point_mlflow_at(tmp_path / "home", monkeypatch)
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture
def serve_mlflow_server(tmp_path):
    """A real `mlflow server` on a free loopback port with its own SQLite store; yields (url, artifact root).
    (:class:`tests.team.servers.MlflowServer`; the team tests put the same server on PostgreSQL.)"""
    from tests.team.servers import MlflowServer

    store = tmp_path / "server"
    store.mkdir()
    with MlflowServer(f"sqlite:///{store / 'server.db'}", store / "artifacts", store / "server.log") as server:
        yield server.url, store / "artifacts"
