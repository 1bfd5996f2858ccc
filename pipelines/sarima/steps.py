"""The steps of one ``train_sarima`` run, on a typed :class:`SarimaConfig`.

:func:`load_series_set` reads the shop's category series or the user's CSV; :func:`process_series` searches,
scores and exports one series in its own nested run (the search through :func:`series_search`, which tracks
each candidate model as a nested trial run); :func:`summary_table`, :func:`log_test_data` and :func:`log_model` (the
pyfunc model of every series, loaded back and compared with training's forecasts) finish the parent run.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from evaluation.splits import series_holdout
from models.sarima.contract import CONTRACT, PYFUNC_FILE
from models.sarima.model import SEASONAL_NAIVE, SeasonalNaive, export_model, export_seasonal_naive, fitted_values
from pipelines.data.tables import dataset_digest, load_tables
from pipelines.families import get, slug
from pipelines.mlflow_logging import check_round_trip, columns_agree, log_figure, log_pyfunc_model, log_tables_input
from pipelines.options import NA_VALUES, StudyOptions, TrainConfig
from pipelines.rescoring import log_holdout
from pipelines.sarima import report
from pipelines.sarima import series as sales_series
from pipelines.sarima.series import SeriesSet
from pipelines.sarima.tuning import Search, choose_model
from pipelines.study import run_study
from pipelines.tracking import default_data_dir

logger = logging.getLogger(__name__)

FAMILY = get("sarima")
ROUND_TRIP_STEPS = 12
ROUND_TRIP_RTOL = 1e-8
MODEL_REQUIREMENTS = ("numpy", "pandas", "scipy", "statsmodels")


@dataclass(frozen=True)
class SarimaConfig(TrainConfig):
    """What one ``train_sarima`` run does (the options of :mod:`pipelines.sarima.train`, checked).

    ``study.n_trials`` is the most candidate models the search fits per series; ``study.timeout`` is shared out
    between the series still to tune; ``study.study_name`` is the prefix of every series' study name. ``freq``
    None: inferred from a ``--series`` file's dates, monthly for the shop; ``season`` and ``test_periods`` None:
    the frequency's (:data:`models.sarima.frequency.FREQUENCIES`).
    """

    freq: str | None = None
    season: int | None = None
    test_periods: int | None = None
    series: Path | None = None
    date_column: str | None = None
    value_column: str | None = None
    id_column: str | None = None
    na_values: tuple[str, ...] = NA_VALUES  # missing-value markers of --series (blank cells always)
    registered_model: str | None = None


def series_search(name: str, study: StudyOptions) -> Search:
    """The ``search`` of :func:`pipelines.sarima.tuning.choose_model` for series ``name``: an Optuna study in the
    active (series) run, one nested run per candidate model (its orders as params, ``val_aicc``, its fit's
    warnings and time as tags), so the MLflow UI compares the candidates like any study's trials."""

    def search(objective, plan, *, enqueue, timeout: float | None, budget: int | None):
        options = replace(study, study_name=f"{study.study_name}-{slug(name)}", timeout=timeout, n_trials=budget)
        return run_study(objective, options=options, metrics="aicc", directions="minimize", enqueue=enqueue,
                         share_view=False)

    return search


def series_budget(deadline: float | None, remaining_series: int) -> float | None:
    """Seconds of search left for the next series: the rest of the job's budget shared out evenly."""
    if deadline is None:
        return None
    return max(1.0, (deadline - time.monotonic()) / max(remaining_series, 1))


@dataclass
class SeriesOutcome:
    """Everything the job keeps about one series."""

    name: str
    run_id: str
    served: object  # models.sarima.model.SeriesModel
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


def process_series(name: str, values: pd.Series, season: int, config: SarimaConfig,
                   timeout: float | None, freq: str, test_periods: int, counts: dict | None = None) -> SeriesOutcome:
    """Search, score and export one series inside its own nested run (the active run when called)."""
    y = values.to_numpy(dtype=float)
    last_period = values.index[-1].date().isoformat()
    train, test = series_holdout(values, test_periods)
    n_test = len(test)
    y_train, y_test = train.to_numpy(float), test.to_numpy(float)
    mlflow.log_params({"series": name, "n_periods": y.size, "n_train": y_train.size, "n_test": n_test,
                       "season": season, "first_period": values.index[0].date().isoformat(),
                       "last_period": last_period})
    mlflow.log_metrics({**{k: v for k, v in (counts or {}).items()},
                        "n_missing_train": int(np.isnan(y_train).sum()), "n_missing_test": int(np.isnan(y_test).sum())})
    if n_test == 0:
        reason = f"too short to hold out {test_periods} test periods ({y.size} periods): seasonal naive, not scored"
        served = export_seasonal_naive(name, y, freq=freq, season=season, last_period=last_period, reason=reason)
        mlflow.set_tags({"fallback_reason": reason, "model": served.describe(), "model_kind": served.kind})
        return SeriesOutcome(name, mlflow.active_run().info.run_id, served, served.describe(), served.kind, reason,
                             y.size, 0)

    naive = SeasonalNaive(season).fit(y_train).forecast(n_test)
    baseline_scores, _ = report.score_forecast(y_train, y_test, naive, season)
    mlflow.log_metrics({f"baseline_test_{k}": float(v) for k, v in baseline_scores.items()})
    search = series_search(name, config.study.named("sarima"))
    started = time.monotonic()
    choice = choose_model(y_train, season, search, timeout=timeout, budget=config.study.n_trials, name=name)
    search_seconds = time.monotonic() - started
    # The served model: the members fitted on the training periods (so the test metrics describe what is served),
    # with the Kalman states run through the whole series, so forecasts start after the last period and
    # re-scoring the model on this run's held-out data reproduces its test metrics exactly.
    served = export_model(name, y, choice.members, freq=freq, season=season, last_period=last_period,
                          reason=choice.reason)
    forecast = served.forecast_from_history(y_train, n_test)
    if choice.best is not None:
        best = choice.best.spec
        fitted = fitted_values(y_train, best, choice.best.params)
        mlflow.log_params({"chosen_order": str(best.order), "chosen_seasonal_order": str(best.seasonal_order),
                           "chosen_trend": best.trend, "chosen_transform": best.transform})
        mlflow.log_metrics({"chosen_aicc": choice.best.aicc, "train_fit_warnings": choice.best.n_warnings})
    else:
        fitted = np.full(y_train.size, np.nan)
        lag = season if y_train.size > season else 1
        fitted[lag:] = y_train[:-lag]
    mlflow.log_metrics({"n_candidates": choice.n_candidates, "n_members": len(served.members),
                        "seasonal_naive_weight": sum(m.weight for m in served.members if m.kind == SEASONAL_NAIVE),
                        "search_seconds": search_seconds})
    mlflow.log_text(json.dumps([{"model": m.label(), "weight": round(m.weight, 6),
                                 **({"aicc": choice.fits[m.spec].aicc} if m.spec in choice.fits else {})}
                                for m in served.members], indent=1), "members.json")
    scores, undefined = report.score_forecast(y_train, y_test, forecast, season)
    mlflow.log_metrics({f"test_{k}": v for k, v in scores.items()})

    tags = {"model": served.describe()[:5000], "model_kind": served.kind, "tuning_mode": choice.plan.mode}
    if choice.reason:
        tags["fallback_reason"] = choice.reason[:5000]
    if undefined:
        tags["undefined_metrics"] = "; ".join(f"{k}: {v}" for k, v in undefined.items())[:5000]
    mlflow.set_tags(tags)
    mlflow.log_metric("served_observations", len(served.observations))

    panel = report.SeriesPanel(name, train, test, fitted, forecast, naive.mean, served.describe())
    log_figure(report.series_figure(panel), "plots/forecast.png")
    logger.info("series %s: %s, test %s (seasonal naive %s)%s", name, served.describe(),
                ", ".join(f"{k}={v:.4f}" for k, v in scores.items()),
                ", ".join(f"{k}={v:.4f}" for k, v in baseline_scores.items()),
                f"; fallback: {choice.reason}" if choice.reason else "")
    return SeriesOutcome(name, mlflow.active_run().info.run_id, served, served.describe(), served.kind,
                         choice.reason, y_train.size, n_test, scores, baseline_scores, undefined, panel,
                         choice.n_candidates)


def fallback_outcome(name: str, values: pd.Series, season: int, freq: str, exc: Exception) -> SeriesOutcome:
    """A series whose processing failed unexpectedly is served by the seasonal naive forecast (never stops the job)."""
    reason = f"error while tuning: {type(exc).__name__}: {exc}"
    served = export_seasonal_naive(name, values.to_numpy(float), freq=freq, season=season,
                                   last_period=values.index[-1].date().isoformat(), reason=reason)
    mlflow.set_tags({"fallback_reason": reason[:5000], "model": served.describe(), "model_kind": served.kind})
    return SeriesOutcome(name, mlflow.active_run().info.run_id, served, served.describe(), served.kind, reason,
                         len(values), 0)


def mean_scores(outcomes: list[SeriesOutcome], attribute: str) -> dict[str, float]:
    """The mean of each test metric over the outcomes (``scores`` or ``baseline_scores``)."""
    means = {}
    for metric in report.TEST_METRICS:
        values = [getattr(o, attribute)[metric] for o in outcomes if metric in getattr(o, attribute)]
        if values:
            means[metric] = float(np.mean(values))
    return means


def summary_table(outcomes: list[SeriesOutcome], primary: set[str]) -> pd.DataFrame:
    """One row per series: its model, counts, fallback reason and test scores next to the baseline's."""
    rows = []
    for o in outcomes:
        row = {"series": o.name, "averaged": o.name in primary, "model": o.label, "kind": o.kind,
               "n_train": o.n_train, "n_test": o.n_test, "n_trials": o.n_trials, "fallback_reason": o.reason,
               "run_id": o.run_id}
        row.update({f"test_{k}": v for k, v in o.scores.items()})
        row.update({f"baseline_test_{k}": v for k, v in o.baseline_scores.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def log_test_data(series_set: SeriesSet, outcomes: list[SeriesOutcome], primary: list[str], test_periods: int,
                  digest: str) -> None:
    """The test periods of the averaged series (and their training history) for champion re-scoring."""
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
                {"family": FAMILY.name, "metric": FAMILY.primary_metric, "freq": series_set.freq, "test_periods": test_periods,
                 "data_digest": digest, "series": primary})


def training_forecasts(series_set: SeriesSet, outcomes: list[SeriesOutcome], steps: int,
                       confidence: float = 0.95) -> pd.DataFrame:
    """Forecasts of every series from its full-data model, computed in training (for the round-trip check)."""
    frames = []
    for o in outcomes:
        served = o.served
        forecast = served.forecast_from_history(series_set.series[o.name].to_numpy(float), steps, confidence)
        frames.append(pd.DataFrame({"category": o.name, "period": served.periods(steps),
                                    "step": np.arange(1, steps + 1), "forecast": forecast.mean,
                                    "lower": forecast.lower, "upper": forecast.upper}))
    return pd.concat(frames, ignore_index=True)


def log_model(series_set: SeriesSet, outcomes: list[SeriesOutcome]):
    """The pyfunc model of every series, checked against training's forecasts; returns ``(ModelInfo, bytes)``."""
    freq = series_set.freq
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "series.json"
        path.write_text(json.dumps({"freq": freq, "series": [o.served.to_dict() for o in outcomes]}),
                        encoding="utf-8")
        size = path.stat().st_size
        info = log_pyfunc_model(PYFUNC_FILE, name=FAMILY.logged_model, artifacts={"series": str(path)},
                                input_example=pd.DataFrame({"category": [outcomes[0].name], "horizon": [3]}),
                                requirements=MODEL_REQUIREMENTS, signature=CONTRACT.signature())
    expected = training_forecasts(series_set, outcomes, ROUND_TRIP_STEPS)
    mlflow.log_text(expected.to_csv(index=False), "forecasts/next_periods.csv")
    names = list(dict.fromkeys(expected["category"]))
    requests = pd.DataFrame({"category": names, "horizon": [ROUND_TRIP_STEPS] * len(names)})
    check_round_trip(info.model_uri, requests, expected,
                     columns_agree(["forecast", "lower", "upper"], rtol=ROUND_TRIP_RTOL, exact=["category", "period"]))
    return info, size


def load_series_set(config: SarimaConfig):
    """``(series_set, digest, log_inputs)``: the shop's category series or the user's CSV series."""
    series, freq = config.series, config.freq
    if series is not None:
        series_set = sales_series.read_series_csv(series, config.date_column, config.value_column,
                                                  config.id_column, freq, config.na_values)
        series_set.season_override = config.season
        digest = dataset_digest({"series": series_set.frame()})

        def log_inputs():
            mlflow.set_tags({"data_digest": digest, "series_file": str(series)})
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=UserWarning, module="mlflow")
                mlflow.log_input(mlflow.data.from_pandas(series_set.frame(), source=str(Path(series).resolve()),
                                                         name=f"{Path(series).stem}-{digest}"), context="training")
        return series_set, digest, log_inputs

    data_dir = config.data_dir or default_data_dir()
    tables = load_tables(data_dir, events=False)  # sales need no events (the largest table)
    series_set = sales_series.category_series(tables["transactions"], freq or "M", source=str(data_dir / "transactions"))
    series_set.season_override = config.season
    digest = dataset_digest(tables)

    def log_inputs():
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="mlflow")
            log_tables_input(tables, data_dir, digest, names=("transactions",))
            frame = series_set.frame()
            mlflow.log_input(mlflow.data.from_pandas(frame, source=str(data_dir / "transactions"),
                                                     name=f"sales-{series_set.freq}-{digest}"), context="training")
    return series_set, digest, log_inputs


