"""The main job at growing shop sizes: per stage wall time, trials completed, peak memory and test metric.

For each size (``--sizes``, customers; default 5000,50000,200000: about 100k, 1M and 4M transactions) it generates
a shop (``storefront generate-data --customers N``, timed as the ``generate`` stage) and runs ``/usr/bin/time -v
storefront main --data-dir <shop>`` with the default budgets in a fresh project home. Per stage it reports the wall
time and the peak memory so far (the main job's ``stages:`` line: its process and their children together, sampled;
one process runs every family, so a stage's figure is the peak up to its end), the trials completed (SARIMA: the fewest of its series), why the study
stopped, the customers the trials used (pipelines/budget.py), the sample's ranking agreement with the check, and
the test metric; then the growth exponent ``log(t2/t1) / log(n2/n1)`` of time and memory between sizes, and the
issue's targets. Writes benchmarks/results/scale.md and .json.

Usage: python benchmarks/bench_scale.py [--sizes 5000,50000] [--name scale] [--render]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.reporting import machine_info, measured_line, parse_gnu_time, write_results  # noqa: E402
BIN = Path(sys.executable).parent
FAMILIES = ("svdpp", "itemcf", "churn", "sarima")
METRICS = {"svdpp": "precision_at_10", "itemcf": "precision_at_10", "churn": "auc", "sarima": "mape"}
# The targets: (minutes, GB) of the whole job per size, and the 50k test metrics not to fall below.
TARGETS = {5000: (3.6, None), 50000: (10.0, 3.0), 200000: (30.0, 10.0)}
FLOOR_50K = {"itemcf": 0.0537, "svdpp": 0.0470, "churn": 0.857, "sarima": 0.029}
MIN_TRIALS = 10


def environment(home: Path) -> dict:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "STOREFRONT_HOME": str(home),
            "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}"}


def run_size(customers: int, root: Path) -> dict:
    home = root / f"home-{customers}"
    home.mkdir()
    env = environment(home)
    shop = root / f"shop-{customers}"
    started = time.monotonic()
    subprocess.run([str(BIN / "storefront"), "generate-data", "--customers", str(customers), "--output-dir", str(shop)],
                   env=env, cwd=home, check=True, capture_output=True, text=True)
    generate_s = time.monotonic() - started
    print(f"{customers} customers: generated in {generate_s:.0f} s; running the main job", flush=True)
    started = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-v", str(BIN / "storefront"), "main", "--data-dir", str(shop)], env=env,
                          cwd=home, capture_output=True, text=True)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"main job at {customers} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    stages = {m.group(1): {"wall_s": float(m.group(2)), "peak_gb_so_far": float(m.group(3))}
              for m in re.finditer(r"(\w+) (\d+) s \(peak ([\d.]+) GB so far\)", proc.stdout.split("stages:", 1)[1])}
    for family, stage in stages.items():
        stage.update(study_figures(home, family))
    thin = [line.strip() for line in proc.stdout.splitlines() if line.startswith("  ") and ": only " in line]
    return {"customers": customers, "generate_s": round(generate_s, 1), "main_wall_s": round(wall, 1),
            # the job's peak: its processes together (the stages' sampled sum) or the largest one alone (GNU time)
            "max_rss_gb": max([parse_gnu_time(proc.stderr)["max_rss_gb"],
                               *(s["peak_gb_so_far"] for s in stages.values())]),
            "stages": stages, "thin": thin,
            "summary": proc.stdout[proc.stdout.index("family"):proc.stdout.index("stages:")].rstrip()}


def study_figures(home: Path, family: str) -> dict:
    """Trials completed, stop reason, tuning sample, agreement and test metric of the family's latest run."""
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(f"storefront-{family}")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=500)
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    m, t, p = parent.data.metrics, parent.data.tags, parent.data.params
    out = {"test": m.get(f"test_{METRICS[family]}"), "samples": p.get("tuning_customers", "all"),
           "agreement_tau": m.get("tuning_agreement_kendall_tau"), "agreement_best": m.get("tuning_agreement_best")}
    if family == "sarima":  # one study per series, nested under the job's run
        series = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
                  and "n_trials_complete" in r.data.metrics]
        out["trials"] = int(min(r.data.metrics["n_trials_complete"] for r in series)) if series else None
        out["stop"] = ",".join(sorted({r.data.tags.get("tuning_stop_reason", "?") for r in series}))
    else:
        out["trials"] = int(m["n_trials_complete"]) if "n_trials_complete" in m else None
        out["stop"] = t.get("tuning_stop_reason", "?")
    return out


def exponent(a: float, b: float, n_a: int, n_b: int) -> float:
    return math.log(b / a) / math.log(n_b / n_a) if a > 0 and b > 0 else float("nan")


def markdown(runs: list[dict], sizes_arg: str, machine: dict) -> str:
    lines = ["# scaling benchmark: the main job at growing shop sizes", "", measured_line(machine),
             f"Command: `python benchmarks/bench_scale.py --sizes {sizes_arg}` (per size: `storefront generate-data "
             "--customers N`, then `/usr/bin/time -v storefront main --data-dir <shop>` with default budgets in a fresh "
             "home). Stage memory is the peak up to the stage's end of the main job's process and its children "
             "together (sampled; SVD++'s refit runs in a second process); the main job's is the larger of that and "
             "GNU time's largest single process.", ""]
    lines += ["| customers | stage | wall (s) | peak so far (GB) | trials completed | stopped by | tuning customers | "
              "agreement (tau, best) | test metric |", "|---:|---|---:|---:|---:|---|---:|---|---:|"]
    for run in runs:
        lines.append(f"| {run['customers']:,} | generate | {run['generate_s']:.0f} | | | | | | |")
        for family, s in run["stages"].items():
            tau = "" if s.get("agreement_tau") is None else f"{s['agreement_tau']:.2f}, {'yes' if s['agreement_best'] else 'no'}"
            test = "" if s.get("test") is None else f"{METRICS[family]} {s['test']:.4f}"
            lines.append(f"| {run['customers']:,} | {family} | {s['wall_s']:.0f} | {s['peak_gb_so_far']:.2f} | "
                         f"{s.get('trials')} | {s.get('stop')} | {s.get('samples')} | {tau} | {test} |")
        lines.append(f"| {run['customers']:,} | **main job** | **{run['main_wall_s']:.0f}** | **{run['max_rss_gb']:.2f}** "
                     "| | | | | |")
    if len(runs) > 1:
        lines += ["", "Growth exponents (time ~ n^a, memory ~ n^b, n = customers):", "",
                  "| sizes | main job time | peak memory | " + " | ".join(f"{f} time" for f in FAMILIES) + " |",
                  "|---|---:|---:|" + "---:|" * len(FAMILIES)]
        for a, b in zip(runs, runs[1:]):
            na, nb = a["customers"], b["customers"]
            per = [exponent(a["stages"][f]["wall_s"], b["stages"][f]["wall_s"], na, nb)
                   if f in a["stages"] and f in b["stages"] else float("nan") for f in FAMILIES]
            lines.append(f"| {na:,} -> {nb:,} | {exponent(a['main_wall_s'], b['main_wall_s'], na, nb):.2f} | "
                         f"{exponent(a['max_rss_gb'], b['max_rss_gb'], na, nb):.2f} | "
                         + " | ".join(f"{e:.2f}" for e in per) + " |")
    lines += ["", "Targets (issue 18, 2 cores):", "", "| target | measured | met |", "|---|---|---|"]
    for run in runs:
        minutes, gb = TARGETS.get(run["customers"], (None, None))
        if minutes is not None:
            lines.append(f"| {run['customers']:,}: main job under {minutes:g} min | {run['main_wall_s'] / 60:.1f} min | "
                         f"{'yes' if run['main_wall_s'] / 60 < minutes else 'no'} |")
        if gb is not None:
            lines.append(f"| {run['customers']:,}: under {gb:g} GB | {run['max_rss_gb']:.2f} GB | "
                         f"{'yes' if run['max_rss_gb'] < gb else 'no'} |")
        trials = {f: s.get("trials") for f, s in run["stages"].items()}
        lines.append(f"| {run['customers']:,}: at least {MIN_TRIALS} completed trials in every study | "
                     + ", ".join(f"{f} {n}" for f, n in trials.items()) + " | "
                     + ("yes" if all((n or 0) >= MIN_TRIALS for n in trials.values()) else "no") + " |")
        if run["customers"] == 50000:
            for family, floor in FLOOR_50K.items():
                value = run["stages"].get(family, {}).get("test")
                ok = value is not None and (value <= floor if family == "sarima" else value >= floor)
                word = "at most" if family == "sarima" else "at least"
                lines.append(f"| 50,000: {family} test {METRICS[family]} {word} {floor} | "
                             f"{'' if value is None else f'{value:.4f}'} | {'yes' if ok else 'no'} |")
    for run in runs:
        lines += ["", f"Summary printed at {run['customers']:,} customers:", "", "```", run["summary"], "```"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,50000,200000", help="comma-separated shop sizes in customers")
    parser.add_argument("--name", default="scale", help="results file name (benchmarks/results/<name>.md, .json)")
    parser.add_argument("--render", action="store_true", help="only rewrite <name>.md from <name>.json")
    args = parser.parse_args()
    if args.render:
        import json

        from benchmarks.reporting import RESULTS

        report = json.loads((RESULTS / f"{args.name}.json").read_text())
        sizes_arg = ",".join(str(s) for s in report["sizes"])
        write_results(args.name, report, markdown(report["runs"], sizes_arg, report["machine"]))
        return
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for customers in sizes:
            runs.append(run_size(customers, Path(tmp)))
            print(f"{customers} customers: main job {runs[-1]['main_wall_s']:.0f} s, {runs[-1]['max_rss_gb']:.2f} GB",
                  flush=True)
    machine = machine_info()
    write_results(args.name, {"machine": machine, "sizes": sizes, "runs": runs}, markdown(runs, args.sizes, machine))


if __name__ == "__main__":
    main()
