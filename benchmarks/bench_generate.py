"""Benchmark ``storefront generate-data``: wall time and peak memory at the default size and at ~1M transactions.

Runs the command as a user would, ``/usr/bin/time -v python -m pipelines.cli generate-data --no-track ...``,
in a fresh process per size, writing Parquet into a temporary folder. Reports the process's wall time and
maximum resident set size (from GNU time), the time the generator itself took to generate and write the
tables (from the command's progress lines; the rest is interpreter start-up and imports), and the row counts.
Writes ``benchmarks/results/generate.md`` and ``benchmarks/results/generate.json``.

Targets: default size (5,000 customers x 3 years, ~100,000 transactions) under 20 s; ~1,000,000 transactions
(50,000 customers) under 3 minutes with a peak RSS under 4 GB.

    python benchmarks/bench_generate.py [--sizes 5000 50000] [--years 3] [--seed 42]

GNU time is needed (``apt-get install -y time`` on Debian/Ubuntu).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.reporting import machine_info, measured_line, parse_gnu_time, write_results  # noqa: E402  (after the path set-up)
TIME = "/usr/bin/time"
TARGETS = {5000: {"seconds": 20.0, "rss_gb": 4.0}, 50000: {"seconds": 180.0, "rss_gb": 4.0}}
TABLES = ("customers", "products", "transactions", "events")


def run_once(customers: int, years: int, seed: int, workdir: Path) -> dict:
    out = workdir / f"c{customers}"
    cmd = [
        TIME, "-v", sys.executable, "-m", "pipelines.cli", "generate-data", "--no-track",
        "--customers", str(customers), "--years", str(years), "--seed", str(seed),
        "--output-dir", str(out), "--format", "parquet",
    ]  # fmt: skip
    env = {**os.environ, "STOREFRONT_HOME": str(workdir / "home")}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    result = {"customers": customers, "years": years, "seed": seed, **parse_gnu_time(proc.stderr)}
    stages = re.findall(r"^\[\s*([\d.]+)s\] (.*)$", proc.stdout, flags=re.M)
    result["generate_and_write_s"] = float(stages[-1][0]) if stages else None
    result["startup_s"] = round(result["wall_s"] - (result["generate_and_write_s"] or 0.0), 2)
    result["stages"] = {message: float(seconds) for seconds, message in stages}
    result["rows"] = {name: pq.ParquetFile(out / f"{name}.parquet").metadata.num_rows for name in TABLES}
    result["bytes_on_disk"] = sum((out / f"{name}.parquet").stat().st_size for name in TABLES)
    target = TARGETS.get(customers)
    if target:
        result["target"] = target
        result["meets_target"] = result["wall_s"] < target["seconds"] and result["max_rss_gb"] < target["rss_gb"]
    shutil.rmtree(out, ignore_errors=True)
    return result


def markdown(results: list[dict], machine: dict) -> str:
    lines = [
        "# generate-data benchmark",
        "",
        measured_line(machine),
        "Command: `/usr/bin/time -v python -m pipelines.cli generate-data --no-track --customers N "
        "--format parquet` (fresh process per row).",
        "`generate+write` is the generator's own time (generate, write Parquet, digest) from its progress lines;",
        "the rest of the wall time is interpreter start-up and the CLI's imports.",
        "",
        "| customers | years | transactions | events | wall (s) | generate+write (s) | max RSS (GB) | target | met |",
        "|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        target = r.get("target")
        target_text = f"< {target['seconds']:.0f} s, < {target['rss_gb']:.0f} GB" if target else ""
        met = {True: "yes", False: "NO"}.get(r.get("meets_target"), "")
        lines.append(
            f"| {r['customers']:,} | {r['years']} | {r['rows']['transactions']:,} | {r['rows']['events']:,} "
            f"| {r['wall_s']:.1f} | {r['generate_and_write_s']:.1f} | {r['max_rss_gb']:.2f} | {target_text} | {met} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000], help="customer counts to run")
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if not Path(TIME).exists():
        print(f"{TIME} (GNU time) is missing: install it with `apt-get install -y time`", file=sys.stderr)
        return 1
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        for customers in args.sizes:
            print(f"generate-data --customers {customers} --years {args.years} ...", flush=True)
            results.append(run_once(customers, args.years, args.seed, Path(tmp)))
    machine = machine_info()
    write_results("generate", {"machine": machine, "results": results}, markdown(results, machine))
    return 0 if all(r.get("meets_target", True) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
