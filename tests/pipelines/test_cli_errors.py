"""Every class of failure a user can cause ends with one line naming the problem and a documented exit code
(:mod:`pipelines.errors`); the traceback only with ``-v``. One test per class."""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlflow
import pytest

from pipelines import cli, errors
from pipelines.data.tables import TABLE_NAMES, write_tables

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--customers", "40", "--products", "12", "--years", "1", "--seed", "5"]


def one_line(err: str, command: str) -> str:
    """The message of the single error line that ends ``err`` (and no traceback before it)."""
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"storefront {command}: error: "), err
    return last.split(": error: ", 1)[1]


def run_cli(args: list[str], env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def shop(shop_folder) -> Path:
    return shop_folder(customers=60, products=12, years=1, seed=3)


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` made unwritable for this process: ``chattr +i`` as root (who ignores modes), else mode 555."""
    if os.geteuid() == 0:
        if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
            pytest.skip("running as root without chattr +i: cannot make a folder read-only")
        try:
            yield folder
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)


# --- exit code 4: paths ----------------------------------------------------------------------------------


def test_existing_tables_are_refused_without_overwrite(fresh_mlflow_env, tmp_path, capsys):
    out = tmp_path / "data"
    assert cli.main(["generate-data", *SMALL, "--no-track", "--output-dir", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert cli.main(["generate-data", *SMALL, "--seed", "6", "--no-track", "--output-dir", str(out),
                     "--format", "csv"]) == errors.EXIT_PATH
    message = one_line(capsys.readouterr().err, "generate-data")
    assert message.startswith(f"--output-dir {out}: already holds tables") and "--overwrite" in message
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert cli.main(["generate-data", *SMALL, "--seed", "6", "--no-track", "--output-dir", str(out),
                     "--format", "csv", "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.csv" for n in TABLE_NAMES)


def test_a_folder_with_the_users_files_is_never_touched(fresh_mlflow_env, shop, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "customers.csv").write_text("customer_id\nmy own\n")
    (out / "budget.xlsx").write_bytes(b"PK\x03\x04")
    for extra in ([], ["--overwrite"]):
        assert cli.main(["ingest", "--source-dir", str(shop), "--output-dir", str(out), "--no-track", *extra]) == 4
        message = one_line(capsys.readouterr().err, "ingest")
        assert "holds files that are not storefront tables (budget.xlsx)" in message
    assert sorted(p.name for p in out.iterdir()) == ["budget.xlsx", "customers.csv"]
    assert (out / "customers.csv").read_text() == "customer_id\nmy own\n"


@pytest.mark.parametrize("target, expected", [
    ("a-file", "a-file is a file, not a folder"),
    ("/proc/storefront-out", "cannot write in /proc"),
])
def test_ingest_output_dir_that_is_a_file_or_unwritable(fresh_mlflow_env, shop, tmp_path, capsys, target, expected):
    (tmp_path / "a-file").write_text("x")
    target = str(tmp_path / target) if not target.startswith("/") else target
    assert cli.main(["ingest", "--source-dir", str(shop), "--output-dir", target, "--no-track"]) == 4
    message = one_line(capsys.readouterr().err, "ingest")
    assert message.startswith(f"--output-dir {target}: ") and expected in message
    assert (tmp_path / "a-file").read_text() == "x"


def test_score_churn_output_that_is_a_folder_or_exists(fresh_mlflow_env, shop, tmp_path, capsys):
    (tmp_path / "scores.csv").write_text("mine")
    for output, expected in ((tmp_path, "is a folder, not a file"),
                             (tmp_path / "scores.csv", "already exists; pass --overwrite")):
        assert cli.main(["score-churn", "--model", "storefront-churn", "--data-dir", str(shop),
                         "--output", str(output)]) == 4
        assert expected in one_line(capsys.readouterr().err, "score-churn")
    assert (tmp_path / "scores.csv").read_text() == "mine"


def test_a_read_only_artifact_folder(fresh_mlflow_env, shop, tmp_path, monkeypatch, capsys):
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    monkeypatch.setenv("STOREFRONT_ARTIFACT_ROOT", str(artifacts))
    with read_only(artifacts):
        code = cli.main(["ingest", "--source-dir", str(shop), "--output-dir", str(tmp_path / "out")])
    assert code == errors.EXIT_PATH
    message = one_line(capsys.readouterr().err, "ingest")
    assert message.startswith(f"{artifacts / 'storefront-data'}: "), message
    assert message.endswith(("Operation not permitted", "Permission denied")), message
    client = mlflow.MlflowClient()
    [run] = client.search_runs([client.get_experiment_by_name("storefront-data").experiment_id])
    assert run.info.status == "FAILED"


# --- exit code 2: tables that never went through ingest ------------------------------------------------------


@pytest.mark.parametrize("damage, expected", [
    (lambda tx: tx.assign(amount=tx["amount"].astype(str).where(tx.index != 3, "12,50 EUR")),
     "transactions.csv: column 'amount': non-numeric value; first offending rows: line 5 ('12,50 EUR')"),
    (lambda tx: tx.assign(purchase_date=tx["purchase_date"].astype(str).where(tx.index != 0, "yesterday")),
     "transactions.csv: column 'purchase_date': unparsable date"),
    (None, "transactions.csv: line 1: a NUL byte (\\x00) at byte 0: not a text table"),
])
def test_data_dir_tables_are_checked_with_ingests_rules(fresh_mlflow_env, shop, tmp_path, capsys, damage, expected):
    from pipelines.data.tables import load_tables

    folder = tmp_path / "exported"
    write_tables(load_tables(shop), folder, "csv")
    if damage is None:  # a binary file under a table's name
        (folder / "transactions.csv").write_bytes(bytes(range(256)) * 8)
    else:
        import pandas as pd

        tx = pd.read_csv(folder / "transactions.csv", dtype=str, keep_default_na=False)
        damage(tx).to_csv(folder / "transactions.csv", index=False)
    for command in (["train-churn", "--n-trials", "1"], ["score-churn", "--model", "x", "--output",
                                                         str(tmp_path / "s.csv")]):
        assert cli.main([*command, "--data-dir", str(folder)]) == errors.EXIT_INPUT
        message = one_line(capsys.readouterr().err, command[0])
        assert expected in message and message.endswith(
            "run storefront ingest first (it checks and writes the canonical tables of a shop's own files)")
    assert not (tmp_path / "s.csv").exists()
    assert mlflow.MlflowClient().get_experiment_by_name("storefront-churn") is None  # no run was started


# --- exit codes 130 and 143: interrupted ---------------------------------------------------------------------


def test_sigterm_ends_with_one_line_and_exit_143_and_removes_the_temporary(tmp_path, child_env):
    out = tmp_path / "data"
    env = child_env(STOREFRONT_HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "generate-data", "--no-track",
                             "--output-dir", str(out)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()  # the generator's first progress line: the default shop takes seconds more
        assert first.startswith("["), first + proc.stderr.read()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == errors.EXIT_TERMINATED, err
    assert one_line(err, "generate-data") == "terminated by signal 15 (SIGTERM); a run in progress ends KILLED"
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".data.")]


def test_ctrl_c_exits_130_with_one_line(monkeypatch, capsys):
    from pipelines.data import generate

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(generate, "run", interrupted)
    assert cli.main(["generate-data"]) == errors.EXIT_INTERRUPTED
    assert one_line(capsys.readouterr().err, "generate-data") == "interrupted (Ctrl-C); a run in progress ends KILLED"


# --- exit code 5: tracking ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Refusing(http.server.BaseHTTPRequestHandler):
    def _refuse(self):
        self.send_response(403)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"forbidden: no token")

    do_GET = do_POST = _refuse

    def log_message(self, *args):
        pass


@pytest.mark.e2e  # starts storefront processes (each imports MLflow: seconds)
def test_a_tracking_server_that_is_down_or_refuses(tmp_path, child_env):
    closed = f"http://127.0.0.1:{free_port()}"
    server = http.server.HTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    refusing = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for uri, expected in ((closed, f"tracking server {closed} refused the connection: is it running? "
                                        "(MLFLOW_TRACKING_URI)"),
                              (refusing, f"tracking server {refusing} refused the request with HTTP 403: "
                                         "forbidden: no token")):
            env = child_env(STOREFRONT_HOME=str(tmp_path / "home"), MLFLOW_TRACKING_URI=uri, PYTHONPATH=str(ROOT))
            started = time.monotonic()
            done = run_cli(["generate-data", *SMALL, "--output-dir", str(tmp_path / "data")], env)
            assert done.returncode == errors.EXIT_TRACKING, done.stderr
            assert one_line(done.stderr, "generate-data") == expected
            assert "Retrying" not in done.stderr  # no retry storm
            assert time.monotonic() - started < 60
    finally:
        server.shutdown()
        server.server_close()
    assert not (tmp_path / "data").exists()


# --- exit code 1: a bug ----------------------------------------------------------------------------------


def test_an_unexpected_error_is_one_line_and_its_traceback_needs_verbose(monkeypatch, capsys):
    from pipelines.data import generate

    def broken(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(generate, "run", broken)
    assert cli.main(["generate-data"]) == errors.EXIT_INTERNAL
    assert one_line(capsys.readouterr().err, "generate-data").startswith(
        "unexpected ZeroDivisionError: division by zero (a bug: rerun with `storefront -v ...`")
    assert cli.main(["-v", "generate-data"]) == errors.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.strip().splitlines()[-1].startswith(
        "storefront generate-data: error: unexpected ZeroDivisionError")
