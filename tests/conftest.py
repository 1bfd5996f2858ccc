"""Shared fixtures: an isolated MLflow tracking store and project home for every test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


def _point_mlflow_at(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import mlflow

    home.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{home / 'mlflow.db'}"
    monkeypatch.setenv("STOREFRONT_HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.delenv("STOREFRONT_ARTIFACT_ROOT", raising=False)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return home


@pytest.fixture(scope="session")
def _session_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("storefront-home")


@pytest.fixture
def mlflow_env(_session_home, monkeypatch) -> Path:
    """A tracking store shared by the session's tests (fast); returns the project home folder."""
    import mlflow

    home = _point_mlflow_at(_session_home, monkeypatch)
    yield home
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture
def fresh_mlflow_env(tmp_path, monkeypatch) -> Path:
    """A tracking store and registry of the test's own (for registry and promotion tests)."""
    import mlflow

    home = _point_mlflow_at(tmp_path / "home", monkeypatch)
    yield home
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture
def serve_mlflow_server(tmp_path):
    """A real `mlflow server` on a free loopback port with its own store; yields (url, artifact root)."""
    import socket
    import subprocess
    import sys
    import time

    import requests

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = tmp_path / "server"
    store.mkdir()
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = open(store / "server.log", "w")
    proc = subprocess.Popen(
        [str(Path(bin_dir) / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{store / 'server.db'}",
         "--artifacts-destination", str(store / "artifacts"), "--workers", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError((store / "server.log").read_text()[-3000:])
            try:
                if requests.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError((store / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        yield url, store / "artifacts"
    finally:
        import signal

        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
