"""Tune, evaluate and log SARIMA sales forecasts, one model per series (``train_sarima``).

Reads the transactions in ``--data-dir`` (default ``data/generated``) and sums the amount per category per
period (``--freq`` M, W or D; seasonal period 12, 52 or 7) plus the shop total ``All``
(:mod:`pipelines.sales_series`); or, with ``--series``, the user's CSV of one or more series
(``--date-column``, ``--value-column``, ``--id-column``).

For each series the last ``--test-periods`` periods (default 6 monthly, 8 weekly, 14 daily) are the test
and never reach the search. An Optuna study (``--n-trials`` per series, ``--timeout`` seconds for the whole
job) chooses the orders, the trend and a log/none transform by rolling-origin cross-validation on the
training periods (:mod:`pipelines.sarima_tuning`); short or constant series fall back to a non-seasonal
ARIMA, then to the seasonal naive forecast, and say why. The winner is refit on all training periods and
scored once on the test (``test_mape``, ``test_smape``, ``test_mase``, ``test_rmse``,
``test_interval_coverage`` of the 95% interval), next to the seasonal naive forecast of the same periods
(``baseline_test_*``). The served model keeps those parameters (fitted on the training periods, so its
test metrics describe exactly what is served) and runs the Kalman filter through the *whole* series
(training and test periods), so its forecasts start right after the last observed period.

Logs one parent run in the experiment ``storefront-sarima`` holding the data inputs, the averaged test and
baseline metrics (over the category series; the shop total ``All`` is scored and served but not averaged),
a table of every series, the grid figure of all forecasts, the held-out data for re-scoring (``holdout/``)
and the pyfunc model ``model`` (``models/sarima_pyfunc.py``), checked by loading it back and comparing its
forecasts with the training-time ones. Under it, one nested run per series holds that series' study (one
nested run per trial with its CV score and its statsmodels warning counts), its choice, fallback reason,
test metrics and figure. ``train_from_args`` registers nothing: it returns a ``TrainResult`` for the
registration gate; the command (``run``) then registers the model as ``<name>@challenger`` when its mean test
MAPE beats the seasonal naive forecast's, and prints the verdict. A model of a ``--series`` file registers as
``--registered-model`` (default ``storefront-sarima-<file stem>``), never as ``storefront-sarima``.
"""

from __future__ import annotations

import argparse
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

HELP = "tune a SARIMA per category with Optuna, score it on the last periods and log a forecasting model"

logger = logging.getLogger(__name__)

FAMILY = "sarima"
DEFAULT_N_TRIALS = 40
DEFAULT_TIMEOUT = 900
DEFAULT_IC_MARGIN = 2.0  # the AICc screen's margin (pipelines.sarima_tuning.IC_MARGIN; see docs/sarima.md)
ROUND_TRIP_STEPS = 12
ROUND_TRIP_RTOL = 1e-8
SHOP_MODEL = "storefront-sarima"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder with the canonical tables (default: <project>/data/generated)")
    parser.add_argument("--n-trials", type=int, default=DEFAULT_N_TRIALS,
                        help=f"Optuna trials per series (default {DEFAULT_N_TRIALS})")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help="seconds for the whole job's searches, shared out between the series still to tune; "
                             f"0 = no limit (default {DEFAULT_TIMEOUT})")
    parser.add_argument("--seed", type=int, default=42, help="sampler seed (default 42)")
    parser.add_argument("--storage", default=None,
                        help="Optuna storage URL (sqlite:///study.db, ...) to resume or share the studies; "
                             "default in-memory")
    parser.add_argument("--freq", default="M", choices=["M", "W", "D"],
                        help="period: M monthly (season 12), W weekly (52), D daily (7) (default M)")
    parser.add_argument("--test-periods", type=int, default=None,
                        help="periods at the end of each series held out as the test (default 6 for M, 8 for W, "
                             "14 for D)")
    parser.add_argument("--series", type=Path, default=None,
                        help="a CSV of your own series instead of the shop's categories")
    parser.add_argument("--date-column", default=None, help="with --series: the column of dates")
    parser.add_argument("--value-column", default=None, help="with --series: the column of values")
    parser.add_argument("--id-column", default=None,
                        help="with --series: the column naming the series (default: one series named after the file)")
    parser.add_argument("--registered-model", default=None,
                        help="with --series: registered model name (default storefront-sarima-<file stem>)")
    parser.add_argument("--study-name", default="sarima", help="Optuna study name prefix (default sarima)")
    parser.add_argument("--differencing", default="tests", choices=["tests", "search"],
                        help="tests: d and D from the KPSS and seasonal-strength tests (default); search: let "
                             "Optuna choose them too")
    parser.add_argument("--ic-margin", type=ic_margin_arg, default=DEFAULT_IC_MARGIN,
                        help="AICc screen: prune specs more than this many AICc units above the best of their "
                             "transform and differencing, and choose among those within it by the CV score "
                             "(default 2; 'off' for the CV score alone)")


def ic_margin_arg(text: str) -> float | None:
    """``--ic-margin``: a non-negative number, or ``off``/``none`` (no AICc screen)."""
    if str(text).strip().lower() in ("off", "none", ""):
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"--ic-margin must be a non-negative number or 'off', got {text!r}")
    return value


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "series"


def byo_model_name(series: Path, registered_model: str | None) -> str:
    from pipelines.errors import ConfigurationError

    name = registered_model or f"{SHOP_MODEL}-{slug(series.stem)}"
    if name == SHOP_MODEL:
        raise ConfigurationError(f"--registered-model {name!r} is the shop's model; a model of your own series needs "
                                 "another name")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", name):
        raise ConfigurationError(f"--registered-model {name!r}: use letters, digits, '-', '_' and '.'")
    return name


@dataclass
class SeriesOutcome:
    """Everything the job keeps about one series."""

    name: str
    run_id: str
    served: object  # models.sarima.SeriesModel
    label: str
    kind: str
    reason: str
    n_train: int
    n_test: int
    scores: dict = field(default_factory=dict)
    baseline_scores: dict = field(default_factory=dict)
    undefined: dict = field(default_factory=dict)
    panel: object = None
    n_trials: int = 0


def _budget(deadline: float | None, remaining_series: int) -> float | None:
    if deadline is None:
        return None
    return max(1.0, (deadline - time.monotonic()) / max(remaining_series, 1))


def _process_series(name, values, season, test_periods, freq, *, n_trials, timeout, seed, storage, study_name,
                    differencing, ic_margin=DEFAULT_IC_MARGIN) -> SeriesOutcome:
    """Tune, score and export one series inside its own nested run (the active run when called)."""
    import mlflow
    import numpy as np

    from models.sarima import (SARIMA, SeasonalNaive, export_sarima, export_seasonal_naive, fitted_values,
                               forecast_sarima)
    from pipelines import sarima_report as report
    from pipelines.sarima_tuning import choose_model

    y = values.to_numpy(dtype=float)
    last_period = values.index[-1].date().isoformat()
    n_test = test_periods if y.size > test_periods + 1 else 0
    train, test = values.iloc[: y.size - n_test], values.iloc[y.size - n_test:]
    y_train, y_test = train.to_numpy(float), test.to_numpy(float)
    mlflow.log_params({"series": name, "n_periods": y.size, "n_train": y_train.size, "n_test": n_test,
                       "first_period": values.index[0].date().isoformat(), "last_period": last_period})
    if n_test == 0:
        reason = f"too short to hold out {test_periods} test periods ({y.size} periods): seasonal naive, not scored"
        served = export_seasonal_naive(name, y, freq=freq, season=season, last_period=last_period, reason=reason)
        mlflow.set_tags({"fallback_reason": reason, "model": served.describe(), "model_kind": served.kind})
        return SeriesOutcome(name, mlflow.active_run().info.run_id, served, served.describe(), served.kind, reason,
                             y.size, 0)

    naive = SeasonalNaive(season).fit(y_train).forecast(n_test)
    baseline_scores, _ = report.score_forecast(y_train, y_test, naive, season)
    choice = choose_model(name, y_train, season, n_test, n_trials=n_trials, timeout=timeout, seed=seed,
                          storage=storage, study_name=f"{study_name}-{slug(name)}", baseline=baseline_scores,
                          differencing=differencing, ic_margin=ic_margin)
    if choice.kind == SARIMA:
        forecast = forecast_sarima(y_train, choice.spec, choice.train_fit.params, n_test)
        fitted = fitted_values(y_train, choice.spec, choice.train_fit.params)
        mlflow.log_params({"chosen_order": str(choice.spec.order), "chosen_seasonal_order":
                           str(choice.spec.seasonal_order), "chosen_trend": choice.spec.trend,
                           "chosen_transform": choice.spec.transform})
        mlflow.log_metric("train_fit_warnings", choice.train_fit.n_warnings)
    else:
        forecast = naive
        fitted = np.full(y_train.size, np.nan)
        lag = season if y_train.size > season else 1
        fitted[lag:] = y_train[:-lag]
    scores, undefined = report.score_forecast(y_train, y_test, forecast, season)
    mlflow.log_metrics({f"test_{k}": v for k, v in scores.items()})

    # The served model: the parameters scored on the test (fitted on the training periods), with the Kalman
    # state run through the whole series, so forecasts start after the last period and re-scoring the model on
    # this run's held-out data reproduces its test metrics exactly.
    if choice.kind == SARIMA:
        served = export_sarima(name, y, choice.spec, choice.train_fit, freq=freq, last_period=last_period,
                               reason=choice.reason)
    else:
        served = export_seasonal_naive(name, y, freq=freq, season=season, last_period=last_period,
                                       reason=choice.reason)
    tags = {"model": served.describe(), "model_kind": served.kind, "tuning_mode": choice.plan.mode}
    if choice.reason:
        tags["fallback_reason"] = choice.reason[:5000]
    if undefined:
        tags["undefined_metrics"] = "; ".join(f"{k}: {v}" for k, v in undefined.items())[:5000]
    mlflow.set_tags(tags)
    mlflow.log_metric("served_observations", len(served.observations))

    panel = report.SeriesPanel(name, train, test, fitted, forecast, naive.mean, served.describe())
    from pipelines.runs import log_figure

    log_figure(report.series_figure(panel), "plots/forecast.png")
    n_trials_run = sum(len(s.study.trials) for s in choice.studies)
    logger.info("series %s: %s, test %s (seasonal naive %s)%s", name, served.describe(),
                ", ".join(f"{k}={v:.4f}" for k, v in scores.items()),
                ", ".join(f"{k}={v:.4f}" for k, v in baseline_scores.items()),
                f"; fallback: {choice.reason}" if choice.reason else "")
    return SeriesOutcome(name, mlflow.active_run().info.run_id, served, served.describe(), served.kind,
                         choice.reason, y_train.size, n_test, scores, baseline_scores, undefined, panel, n_trials_run)


def _fallback_outcome(name, values, season, freq, exc: Exception) -> SeriesOutcome:
    """A series whose processing failed unexpectedly is served by the seasonal naive forecast (never stops the job)."""
    import mlflow

    from models.sarima import export_seasonal_naive

    reason = f"error while tuning: {type(exc).__name__}: {exc}"
    served = export_seasonal_naive(name, values.to_numpy(float), freq=freq, season=season,
                                   last_period=values.index[-1].date().isoformat(), reason=reason)
    mlflow.set_tags({"fallback_reason": reason[:5000], "model": served.describe(), "model_kind": served.kind})
    return SeriesOutcome(name, mlflow.active_run().info.run_id, served, served.describe(), served.kind, reason,
                         len(values), 0)


def _mean_scores(outcomes: list[SeriesOutcome], attribute: str) -> dict[str, float]:
    import numpy as np

    from pipelines.sarima_report import TEST_METRICS

    means = {}
    for metric in TEST_METRICS:
        values = [getattr(o, attribute)[metric] for o in outcomes if metric in getattr(o, attribute)]
        if values:
            means[metric] = float(np.mean(values))
    return means


def _summary_table(outcomes: list[SeriesOutcome], primary: set[str]):
    import pandas as pd

    rows = []
    for o in outcomes:
        row = {"series": o.name, "averaged": o.name in primary, "model": o.label, "kind": o.kind,
               "n_train": o.n_train, "n_test": o.n_test, "n_trials": o.n_trials, "fallback_reason": o.reason,
               "run_id": o.run_id}
        row.update({f"test_{k}": v for k, v in o.scores.items()})
        row.update({f"baseline_test_{k}": v for k, v in o.baseline_scores.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def _log_holdout(series_set, outcomes: list[SeriesOutcome], primary: list[str], test_periods: int, digest: str):
    """The test periods of the averaged series (and their training history) for champion re-scoring."""
    import pandas as pd

    from pipelines.rescoring import log_holdout

    requests, truth = [], []
    for o in outcomes:
        if o.name not in primary:
            continue
        s = series_set.series[o.name]
        n = len(s) - o.n_test
        periods = [p.date().isoformat() for p in s.index]
        requests.append(pd.DataFrame({"category": o.name, "period": periods[:n], "value": s.to_numpy()[:n]}))
        truth.append(pd.DataFrame({"category": o.name, "period": periods[n:], "value": s.to_numpy()[n:]}))
    if not truth:
        return
    log_holdout(pd.concat(requests, ignore_index=True), pd.concat(truth, ignore_index=True),
                {"family": FAMILY, "metric": "mape", "freq": series_set.freq, "test_periods": test_periods,
                 "data_digest": digest, "series": primary})


def _training_forecasts(series_set, outcomes: list[SeriesOutcome], steps: int, confidence: float = 0.95):
    """Forecasts of every series from its full-data model, computed in training (for the round-trip check)."""
    import numpy as np
    import pandas as pd

    from models.sarima import SARIMA, forecast_sarima

    frames = []
    for o in outcomes:
        served = o.served
        y = series_set.series[o.name].to_numpy(float)
        if served.kind == SARIMA:
            forecast = forecast_sarima(y, served.spec, served.params, steps, confidence)
        else:
            forecast = served.forecast(steps, confidence)
        frames.append(pd.DataFrame({"category": o.name, "period": served.periods(steps),
                                    "step": np.arange(1, steps + 1), "forecast": forecast.mean,
                                    "lower": forecast.lower, "upper": forecast.upper}))
    return pd.concat(frames, ignore_index=True)


def check_round_trip(model_uri: str, expected, rtol: float = ROUND_TRIP_RTOL) -> None:
    """Load the logged model and compare its forecasts with ``expected``; raise when they differ."""
    import mlflow
    import numpy as np
    import pandas as pd

    model = mlflow.pyfunc.load_model(model_uri)
    steps = int(expected["step"].max())
    names = list(dict.fromkeys(expected["category"]))
    served = model.predict(pd.DataFrame({"category": names, "horizon": [steps] * len(names)}))
    if list(served["period"]) != list(expected["period"]) or list(served["category"]) != list(expected["category"]):
        raise RuntimeError(f"round trip: the served periods or categories differ from training for {model_uri}")
    for column in ("forecast", "lower", "upper"):
        a, b = served[column].to_numpy(float), expected[column].to_numpy(float)
        if not np.allclose(a, b, rtol=rtol, atol=0):
            worst = int(np.argmax(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))
            raise RuntimeError(f"round trip: served {column} {a[worst]!r} differs from training {b[worst]!r} "
                               f"({expected['category'].iloc[worst]}, step {expected['step'].iloc[worst]})")


def model_signature():
    """The serving contract: input ``category`` (string) and ``horizon`` (long), param ``confidence`` (double,
    default 0.95), output ``category, period, step, forecast, lower, upper``."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    return ModelSignature(
        inputs=Schema([ColSpec("string", "category"), ColSpec("long", "horizon")]),
        outputs=Schema([ColSpec("string", "category"), ColSpec("string", "period"), ColSpec("long", "step"),
                        ColSpec("double", "forecast"), ColSpec("double", "lower"), ColSpec("double", "upper")]),
        params=ParamSchema([ParamSpec("confidence", "double", 0.95)]),
    )


def _log_model(outcomes: list[SeriesOutcome], freq: str):
    import json
    import tempfile

    import pandas as pd

    from pipelines.runs import MODELS_DIR, log_pyfunc_model

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "series.json"
        path.write_text(json.dumps({"freq": freq, "series": [o.served.to_dict() for o in outcomes]}),
                        encoding="utf-8")
        size = path.stat().st_size
        info = log_pyfunc_model(MODELS_DIR / "sarima_pyfunc.py", artifacts={"series": str(path)},
                                input_example=pd.DataFrame({"category": [outcomes[0].name], "horizon": [3]}),
                                params={"confidence": 0.95},
                                requirements=("numpy", "pandas", "scipy", "statsmodels"), signature=model_signature())
    return info, size


def load_series_set(data_dir, series, date_column, value_column, id_column, freq):
    """``(series_set, digest, log_inputs)``: the shop's category series or the user's CSV series."""
    import warnings

    import mlflow

    from pipelines import sales_series
    from pipelines.runs import log_tables_input
    from pipelines.tables import dataset_digest, load_tables
    from pipelines.tracking import default_data_dir

    if series is not None:
        series_set = sales_series.read_series_csv(series, date_column, value_column, id_column, freq)
        digest = dataset_digest({"series": series_set.frame()})

        def log_inputs():
            mlflow.set_tags({"data_digest": digest, "series_file": str(series)})
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=UserWarning, module="mlflow")
                mlflow.log_input(mlflow.data.from_pandas(series_set.frame(), source=str(Path(series).resolve()),
                                                         name=f"{Path(series).stem}-{digest}"), context="training")
        return series_set, digest, log_inputs

    data_dir = Path(data_dir) if data_dir else default_data_dir()
    tables = load_tables(data_dir)
    series_set = sales_series.category_series(tables["transactions"], freq, source=str(data_dir / "transactions"))
    digest = dataset_digest(tables)

    def log_inputs():
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="mlflow")
            log_tables_input(tables, data_dir, digest, names=("transactions",))
            frame = series_set.frame()
            mlflow.log_input(mlflow.data.from_pandas(frame, source=str(data_dir / "transactions"),
                                                     name=f"sales-{freq}-{digest}"), context="training")
    return series_set, digest, log_inputs


def train(data_dir: str | Path | None = None, *, n_trials: int | None = DEFAULT_N_TRIALS,
          timeout: float | None = DEFAULT_TIMEOUT, seed: int = 42, storage: str | None = None, freq: str = "M",
          test_periods: int | None = None, series: str | Path | None = None, date_column: str | None = None,
          value_column: str | None = None, id_column: str | None = None, registered_model: str | None = None,
          study_name: str = "sarima", differencing: str = "tests", ic_margin: float | None = DEFAULT_IC_MARGIN):
    """Run the whole entry point (see the module docstring); returns the :class:`pipelines.runs.TrainResult`."""
    import math

    import mlflow

    from pipelines import sales_series
    from pipelines import sarima_report as report
    from pipelines.errors import ConfigurationError
    from pipelines.runs import TrainResult, family_run, log_figure
    from threadpoolctl import threadpool_limits

    started = time.monotonic()
    sales_series.check_freq(freq)
    test_periods = sales_series.DEFAULT_TEST_PERIODS[freq] if test_periods is None else test_periods
    if isinstance(test_periods, bool) or not isinstance(test_periods, int) or test_periods < 1:
        raise ConfigurationError(f"--test-periods must be a positive integer, got {test_periods!r}")
    if n_trials is not None and n_trials < 1:
        raise ConfigurationError(f"--n-trials must be at least 1, got {n_trials}")
    if series is None and (date_column or value_column or id_column or registered_model):
        raise ConfigurationError("--date-column, --value-column, --id-column and --registered-model go with --series")
    model_name = byo_model_name(Path(series), registered_model) if series is not None else None
    series_set, digest, log_inputs = load_series_set(data_dir, series, date_column, value_column, id_column, freq)
    season = series_set.season
    if not any(len(s) > test_periods + 1 for s in series_set.series.values()):
        longest = max(len(s) for s in series_set.series.values())
        raise ConfigurationError(f"--test-periods {test_periods} leaves no training periods: the longest series has "
                                 f"{longest} {sales_series.FREQ_NAMES[freq]} periods")
    primary = [name for name in series_set.categories]
    deadline = time.monotonic() + timeout if timeout else None

    params = {"freq": freq, "season": season, "test_periods": test_periods, "n_trials_per_series": n_trials,
              "timeout": timeout or "", "seed": seed, "differencing": differencing,
              "ic_margin": "off" if ic_margin is None else ic_margin, "n_series": len(series_set.series),
              "source": series_set.source}
    tags = {"model_type": "SARIMA per series", **{f"data.{k}": v for k, v in series_set.notes.items()}}
    if model_name:
        tags["registered_model_name"] = model_name
    # Single-threaded BLAS: the state-space matrices are tiny, and OpenBLAS threads make each likelihood
    # evaluation several times slower (6x measured on 2 busy cores).
    with threadpool_limits(limits=1, user_api="blas"), \
            family_run(FAMILY, f"sarima-{study_name}", params=params, tags=tags) as run:
        log_inputs()
        outcomes: list[SeriesOutcome] = []
        names = list(series_set.series)
        for i, name in enumerate(names):
            values = series_set.series[name]
            with mlflow.start_run(run_name=f"series-{slug(name)}", nested=True, tags={"series": name}):
                try:
                    outcome = _process_series(
                        name, values, season, test_periods, freq, n_trials=n_trials,
                        timeout=_budget(deadline, len(names) - i), seed=seed, storage=storage, study_name=study_name,
                        differencing=differencing, ic_margin=ic_margin)
                except Exception as exc:  # noqa: BLE001 - one odd series never stops the job
                    logger.exception("series %s failed; serving its seasonal naive forecast", name)
                    outcome = _fallback_outcome(name, values, season, freq, exc)
            outcomes.append(outcome)

        scored = [o for o in outcomes if o.name in primary and o.n_test]
        means, baseline_means = _mean_scores(scored, "scores"), _mean_scores(scored, "baseline_scores")
        mlflow.log_metrics({f"test_{k}": v for k, v in means.items()})
        mlflow.log_metrics({f"baseline_test_{k}": v for k, v in baseline_means.items()})
        mlflow.log_metrics({"n_series_scored": len(scored), "n_series_fallback": sum(bool(o.reason) for o in outcomes),
                            "tuning_seconds": time.monotonic() - started})
        table = _summary_table(outcomes, set(primary))
        # as text: mlflow.log_table trips a pandas 3 deprecation warning on string columns
        mlflow.log_text(table.to_json(orient="records", indent=1), "series_summary.json")
        mlflow.log_text(table.to_csv(index=False), "series_summary.csv")
        panels = [o.panel for o in outcomes if o.panel is not None]
        if panels:
            log_figure(report.grid_figure(panels), "plots/forecasts_grid.png")
        _log_holdout(series_set, outcomes, [o.name for o in scored if "mape" in o.scores], test_periods, digest)

        expected = _training_forecasts(series_set, outcomes, ROUND_TRIP_STEPS)
        mlflow.log_text(expected.to_csv(index=False), "forecasts/next_periods.csv")
        info, size = _log_model(outcomes, freq)
        check_round_trip(info.model_uri, expected)
        mlflow.set_tag("round_trip_check", f"passed ({len(outcomes)} series x {ROUND_TRIP_STEPS} steps, "
                                           f"rtol {ROUND_TRIP_RTOL:g})")
        mlflow.log_metrics({"model_artifact_bytes": size, "wall_seconds": time.monotonic() - started})

        test_value = means.get("mape", math.nan)
        baseline_value = baseline_means.get("mape", math.nan)
        if math.isnan(test_value):
            logger.warning("test MAPE is undefined for every series (zero actuals?); the gate will not register it")
        result = TrainResult(
            family=FAMILY, run_id=run.info.run_id, model_uri=info.model_uri, primary_metric="mape",
            test_value=test_value, baseline_value=baseline_value, higher_is_better=False, data_digest=digest,
            registered_model=model_name,
            extra={"test_metrics": means, "baseline_test_metrics": baseline_means,
                   "series": {o.name: {"model": o.label, "reason": o.reason, **{f"test_{k}": v
                                                                                for k, v in o.scores.items()}}
                              for o in outcomes},
                   "model_id": getattr(info, "model_id", None), "model_artifact_bytes": size,
                   "n_series": len(outcomes), "n_scored": len(scored), "wall_seconds": time.monotonic() - started},
        )
    logger.info("SARIMA: mean test mape %.4f (seasonal naive %.4f) over %d series; model %s",
                test_value, baseline_value, len(scored), info.model_uri)
    return result


def train_from_args(args: argparse.Namespace):
    """Run the studies and the final fits for the parsed options of :func:`add_arguments`; registers nothing."""
    return train(args.data_dir or None, n_trials=args.n_trials, timeout=args.timeout, seed=args.seed,
                 storage=args.storage or None, freq=args.freq or "M", test_periods=args.test_periods,
                 series=args.series or None, date_column=args.date_column or None,
                 value_column=args.value_column or None, id_column=args.id_column or None,
                 registered_model=args.registered_model or None, study_name=args.study_name or "sarima",
                 differencing=args.differencing or "tests", ic_margin=getattr(args, "ic_margin", DEFAULT_IC_MARGIN))


def run(args) -> int:
    from pipelines import registry

    result = train_from_args(args)
    verdict = registry.register_and_say(result)
    print(f"SARIMA: test mape {result.test_value:.4f} (seasonal naive {result.baseline_value:.4f}) averaged over "
          f"{result.extra['n_scored']} series; {verdict}; run {result.run_id}")
    for name, info in result.extra["series"].items():
        mape = info.get("test_mape")
        print(f"  {name:20s} {info['model']:55s} test mape {'-' if mape is None else f'{mape:.4f}'}"
              f"{'  (' + info['reason'] + ')' if info['reason'] else ''}")
    return 0
