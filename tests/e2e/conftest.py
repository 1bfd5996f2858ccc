"""Real `mlflow models serve` processes for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.team.servers import clean_env, free_port, wait_until_answers

VENV_BIN = str(Path(sys.executable).parent)


class Server:
    """A `mlflow models serve` subprocess on a free loopback port."""

    def __init__(self, model_uri: str, tracking_uri: str, log_path: Path, workers: int = 1):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # no MLflow state inherited from the test process (a leaked MLFLOW_REGISTRY_URI would resolve
        # models:/ URIs in another store)
        env = clean_env(MLFLOW_TRACKING_URI=tracking_uri)
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            ["mlflow", "models", "serve", "-m", model_uri, "-p", str(self.port), "--host", "127.0.0.1",
             "--env-manager", "local", "-w", str(workers)],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.log_path = log_path

    def wait(self, timeout: float = 90) -> "Server":
        wait_until_answers(self.proc, f"{self.url}/ping", lambda: self.log_path.read_text()[-3000:], timeout,
                           "server")
        return self

    def invoke(self, payload, raw: str | None = None) -> requests.Response:
        if raw is not None:
            return requests.post(f"{self.url}/invocations", data=raw,
                                 headers={"Content-Type": "application/json"}, timeout=30)
        return requests.post(f"{self.url}/invocations", json=payload, timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
        self.log.close()


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    """Factory: ``serve(model_uri, tracking_uri)`` starts a server and returns it once /ping answers. Within a
    module, the same arguments give the same running server (the fuzz tests reuse the servers of the others)."""
    servers: dict[tuple, Server] = {}

    def start(model_uri: str, tracking_uri: str, workers: int = 1) -> Server:
        key = (model_uri, tracking_uri, workers)
        running = servers.get(key)
        if running is not None and running.proc.poll() is None:
            return running
        log = tmp_path_factory.mktemp("serve") / "server.log"
        server = Server(model_uri, tracking_uri, log, workers)
        servers[key] = server
        return server.wait()

    yield start
    for server in servers.values():
        server.stop()


MAIN_JOB_MODELS = ("storefront-itemcf", "storefront-svdpp", "storefront-churn", "storefront-sarima",
                   "storefront-recommender")


def run_main_job(home: Path, cwd: Path, child_env) -> subprocess.CompletedProcess:
    """``storefront main --quick`` as a user runs it: a subprocess, from another folder, with its own home."""
    env = child_env(STOREFRONT_HOME=str(home), MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}")
    return subprocess.run([str(Path(VENV_BIN) / "storefront"), "main", "--quick"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="session")
def main_job(tmp_path_factory, session_child_env):
    """The project home after two runs of the main job: (home, tracking uri, first run, second run, aliases after
    the first run). Shared by the main-job, serving and UI tests."""
    import mlflow

    home = tmp_path_factory.mktemp("main-home")
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    uri = f"sqlite:///{home / 'mlflow.db'}"
    first = run_main_job(home, elsewhere, session_child_env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-5000:]
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    after_first = {name: {alias: str(v) for alias, v in client.get_registered_model(name).aliases.items()}
                   for name in MAIN_JOB_MODELS}
    second = run_main_job(home, elsewhere, session_child_env)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-5000:]
    return home, uri, first, second, after_first
