"""Benchmark the SARIMA entry point on AirPassengers and on the generated shop, and the served model's speed.

Protocol (``../shared/data/README.md``, forecasting): AirPassengers, train on 1949-1958 (120 months),
forecast the 24 months of 1959-1960, MAPE and RMSE; model selection uses only the training part.

* Ours: ``pipelines.sarima.train.train`` on the CSV (``--test-periods 24``, the given budget), exactly as
  ``storefront train-sarima --series ...`` runs it, in a throwaway SQLite tracking store; tuning wall time is
  the series' whole processing (search, refit, scoring, logging of its run) as logged in ``tuning_seconds``.
  The throwaway store's database tables are created before the clock starts (a one-off of a new store, about
  5 s here, that a user's existing store never pays); everything the job does in it is timed.
* Peers, same run: pmdarima ``auto_arima`` (stepwise, seasonal m=12, on log values, defaults otherwise),
  timed around the call, with single-threaded BLAS like our job; the classic airline model SARIMA(0,1,1)(0,1,1,12) on log values; the seasonal naive
  forecast. Point forecasts on the original scale (``exp`` of the log forecast).
* Generated shop: ``train`` on ``--data-dir`` (default ``/tmp/sf-data``, made by ``storefront generate-data``)
  with the default budget: wall time, mean test MASE/MAPE over the categories against the seasonal naive.
* Served model: the shop model is loaded with ``mlflow.pyfunc.load_model`` and asked for a 12-step forecast
  of one category (one-row DataFrame, no HTTP), median and p95 over ``--requests`` calls; size of the
  logged model's ``series`` artifact per series and of the whole model folder.

Targets (issue 5): AirPassengers MAPE <= 2.4% with tuning time <= pmdarima's; shop: all categories within
180 s, mean MASE below the seasonal naive's; 12-step forecast < 20 ms median; < 200 KB per category.

    python benchmarks/bench_sarima.py [--air ../shared/data/air-passengers/AirPassengers.csv]
                                      [--data-dir /tmp/sf-data] [--n-trials 60] [--requests 200]

Needs ``pmdarima`` (the ``bench`` extra). Writes ``benchmarks/results/sarima.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.reporting import machine_info, measured_line, verdict_rows, write_results  # noqa: E402  (after the path set-up)
DEFAULT_AIR = ROOT.parent / "shared" / "data" / "air-passengers" / "AirPassengers.csv"
TEST_MONTHS = 24
TARGETS = {"air_mape": 0.024, "shop_seconds": 180.0, "latency_ms": 20.0, "bytes_per_series": 200_000}


def _store(folder: Path) -> None:
    import mlflow

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ["STOREFRONT_HOME"] = str(folder)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.MlflowClient().search_experiments(max_results=1)  # creates the database tables (not timed)


def score(y_test, forecast) -> dict[str, float]:
    from evaluation import metrics as M

    return {"mape": M.mape(y_test, forecast), "rmse": M.rmse(y_test, forecast)}


def peers(y) -> dict[str, dict]:
    import numpy as np
    import pmdarima
    from threadpoolctl import threadpool_limits

    from models.sarima.model import SarimaSpec, SeasonalNaive, fit_sarima, forecast_sarima

    train, test = y[:-TEST_MONTHS], y[-TEST_MONTHS:]
    rows = {}
    started = time.perf_counter()
    # Same conditions as ours: single-threaded BLAS (tiny matrices; threads only slow both down).
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore")  # pmdarima/statsmodels convergence and deprecation chatter
        model = pmdarima.auto_arima(np.log(train), seasonal=True, m=12, stepwise=True, suppress_warnings=True,
                                    error_action="ignore")
        forecast = np.exp(model.predict(TEST_MONTHS))
    seconds = time.perf_counter() - started
    rows[f"pmdarima auto_arima stepwise, log: {model.order}{model.seasonal_order}"] = {
        **score(test, np.asarray(forecast)), "seconds": seconds}
    airline = SarimaSpec((0, 1, 1), (0, 1, 1, 12), "n", "log")
    started = time.perf_counter()
    fit = fit_sarima(train, airline)
    forecast = forecast_sarima(train, airline, fit.params, TEST_MONTHS).mean
    rows["airline model SARIMA(0,1,1)(0,1,1,12), log"] = {**score(test, forecast),
                                                          "seconds": time.perf_counter() - started}
    rows["seasonal naive"] = {**score(test, SeasonalNaive(12).fit(train).forecast(TEST_MONTHS).mean),
                              "seconds": None}
    return rows, seconds


def ours_air(csv: Path, n_trials: int, timeout: float, seed: int) -> dict:
    import mlflow

    from pipelines.cli import parse_args, train_from_args

    started = time.perf_counter()
    result = train_from_args(parse_args([
        "train-sarima", "--series", str(csv), "--date-column", "time", "--value-column", "value",
        "--test-periods", str(TEST_MONTHS), "--n-trials", str(n_trials), "--timeout", str(timeout), "--seed", str(seed),
        "--registered-model", "bench-air"]))
    wall = time.perf_counter() - started
    metrics = mlflow.get_run(result.run_id).data.metrics
    return {"model": result.extra["series"]["AirPassengers"]["model"], "mape": metrics["test_mape"],
            "rmse": metrics["test_rmse"], "seconds": metrics["tuning_seconds"], "wall_seconds": wall}


def shop(data_dir: Path, seed: int) -> tuple[dict, object]:
    import mlflow

    from pipelines.cli import parse_args, train_from_args
    from pipelines.families import get

    family = get("sarima")
    started = time.perf_counter()
    result = train_from_args(parse_args(["train-sarima", "--data-dir", str(data_dir), "--seed", str(seed)]))
    wall = time.perf_counter() - started
    metrics = mlflow.get_run(result.run_id).data.metrics
    row = {"wall_seconds": wall, "n_series": result.extra["n_series"], "n_scored": result.extra["n_scored"],
           "n_trials": family.n_trials, "timeout": family.timeout,
           **{k: metrics[k] for k in sorted(metrics) if k.startswith(("test_", "baseline_test_"))},
           "series": {name: {"model": info["model"], "test_mape": info.get("test_mape"),
                             "test_mase": info.get("test_mase")} for name, info in result.extra["series"].items()}}
    return row, result


def served(result, category: str, requests: int) -> dict:
    import mlflow
    import numpy as np
    import pandas as pd

    model = mlflow.pyfunc.load_model(result.model_uri)
    local = Path(mlflow.artifacts.download_artifacts(result.model_uri))
    frame = pd.DataFrame({"category": [category], "horizon": [12]})
    model.predict(frame)
    times = []
    for _ in range(requests):
        t0 = time.perf_counter()
        model.predict(frame)
        times.append((time.perf_counter() - t0) * 1000)
    series_bytes = sum(p.stat().st_size for p in local.rglob("series.json"))
    folder_bytes = sum(p.stat().st_size for p in local.rglob("*") if p.is_file())
    n = result.extra["n_series"]
    return {"category": category, "requests": requests, "median_ms": statistics.median(times),
            "p95_ms": float(np.percentile(times, 95)), "series_json_bytes": series_bytes,
            "series_json_bytes_per_series": series_bytes / n, "model_folder_bytes": folder_bytes,
            "model_folder_bytes_per_series": folder_bytes / n}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--air", type=Path, default=DEFAULT_AIR, help="AirPassengers CSV (time,value)")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/sf-data"), help="generated shop tables")
    parser.add_argument("--n-trials", type=int, default=60,
                        help="candidate models at most on AirPassengers (default 60, the family's)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for the AirPassengers search")
    parser.add_argument("--requests", type=int, default=200, help="served 12-step forecasts timed (default 200)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    if not args.air.is_file():
        sys.exit(f"bench_sarima: AirPassengers not found: {args.air} is missing (../shared/data/air-passengers or "
                 "--air); nothing was measured.")
    if not (args.data_dir / "transactions.parquet").is_file() and not (args.data_dir / "transactions.csv").is_file():
        sys.exit(f"bench_sarima: no generated shop in {args.data_dir}; run `storefront generate-data --output-dir "
                 f"{args.data_dir} --no-track` first.")
    try:
        import pmdarima  # noqa: F401
    except ImportError:
        sys.exit("bench_sarima: the peer library pmdarima is not installed; run pip install -e \".[bench]\"")
    import logging

    import pandas as pd

    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    y = pd.read_csv(args.air)["value"].to_numpy(float)
    print(f"AirPassengers: {y.size} months, train {y.size - TEST_MONTHS}, test {TEST_MONTHS}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        _store(Path(tmp))
        rows, pmdarima_seconds = peers(y)
        for name, row in rows.items():
            print(f"{name}: {row}", flush=True)
        ours = ours_air(args.air, args.n_trials, args.timeout, args.seed)
        rows[f"ours (stepwise AICc, at most {args.n_trials} candidates): {ours['model']}"] = {
            k: ours[k] for k in ("mape", "rmse", "seconds")}
        print(f"ours: {ours}", flush=True)
        shop_row, result = shop(args.data_dir, args.seed)
        print(f"shop: {shop_row}", flush=True)
        latency = served(result, result.extra["series"] and sorted(result.extra["series"])[0], args.requests)
        print(f"served: {latency}", flush=True)

    verdicts = {
        "AirPassengers MAPE <= 2.4%": ours["mape"] <= TARGETS["air_mape"],
        "AirPassengers tuning time <= pmdarima stepwise": ours["seconds"] <= pmdarima_seconds,
        "shop: all categories in < 180 s (default budget)": shop_row["wall_seconds"] < TARGETS["shop_seconds"],
        "shop: mean MASE below seasonal naive": shop_row["test_mase"] < shop_row["baseline_test_mase"],
        "12-step forecast median < 20 ms": latency["median_ms"] < TARGETS["latency_ms"],
        "model size < 200 KB per category": latency["model_folder_bytes_per_series"] < TARGETS["bytes_per_series"],
    }
    report = {
        "machine": machine_info(),
        "command": "python benchmarks/bench_sarima.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "protocol": "AirPassengers: train 1949-1958 (120 months), forecast 1959-1960 (24 months)",
        "air_rows": rows, "ours_air": ours, "shop": shop_row, "served": latency, "targets": TARGETS,
        "verdicts": verdicts, "wall_seconds": time.perf_counter() - started,
    }
    write_results("sarima", report, markdown(report))
    return 0


def markdown(report: dict) -> str:
    m, s, lat = report["machine"], report["shop"], report["served"]
    lines = [
        "# SARIMA benchmark (AirPassengers, generated shop, served model)",
        "",
        measured_line(m),
        f"Command: `{report['command'].strip()}`.",
        f"Protocol: {report['protocol']}; MAPE as a fraction; point forecasts on the original scale.",
        "",
        "| model | test MAPE | test RMSE | tuning / fit time (s) |",
        "|---|---:|---:|---:|",
    ]
    for name, row in report["air_rows"].items():
        seconds = "" if row["seconds"] is None else f"{row['seconds']:.1f}"
        lines.append(f"| {name} | {row['mape']:.4f} | {row['rmse']:.2f} | {seconds} |")
    lines += [
        "",
        f"Generated shop (`train_sarima` defaults: at most {s['n_trials']} candidate models per series, timeout {s['timeout']:.0f} s; "
        f"{s['n_series']} series, {s['n_scored']} categories averaged): wall time {s['wall_seconds']:.1f} s; "
        f"mean test MASE {s['test_mase']:.4f} vs seasonal naive {s['baseline_test_mase']:.4f}; mean test MAPE "
        f"{s['test_mape']:.4f} vs {s['baseline_test_mape']:.4f}; 95% interval coverage "
        f"{s['test_interval_coverage']:.3f}.",
        "",
        "| series | chosen model | test MAPE | test MASE |",
        "|---|---|---:|---:|",
    ]
    for name, row in s["series"].items():
        mape = "" if row["test_mape"] is None else f"{row['test_mape']:.4f}"
        mase = "" if row["test_mase"] is None else f"{row['test_mase']:.4f}"
        lines.append(f"| {name} | {row['model']} | {mape} | {mase} |")
    lines += [
        "",
        f"Served model (`mlflow.pyfunc.load_model(...).predict`, 12 steps of {lat['category']!r}, no HTTP), "
        f"{lat['requests']} requests: median {lat['median_ms']:.2f} ms, p95 {lat['p95_ms']:.2f} ms. Size: "
        f"`series.json` {lat['series_json_bytes_per_series'] / 1000:.1f} KB per series; the whole logged model "
        f"folder (MLmodel, code, requirements, input example) {lat['model_folder_bytes'] / 1000:.0f} KB, "
        f"{lat['model_folder_bytes_per_series'] / 1000:.1f} KB per series.",
        "",
        *verdict_rows(report["verdicts"]),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
