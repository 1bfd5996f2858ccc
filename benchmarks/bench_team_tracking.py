"""The main job on a laptop's SQLite store against the same job through a team's tracking server on PostgreSQL.

Runs `/usr/bin/time -v storefront main --quick` twice on the same small generated shop, each in a fresh project
home: once with the home's SQLite store and in-memory studies (the laptop), once with
``MLFLOW_TRACKING_URI=http://127.0.0.1:<port>`` of a real ``mlflow server`` whose backend store is a throwaway
PostgreSQL 15 (proxied artifacts) and ``--storage postgresql+psycopg://...`` on the same PostgreSQL (the team).
The servers are the ones the team tests start (``tests/team/servers.py``; needs the ``team`` extra and Debian's
postgresql-15). Reports wall time, the client's peak memory and the machine's load; writes
benchmarks/results/team_tracking.md and .json. Usage: python benchmarks/bench_team_tracking.py [--full]
(``--full``: the default budgets and data instead of ``--quick``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.bench_main import run_main  # noqa: E402  (after the path set-up)
from benchmarks.reporting import machine_info, measured_line, write_results  # noqa: E402
from tests.team.servers import MlflowServer, Postgres  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="default budgets and data (default: --quick)")
    args = parser.parse_args()
    quick = not args.full
    runs = {}
    with tempfile.TemporaryDirectory(prefix="bench-team-") as tmp:
        laptop, team = Path(tmp) / "laptop", Path(tmp) / "team"
        laptop.mkdir()
        team.mkdir()
        runs["laptop: SQLite store in the home, in-memory studies"] = run_main(laptop, quick)
        with Postgres() as pg:
            server = MlflowServer(pg.url(pg.create_database("mlflow")), Path(tmp) / "artifacts",
                                  Path(tmp) / "server.log")
            with server:
                storage = pg.url(pg.create_database("optuna"))
                runs["team: mlflow server on PostgreSQL 15, Optuna storage on PostgreSQL"] = run_main(
                    team, quick, tracking_uri=server.url, extra=("--storage", storage))
    flag = "" if quick else " --full"
    lines = [
        "# team tracking benchmark",
        "",
        measured_line(machine_info()),
        f"Command: `python benchmarks/bench_team_tracking.py{flag}` (runs `/usr/bin/time -v storefront main"
        f"{' --quick' if quick else ''}` in a fresh home, against the home's SQLite store and then through a real "
        "`mlflow server` on PostgreSQL with `--storage postgresql+psycopg://...`; the servers' own CPU time is on "
        "the same 2 cores).",
        "",
        "| tracking | wall (s) | client max RSS (GB) |",
        "|---|---:|---:|",
    ]
    for name, r in runs.items():
        lines.append(f"| {name} | {r['wall_seconds']} | {r['max_rss_gb']} |")
    for name, r in runs.items():
        lines += ["", f"Summary printed by the {name.split(':')[0]} run:", "", "```", r["summary"], "```"]
    write_results("team_tracking" if quick else "team_tracking_full", runs, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
