"""Wall time and peak memory of the main job (the README's first command) with the default budgets.

Runs `/usr/bin/time -v storefront main` in a fresh project home (so the data is generated and the registry
starts empty, as on a fresh machine); with ``--rerun`` a second time on the same home (data reused, new
versions, promotion against the re-scored champion). Prints a table and writes
benchmarks/results/main.md and .json. Usage: python benchmarks/bench_main.py [--quick] [--rerun]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.reporting import machine_info, measured_line, parse_gnu_time, write_results  # noqa: E402  (after the path set-up)
BIN = Path(sys.executable).parent
TARGET_SECONDS = 600


def run_main(home: Path, quick: bool, tracking_uri: str | None = None, extra: tuple[str, ...] = ()) -> dict:
    """``storefront main`` in ``home`` (tracking: ``tracking_uri``, default the home's SQLite store; ``extra``:
    more options, e.g. ``--storage``)."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "STOREFRONT_HOME": str(home),
           "MLFLOW_TRACKING_URI": tracking_uri or f"sqlite:///{home / 'mlflow.db'}"}
    command = ["/usr/bin/time", "-v", str(BIN / "storefront"), "main", *(["--quick"] if quick else []), *extra]
    started = time.monotonic()
    proc = subprocess.run(command, env=env, cwd=home, capture_output=True, text=True)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"main job failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    rss_gb = parse_gnu_time(proc.stderr)["max_rss_gb"]
    summary = proc.stdout[proc.stdout.index("family"):proc.stdout.index("main job finished")].rstrip()
    return {"wall_seconds": round(wall, 1), "max_rss_gb": round(rss_gb, 2), "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the --quick budgets (a smoke run of this script)")
    parser.add_argument("--rerun", action="store_true", help="also time a second run on the same home")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-main-") as tmp:
        home = Path(tmp)
        runs = {"first run (fresh home: generate + train + register + promote)": run_main(home, args.quick)}
        if args.rerun:
            runs["second run (data reused, new versions, promotion)"] = run_main(home, args.quick)
    lines = [
        "# main job benchmark",
        "",
        measured_line(machine_info()),
        f"Command: `python benchmarks/bench_main.py{' --quick' if args.quick else ''}` "
        f"(runs `/usr/bin/time -v storefront main{' --quick' if args.quick else ''}` in a fresh project home"
        f"{', then again on the same home' if args.rerun else ''}).",
        "",
        "| run | wall (s) | max RSS (GB) | target | met |",
        "|---|---:|---:|---|---|",
    ]
    for name, r in runs.items():
        met = "yes" if r["wall_seconds"] < TARGET_SECONDS else "no"
        lines.append(f"| {name} | {r['wall_seconds']} | {r['max_rss_gb']} | < {TARGET_SECONDS} s | {met} |")
    for name, r in runs.items():
        lines += ["", f"Summary printed by the {name.split(' (')[0]}:", "", "```", r["summary"], "```"]
    write_results("main-quick" if args.quick else "main", runs, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
