"""Wall time of the item-CF study on the default shop with 1 and with 2 workers (a shared study, README "Shared
studies").

Generates the default shop (``storefront generate-data``: 5,000 customers, 200 products, 3 years, seed 42) once,
starts a throwaway PostgreSQL 15 (``tests/team/servers.py``) whose fresh databases hold the Optuna storage of each
run, and times ``/usr/bin/time -v storefront train-itemcf --n-trials N --timeout 0 --storage <postgres> --workers W``
for W = 1 and 2, each in a fresh project home (SQLite tracking store there). Reports the command's wall time, the
study's own span (first trial start to last trial end, from the Optuna storage), the trials each worker ran, the
best validation precision@10, and the load average before and after each run (the machine is shared). Writes
benchmarks/results/workers.md and .json. Usage: python benchmarks/bench_workers.py [--n-trials 50]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.reporting import machine_info, measured_line, parse_gnu_time, write_results  # noqa: E402
from tests.team.servers import Postgres  # noqa: E402  (the team tests' throwaway PostgreSQL)

BIN = Path(sys.executable).parent


def load() -> float:
    return round(os.getloadavg()[0], 2)


def run_study(shop: Path, home: Path, storage: str, workers: int, n_trials: int) -> dict:
    import optuna

    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "STOREFRONT_HOME": str(home),
           "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}"}
    command = ["/usr/bin/time", "-v", str(BIN / "storefront"), "train-itemcf", "--data-dir", str(shop),
               "--n-trials", str(n_trials), "--timeout", "0", "--seed", "42", "--storage", storage,
               "--study-name", "bench-workers", "--workers", str(workers)]
    before = load()
    started = time.monotonic()
    proc = subprocess.run(command, env=env, cwd=home, capture_output=True, text=True)
    wall = time.monotonic() - started
    (Path(tempfile.gettempdir()) / f"bench-workers-{workers}.log").write_text(proc.stderr)  # for a look afterwards
    if proc.returncode != 0:
        sys.exit(f"train-itemcf --workers {workers} failed ({proc.returncode}):\n{proc.stderr[-5000:]}")
    joined = [line for line in proc.stderr.splitlines() if "tune-worker:" in line or "joining" in line]
    storage_obj = optuna.storages.RDBStorage(storage)
    study = optuna.load_study(study_name="bench-workers", storage=storage_obj)
    trials = study.trials
    span = (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()
    per_worker = Counter(t.system_attrs.get("storefront.worker", "?") for t in trials)
    result = {"workers": workers, "wall_seconds": round(wall, 1), "study_seconds": round(span, 1),
              "max_rss_gb": parse_gnu_time(proc.stderr)["max_rss_gb"], "n_trials": len(trials),
              "states": dict(Counter(t.state.name for t in trials)),
              "trials_per_worker": sorted(per_worker.values(), reverse=True),
              "best_val_precision_at_10": round(study.best_value, 4), "load_before": before, "load_after": load(),
              "summary": proc.stdout.strip().splitlines()[-1], "workers_said": joined}
    storage_obj.engine.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, default=50,
                        help="the study's total trials (default 50, the command's default budget)")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp, Postgres() as pg:
        tmp = Path(tmp)
        shop = tmp / "shop"
        subprocess.run([str(BIN / "storefront"), "generate-data", "--output-dir", str(shop)], check=True,
                       capture_output=True, env={**os.environ, "STOREFRONT_HOME": str(tmp),
                                                 "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'gen.db'}"})
        for workers in (1, 2):
            home = tmp / f"home-{workers}"
            home.mkdir()
            runs.append(run_study(shop, home, pg.url(pg.create_database()), workers, args.n_trials))
    machine = machine_info()
    one, two = runs
    lines = [
        "# shared study benchmark: item-CF with 1 and 2 workers",
        "",
        measured_line(machine),
        f"Command: `python benchmarks/bench_workers.py --n-trials {args.n_trials}` (runs `/usr/bin/time -v storefront "
        f"train-itemcf --n-trials {args.n_trials} --timeout 0 --storage postgresql+psycopg://... --workers W` on the "
        "default shop, Optuna storage on a throwaway PostgreSQL 15, tracking in a fresh SQLite store).",
        "",
        "| workers | wall (s) | study span (s) | trials | trials per worker | best val precision@10 | max RSS (GB) "
        "| load before -> after |",
        "|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for r in runs:
        lines.append(f"| {r['workers']} | {r['wall_seconds']} | {r['study_seconds']} | {r['n_trials']} "
                     f"| {', '.join(map(str, r['trials_per_worker']))} | {r['best_val_precision_at_10']} "
                     f"| {r['max_rss_gb']} | {r['load_before']} -> {r['load_after']} |")
    speedup = one["wall_seconds"] / two["wall_seconds"]
    study_speedup = one["study_seconds"] / two["study_seconds"]
    busy = max(r["load_before"] for r in runs) > machine["cpus"]
    lines += [
        "",
        f"Speed-up with two workers: {speedup:.2f} on wall time, {study_speedup:.2f} on the study span alone (below 1: "
        "slower; the rest of the wall time is loading the shop, the baseline, the refit, the test scoring and the "
        "registration, which one process does, and the second worker's own loading). Both studies hold exactly the "
        "same number of trials (`--n-trials` is the study's total). An item-CF trial already uses every core "
        "(`models/threads.py`; local workers split them), so on one machine a second worker only pays off when the "
        "machine has cores to spare; workers on other machines bring their own.",
        "The machine's 2 cores were shared with other engineers' jobs: a load average above 2 before a run means "
        "the workers competed with other processes, so these are upper bounds on wall time."
        if busy else "The load average stayed at or below the core count before each run.",
    ]
    for r in runs:
        lines += ["", f"{r['workers']} worker(s): `{r['summary']}`"]
        lines += [f"  the other worker: `{said}`" for said in r["workers_said"] if said.startswith("tune-worker:")]
    write_results("workers", {"machine": machine, "n_trials": args.n_trials, "runs": runs,
                              "speedup_wall": round(speedup, 2), "speedup_study": round(study_speedup, 2)},
                  "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
