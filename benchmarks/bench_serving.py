"""Serving latency and throughput of the champions, next to the framework's floor.

Needs the registry filled by the main job (`make run` or `storefront main`), in the project's tracking
store (or MLFLOW_TRACKING_URI). Starts each server itself with `mlflow models serve --env-manager local`
on a free loopback port, then:

* latency: 500 single-row requests per model, one keep-alive connection each (recommender with k=10, churn
  with one customer, SARIMA with horizon 12, and a trivial pyfunc that returns its input: the framework's
  floor), all servers up at once and the requests interleaved (500 rounds of one request to each, in a
  shuffled order) so that every model meets the same machine load; median and p99;
* throughput: 16 concurrent keep-alive clients for 20 s against the recommender with 1 and 2 workers:
  requests per second, p99, errors.

Writes benchmarks/results/serving.md and .json. Usage: python benchmarks/bench_serving.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchmarks.reporting import machine_info, measured_line, write_results  # noqa: E402
from e2e.conftest import Server  # noqa: E402  (the same server wrapper as the end-to-end tests)

RESULTS = ROOT / "benchmarks" / "results"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def interleaved(servers: dict[str, Server], payloads: dict[str, dict], n: int, seed: int = 0) -> dict[str, dict]:
    """``n`` rounds of one request to every server (keep-alive, one connection each), in a shuffled order.

    Every model sees the same moments of the machine's load, so drift (other processes, CPU frequency)
    moves all medians alike and the ratios to the floor stay comparable from run to run; timing one
    model after another let the floor and a model land on different minutes of a 2-core machine.
    """
    import random

    sessions = {label: requests.Session() for label in servers}
    urls = {label: f"{server.url}/invocations" for label, server in servers.items()}
    for label in servers:
        for _ in range(10):  # warm-up
            sessions[label].post(urls[label], json=payloads[label], timeout=30).raise_for_status()
    times = {label: [] for label in servers}
    order = list(servers)
    rng = random.Random(seed)
    for _ in range(n):
        rng.shuffle(order)
        for label in order:
            t0 = time.perf_counter()
            response = sessions[label].post(urls[label], json=payloads[label], timeout=30)
            times[label].append((time.perf_counter() - t0) * 1000)
            response.raise_for_status()
    return {label: {"requests": n, "median_ms": statistics.median(values), "p99_ms": percentile(values, 0.99)}
            for label, values in times.items()}


def load(server: Server, payload: dict, clients: int, seconds: float) -> dict:
    url = f"{server.url}/invocations"
    stop = time.monotonic() + seconds
    lock = threading.Lock()
    times, errors = [], [0]

    def client():
        session = requests.Session()
        local, bad = [], 0
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            try:
                ok = session.post(url, json=payload, timeout=30).status_code == 200
            except requests.RequestException:
                ok = False
            local.append((time.perf_counter() - t0) * 1000)
            bad += 0 if ok else 1
        with lock:
            times.extend(local)
            errors[0] += bad

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    return {"clients": clients, "seconds": round(elapsed, 1), "requests": len(times),
            "rps": len(times) / elapsed, "median_ms": statistics.median(times), "p99_ms": percentile(times, 0.99),
            "errors": errors[0]}


def floor_model_uri(tracking_uri: str, example: pd.DataFrame | None = None, name: str = "echo-floor") -> str:
    """Log the trivial echo pyfunc (in experiment storefront-bench) with ``example``'s signature; return its URI."""
    import mlflow

    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    from pipelines.mlflow_logging import log_pyfunc_model
    from pipelines.tracking import experiment_id

    if example is None:
        example = pd.DataFrame({"customer_id": ["C00001"]})
    with mlflow.start_run(experiment_id=experiment_id("storefront-bench"), run_name=name):
        info = log_pyfunc_model(ROOT / "tests" / "pipelines" / "fixtures" / "echo_model.py", name="echo", artifacts={},
                                input_example=example)
    return info.model_uri


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 requests and 5 s of load (smoke run)")
    args = parser.parse_args()
    from pipelines import tracking

    uri = tracking.tracking_uri()
    n, seconds = (100, 5.0) if args.quick else (500, 20.0)
    import mlflow

    client = mlflow.MlflowClient(uri)
    try:
        churn_version = client.get_model_version_by_alias("storefront-churn", "champion")
    except Exception as exc:  # noqa: BLE001
        print(f"no champions in {uri}: run `storefront main` first ({exc})", file=sys.stderr)
        return 2
    from pipelines.rescoring import load_holdout

    os.environ["MLFLOW_TRACKING_URI"] = uri
    churn_requests, _, _ = load_holdout(churn_version.run_id)
    churn_row = json.loads(churn_requests.head(1).to_json(orient="records"))
    customer = churn_row[0]["customer_id"]
    cases = {
        "floor (echo pyfunc)": (floor_model_uri(uri), {"dataframe_records": [{"customer_id": customer}]}),
        "recommender k=10": ("models:/storefront-recommender@champion",
                             {"dataframe_records": [{"customer_id": customer}], "params": {"k": 10}}),
        "churn, 1 customer": ("models:/storefront-churn@champion", {"dataframe_records": churn_row}),
        # the same request shape as churn's (26 columns): MLflow parses and checks each column of the request
        "floor with churn's columns (echo)": (floor_model_uri(uri, churn_requests.head(1), "echo-floor-churn-columns"),
                                              {"dataframe_records": churn_row}),
        "sarima horizon 12": ("models:/storefront-sarima@champion",
                              {"dataframe_records": [{"category": "Electronics", "horizon": 12}]}),
    }
    logs = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    servers = {}
    try:
        for number, (label, (model_uri, _)) in enumerate(cases.items()):
            servers[label] = Server(model_uri, uri, logs / f"{number}.log").wait(120)
        latency = interleaved(servers, {label: payload for label, (_, payload) in cases.items()}, n)
    finally:
        for server in servers.values():
            server.stop()
    for label, row in latency.items():
        print(f"{label:22s} median {row['median_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms", flush=True)
    floor = latency["floor (echo pyfunc)"]["median_ms"]
    throughput = {}
    for workers in (1, 2):
        server = Server(cases["recommender k=10"][0], uri, logs / f"w{workers}.log", workers=workers).wait(120)
        try:
            throughput[workers] = load(server, cases["recommender k=10"][1], 16, seconds)
        finally:
            server.stop()
        print(f"recommender, {workers} worker(s): {throughput[workers]['rps']:.0f} req/s, "
              f"p99 {throughput[workers]['p99_ms']:.1f} ms, errors {throughput[workers]['errors']}", flush=True)

    lines = ["# Serving benchmark", "",
             measured_line(machine_info()) + " "
             f"Command: `python benchmarks/bench_serving.py{' --quick' if args.quick else ''}` "
             "(servers: `mlflow models serve --env-manager local`, loopback).", "",
             f"## Latency: {n} single-row requests per model, one keep-alive connection each, interleaved "
             "(rounds of one request to every server, shuffled)", "",
             "| model | median (ms) | p99 (ms) | median / floor | target |", "|---|---:|---:|---:|---|"]
    for label, row in latency.items():
        lines.append(f"| {label} | {row['median_ms']:.2f} | {row['p99_ms']:.2f} | {row['median_ms'] / floor:.2f} "
                     f"| {'floor' if label.startswith('floor') else 'median <= 1.5x floor, p99 < 25 ms'} |")
    churn_floor = latency["floor with churn's columns (echo)"]["median_ms"]
    lines += ["", f"Churn against the echo model with its own 26-column signature: "
                  f"{latency['churn, 1 customer']['median_ms'] / churn_floor:.2f}x that floor's median."]
    lines += ["", f"## Throughput: 16 concurrent keep-alive clients for {seconds:.0f} s, recommender k=10", "",
              "| workers | requests | req/s | median (ms) | p99 (ms) | errors |", "|---:|---:|---:|---:|---:|---:|"]
    for workers, row in throughput.items():
        lines.append(f"| {workers} | {row['requests']} | {row['rps']:.0f} | {row['median_ms']:.1f} | "
                     f"{row['p99_ms']:.1f} | {row['errors']} |")
    write_results("serving", {"latency": latency, "throughput": throughput}, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
