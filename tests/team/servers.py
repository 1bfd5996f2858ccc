"""Real servers for the team-mode tests: a throwaway PostgreSQL 15 and an ``mlflow server`` on top of it.

Plain functions and two small classes, importable from any test module (``from tests.team.servers import
Postgres, MlflowServer``; the fixtures of ``tests/team/conftest.py`` wrap them):

* :class:`Postgres`: ``initdb`` + ``pg_ctl`` into a fresh temporary folder, listening on a free loopback port only,
  trust authentication for 127.0.0.1 (and the server's own socket folder), no fsync (a test server). ``initdb``
  refuses to run as root: as root (CI) every PostgreSQL command runs as the ``postgres`` user through
  ``runuser -u postgres --`` and the folder is handed to that user; otherwise as the current user.
  :meth:`Postgres.create_database` makes a fresh database and :meth:`Postgres.url` the SQLAlchemy / Optuna URL
  (``postgresql+psycopg://postgres@127.0.0.1:<port>/<db>``). Missing binaries raise :class:`MissingTool` naming
  the Debian package: the fixtures turn it into a test failure, never a skip.
* :class:`MlflowServer`: ``mlflow server --backend-store-uri <url> --artifacts-destination <folder>`` on a free
  loopback port (proxied artifacts: clients upload and download through the server, never through its disk),
  up once ``/health`` answers; its log is kept and quoted in every failure message.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import requests

VENV_BIN = Path(sys.executable).parent
PG_BIN = Path(os.environ.get("STOREFRONT_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_PACKAGE = "postgresql-15"  # the Debian package holding initdb and pg_ctl (`apt-get install postgresql`)
PG_USER = "postgres"  # the OS user the server runs as under root, and the database superuser's name
DRIVER = "postgresql+psycopg"  # psycopg 3, the `team` extra (MLflow and Optuna both read this URL)
_MLFLOW_STATE_PREFIX = "MLFLOW_"


class MissingTool(RuntimeError):
    """A program the team tests drive for real is not installed (the message names the Debian package)."""


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_tool(name: str) -> Path:
    """The path of a PostgreSQL 15 server program (``initdb``, ``pg_ctl``); :class:`MissingTool` if absent."""
    path = PG_BIN / name
    if not os.access(path, os.X_OK):
        raise MissingTool(f"{path} not found: install the Debian package {PG_PACKAGE} "
                          f"(`apt-get install postgresql`; .ci/run does it) to run the team tests")
    return path


def clean_env(**overrides: str) -> dict[str, str]:
    """The environment for a server or client subprocess: no inherited ``MLFLOW_*`` state, the venv's bin first
    on PATH (``mlflow server`` and ``mlflow models serve`` start ``uvicorn`` by name)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_MLFLOW_STATE_PREFIX)}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    env.update(overrides)
    return env


def wait_until_answers(proc: subprocess.Popen, url: str, log: Callable[[], str], timeout: float, what: str) -> None:
    """Wait until ``url`` answers 200; a process that exits or a timeout raises with the end of its ``log()``."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log()}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not up after {timeout}s:\n{log()}")
        time.sleep(0.3)


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError as exc:
        return f"(no log: {exc})"


class Postgres:
    """A throwaway PostgreSQL 15 server in a temporary folder (see the module docstring).

    ``Postgres().start()`` ... ``stop()``; or ``with Postgres() as pg:``.
    """

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.as_root = os.geteuid() == 0
        self.folder: Path | None = None
        self._names = itertools.count(1)

    # -- lifecycle ---------------------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        assert self.folder is not None, "Postgres.start() first"
        return self.folder / "data"

    @property
    def log_path(self) -> Path:
        assert self.folder is not None, "Postgres.start() first"
        return self.folder / "postgres.log"

    def _command(self, *argv: str | Path) -> list[str]:
        prefix = ["runuser", "-u", PG_USER, "--"] if self.as_root else []
        return [*prefix, *map(str, argv)]

    def _run(self, *argv: str | Path, timeout: float = 120) -> subprocess.CompletedProcess:
        done = subprocess.run(self._command(*argv), cwd=self.folder, capture_output=True, text=True,
                              timeout=timeout, env={k: v for k, v in os.environ.items() if not k.startswith("PG")})
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, argv))} failed ({done.returncode}):\n{done.stdout[-2000:]}"
                               f"{done.stderr[-2000:]}\n{_tail(self.log_path) if self.folder else ''}")
        return done

    def start(self) -> "Postgres":
        initdb, pg_ctl = pg_tool("initdb"), pg_tool("pg_ctl")
        if self.as_root and shutil.which("runuser") is None:
            raise MissingTool("runuser not found (Debian package util-linux): needed to run PostgreSQL as "
                              f"the {PG_USER} user under root")
        # not under pytest's tmp_path: its parents are private to root, and the server may run as `postgres`
        self.folder = Path(tempfile.mkdtemp(prefix="storefront-pg-"))
        if self.as_root:
            shutil.chown(self.folder, PG_USER, PG_USER)
        self._run(initdb, "-D", self.data_dir, "-U", PG_USER, "--auth=trust", "-E", "UTF8", "--locale=C",
                  "--no-sync")
        (self.data_dir / "pg_hba.conf").write_text(
            "# storefront-ml team tests: trust on loopback only\n"
            "local all all trust\n"
            "host all all 127.0.0.1/32 trust\n")
        options = (f"-p {self.port} -c listen_addresses={self.host} -c unix_socket_directories={self.folder} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run(pg_ctl, "-D", self.data_dir, "-l", self.log_path, "-o", options, "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        """``pg_ctl stop -m fast``, then remove the folder."""
        if self.folder is None:
            return
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self._run(pg_tool("pg_ctl"), "-D", self.data_dir, "-m", "fast", "-w", "stop", timeout=60)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> "Postgres":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- databases ---------------------------------------------------------------------------------------------
    def url(self, database: str, driver: str = DRIVER) -> str:
        """``postgresql+psycopg://postgres@127.0.0.1:<port>/<database>`` (MLflow's backend store, Optuna's
        ``--storage``); ``driver="postgresql"`` for a plain libpq URL."""
        return f"{driver}://{PG_USER}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres"):
        """A psycopg connection (autocommit) to ``database``."""
        import psycopg

        return psycopg.connect(host=self.host, port=self.port, user=PG_USER, dbname=database, autocommit=True)

    def create_database(self, name: str | None = None) -> str:
        """Create a fresh, empty database (``name``, default ``db_<n>``) and return its name."""
        name = name or f"db_{next(self._names)}"
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise ValueError(f"database name {name!r}: use lower-case letters, digits and _")
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def databases(self) -> list[str]:
        with self.connect() as conn:
            return [row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate")]


def open_optuna_storage(url: str):
    """An Optuna ``RDBStorage`` of ``url`` for a test process that only reads or writes a little: no connection
    pool, so no connection outlives its use (pooled psycopg connections left to the garbage collector raise
    ``ResourceWarning``, an error under this project's pytest settings)."""
    import optuna
    from sqlalchemy.pool import NullPool

    return optuna.storages.RDBStorage(url, engine_kwargs={"poolclass": NullPool})


class MlflowServer:
    """A real ``mlflow server`` with a database backend store and proxied artifacts (see the module docstring)."""

    def __init__(self, backend_store_uri: str, artifacts_destination: Path | str, log_path: Path,
                 port: int | None = None, extra_args: tuple[str, ...] = ()):
        self.backend_store_uri = backend_store_uri
        self.artifacts_destination = artifacts_destination
        self.log_path = Path(log_path)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_args = tuple(extra_args)
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self, timeout: float = 180) -> "MlflowServer":
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "mlflow"), "server", "--backend-store-uri", self.backend_store_uri,
             "--artifacts-destination", str(self.artifacts_destination), "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "1", *self.extra_args],
            env=clean_env(), stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until_answers(self.proc, f"{self.url}/health", self.log, timeout, "mlflow server")
        except TimeoutError:
            self.stop()
            raise
        return self

    def log(self, chars: int = 4000) -> str:
        """The end of the server's log (for failure messages)."""
        if self._log is not None and not self._log.closed:
            self._log.flush()
        return _tail(self.log_path, chars)

    def client(self):
        """An ``MlflowClient`` of this server (tracking and registry)."""
        import mlflow

        return mlflow.MlflowClient(tracking_uri=self.url, registry_uri=self.url)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> "MlflowServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
