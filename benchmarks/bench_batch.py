"""Batch scoring: every customer of a 5,000- and a 50,000-customer generated shop through the recommender (k=10)
and churn, with ``storefront batch-score --engine local`` and ``--engine spark`` (``local[*]``).

The models are trained once, on the 5,000-customer shop, with a small budget (``train-itemcf`` and
``train-churn``, 2 trials each), and scored from their logged model URIs. Both shops are generated with the same
parameters but different sizes (seed 42), so the 50k shop's customers C00001..C05000 have ids the recommender knows
(with a history it was not trained on) and the other 45,000 are unknown to it: they get the cold-start answer
(popular with customers like them, from their demographics) — the results table says how many of each. Churn
builds every active customer's features from the scored shop's own tables (the project's feature code), so all
its rows are real work.

Each run is a fresh ``storefront batch-score`` process; the script samples the resident memory of its whole
process tree (the Python driver, Spark's JVM and its Python workers) every 0.2 s and reports the peak of the sum.
rows/s is the command's own figure (scoring and writing, after the model and the input are loaded; for Spark,
after the JVM started); wall time is the whole process.

Writes benchmarks/results/batch.md and .json. Usage: python benchmarks/bench_batch.py [--sizes 5000 50000]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.reporting import machine_info, measured_line, write_results  # noqa: E402

VENV_BIN = Path(sys.executable).parent
SUMMARY = re.compile(r": ([\d,]+) rows for ([\d,]+) requests in ([\d.]+) s \(([\d,]+) rows/s")


def tree_rss_bytes(root: int) -> int:
    """The resident memory of ``root`` and all its descendants (Linux /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid and p not in tree]
        tree.update(children)
        frontier.extend(children)
    total = 0
    for pid in tree:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def run_measured(argv: list[str], env: dict) -> dict:
    """Run ``argv``; wall seconds, peak process-tree RSS (GB), the command's own summary line."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss_bytes(proc.pid))
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{err[-3000:]}")
    match = SUMMARY.search(out)
    if not match:
        raise RuntimeError(f"no summary line in:\n{out[-2000:]}")
    rows, requests, seconds, rate = (float(g.replace(",", "")) for g in match.groups())
    return {"wall_s": round(time.monotonic() - start, 1), "peak_rss_gb": round(peak[0] / 1024**3, 3),
            "rows": int(rows), "requests": int(requests), "scoring_s": seconds, "rows_per_s": rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("--n-trials", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=None,
                        help="the shop (one of --sizes) to train on (default the smallest); results go to "
                             "batch.md, or batch_trained<size>.md for another")
    args = parser.parse_args()
    train_size = args.train_size or min(args.sizes)
    if train_size not in args.sizes:
        parser.error("--train-size must be one of --sizes")
    name = "batch" if train_size == min(args.sizes) else f"batch_trained{train_size}"
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        measure(args, work, train_size, name)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the shops, the tracking store and the outputs


def measure(args, work: Path, train_size: int, name: str) -> None:
    from pipelines import cli
    from pipelines.data.synthetic import generate_shop
    from pipelines.data.tables import write_tables

    home = work / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(STOREFRONT_HOME=str(home), MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}",
               PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    os.environ.update(STOREFRONT_HOME=env["STOREFRONT_HOME"], MLFLOW_TRACKING_URI=env["MLFLOW_TRACKING_URI"])

    shops, known = {}, {}
    for size in args.sizes:
        t = time.monotonic()
        tables, _ = generate_shop(customers=size, seed=42)
        shops[size] = work / f"shop-{size}"
        write_tables(tables, shops[size])
        print(f"generated the {size:,}-customer shop in {time.monotonic() - t:.0f} s", flush=True)
    train_shop = shops[train_size]
    uris, train_s = {}, {}
    for family, command in (("recommender", "train-itemcf"), ("churn", "train-churn")):
        t = time.monotonic()
        result = cli.train_from_args(cli.parse_args([command, "--data-dir", str(train_shop), "--n-trials",
                                                     str(args.n_trials), "--seed", "0"]))
        uris[family], train_s[family] = result.model_uri, round(time.monotonic() - t, 1)
        print(f"trained {family} on the {train_size:,}-customer shop in {train_s[family]} s: "
              f"{result.model_uri}", flush=True)
    trained_customers = set(pd.read_parquet(train_shop / "transactions.parquet")["customer_id"].astype(str))
    for size in args.sizes:
        ids = pd.read_parquet(shops[size] / "customers.parquet")["customer_id"].astype(str)
        known[size] = int(ids.isin(trained_customers).sum())

    rows = []
    for family in ("recommender", "churn"):
        for size in args.sizes:
            for engine in ("local", "spark"):
                out = work / f"out-{family}-{size}-{engine}{'.parquet' if engine == 'local' else ''}"
                argv = [str(VENV_BIN / "storefront"), "batch-score", "--model", uris[family], "--input",
                        str(shops[size]), "--output", str(out), "--engine", engine]
                if family == "recommender":
                    argv += ["-k", "10"]
                figures = run_measured(argv, env)
                rows.append({"family": family, "customers": size, "engine": engine, **figures})
                print(rows[-1], flush=True)
        same = all(pd.read_parquet(work / f"out-{family}-{size}-local.parquet")
                   .equals(pd.read_parquet(work / f"out-{family}-{size}-spark")) for size in args.sizes)
        rows[-1]["spark_equals_local"] = same
        for row in rows:
            if row["family"] == family:
                row["spark_equals_local"] = same

    machine = machine_info()
    lines = ["# Batch scoring benchmark (every customer: recommender top-10 and churn; local and Spark engines)", "",
             measured_line(machine), "Command: `python benchmarks/bench_batch.py" + (f" --train-size {train_size}" if name != "batch" else "") + "`.", "",
             f"Models trained once on the {train_size:,}-customer shop ({args.n_trials} Optuna trials each: "
             f"item-CF {train_s['recommender']} s, churn {train_s['churn']} s) and scored from their logged model "
             "URIs; every shop generated with seed 42 (200 products, 3 years). "
             + "; ".join(f"{s:,}-customer shop: {known[s]:,} customers the recommender was trained on, "
                         f"{s - known[s]:,} unknown to it (cold-start answer)" for s in args.sizes) + ". "
             "Churn scores every customer active in its lookback window, from the scored shop's own tables.", "",
             "Spark: `--master local[*]` (2 cores), one JVM and its Python workers on this machine. rows/s: the "
             "command's scoring and writing time (model and input loaded; for Spark after the JVM started); wall: "
             "the whole process; peak RSS: the sum over the process tree (driver, JVM, Python workers), sampled "
             "every 0.2 s.", "",
             "| family | customers | engine | requests | output rows | scoring (s) | rows/s | wall (s) | peak RSS (GB) "
             "| Spark output equals local |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['family']} | {r['customers']:,} | {r['engine']} | {r['requests']:,} | {r['rows']:,} | "
                     f"{r['scoring_s']:.1f} | {r['rows_per_s']:,.0f} | {r['wall_s']:.1f} | {r['peak_rss_gb']:.2f} | "
                     f"{'yes' if r['spark_equals_local'] else 'NO'} |")
    lines += ["", "Growth from the smallest to the largest shop (x customers -> x scoring time, x peak memory):", ""]
    small, large = min(args.sizes), max(args.sizes)
    growth = {}
    for family in ("recommender", "churn"):
        for engine in ("local", "spark"):
            a = next(r for r in rows if (r["family"], r["customers"], r["engine"]) == (family, small, engine))
            b = next(r for r in rows if (r["family"], r["customers"], r["engine"]) == (family, large, engine))
            growth[f"{family}/{engine}"] = g = {
                "customers": large / small, "rows": b["rows"] / a["rows"],
                "scoring_time": b["scoring_s"] / max(a["scoring_s"], 1e-9),
                "peak_rss": b["peak_rss_gb"] / max(a["peak_rss_gb"], 1e-9)}
            lines.append(f"- {family}, {engine}: x{g['customers']:.0f} customers, x{g['rows']:.1f} output rows -> "
                         f"x{g['scoring_time']:.1f} scoring time, x{g['peak_rss']:.2f} peak memory")
    lines.append("")
    write_results(name, {"machine": machine, "models": uris, "training_s": train_s, "known_customers": known,
                            "runs": rows, "growth": growth}, "\n".join(lines))


if __name__ == "__main__":
    main()
