"""Tune, evaluate and log SARIMA sales forecasts, one model per series (``train_sarima``).

Reads the transactions in ``--data-dir`` (default ``data/generated``) and sums the amount per category per
period (``--freq`` M, W or D; seasonal period 12, 52 or 7) plus the shop total ``All``
(:mod:`pipelines.sarima.series`); or, with ``--series``, the user's CSV of one or more series
(``--date-column``, ``--value-column``, ``--id-column``).

For each series the last ``--test-periods`` periods (default 6 monthly, 8 weekly, 14 daily) are the test
and never reach the search. An Optuna study (``--n-trials`` per series, ``--timeout`` seconds for the whole
job) chooses the orders, the trend and a log/none transform by rolling-origin cross-validation on the
training periods (:mod:`pipelines.sarima.tuning`; the steps are in :mod:`pipelines.sarima.steps`); short or constant series fall back to a non-seasonal
ARIMA, then to the seasonal naive forecast, and say why. The winner is refit on all training periods and
scored once on the test (``test_mape``, ``test_smape``, ``test_mase``, ``test_rmse``,
``test_interval_coverage`` of the 95% interval), next to the seasonal naive forecast of the same periods
(``baseline_test_*``). The served model keeps those parameters (fitted on the training periods, so its
test metrics describe exactly what is served) and runs the Kalman filter through the *whole* series
(training and test periods), so its forecasts start right after the last observed period.

Logs one parent run in the experiment ``storefront-sarima`` holding the data inputs, the averaged test and
baseline metrics (over the category series; the shop total ``All`` is scored and served but not averaged),
a table of every series, the grid figure of all forecasts, the held-out data for re-scoring (``holdout/``)
and the pyfunc model ``model`` (``models/sarima/pyfunc.py``), checked by loading it back and comparing its
forecasts with the training-time ones. Under it, one nested run per series holds that series' study (one
nested run per trial with its CV score and its statsmodels warning counts), its choice, fallback reason,
test metrics and figure. :func:`train` registers nothing: it returns a ``TrainResult`` for the
registration gate; the command (``run``) then registers the model as ``<name>@challenger`` when its mean test
MAPE beats the seasonal naive forecast's, and prints the verdict. A model of a ``--series`` file registers as
``--registered-model`` (default ``storefront-sarima-<file stem>``), never as ``storefront-sarima``.
"""

from __future__ import annotations

import argparse
import logging
import time

from pipelines.families import get


logger = logging.getLogger(__name__)

FAMILY = get("sarima")
SERIES_VIEW = "series"  # the experiment's shared view of the latest job's series, best test MAPE first


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pathlib import Path

    from pipelines.options import add_study_options, whole_number
    from pipelines.sarima import IC_MARGIN

    add_study_options(parser, FAMILY, study_name="sarima", per=" per series",
                      timeout_help="seconds for the whole job's searches, shared out between the series still to tune")
    parser.add_argument("--freq", default="M", choices=["M", "W", "D"],
                        help="period: M monthly (season 12), W weekly (52), D daily (7) (default M)")
    parser.add_argument("--test-periods", type=whole_number, default=None,
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
    parser.add_argument("--differencing", default="tests", choices=["tests", "search"],
                        help="tests: d and D from the KPSS and seasonal-strength tests (default); search: let "
                             "Optuna choose them too")
    parser.add_argument("--ic-margin", type=ic_margin_arg, default=IC_MARGIN,
                        help="AICc screen: prune specs more than this many AICc units above the best of their "
                             "transform and differencing, and choose among those within it by the CV score "
                             f"(default {IC_MARGIN:g}; 'off' for the CV score alone)")


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


def config_from_args(args: argparse.Namespace):
    """The checked :class:`pipelines.sarima.steps.SarimaConfig` of the parsed options."""
    from pipelines.errors import ConfigurationError
    from pipelines.families import own_model_name
    from pipelines.options import StudyOptions
    from pipelines.sarima import series as sales_series
    from pipelines.sarima.steps import SarimaConfig

    sales_series.check_freq(args.freq)
    test_periods = sales_series.DEFAULT_TEST_PERIODS[args.freq] if args.test_periods is None else args.test_periods
    if test_periods < 1:
        raise ConfigurationError(f"--test-periods must be a positive integer, got {test_periods!r}")
    if args.n_trials is not None and args.n_trials < 1:
        raise ConfigurationError(f"--n-trials must be at least 1, got {args.n_trials}")
    if args.series is None and (args.date_column or args.value_column or args.id_column or args.registered_model):
        raise ConfigurationError("--date-column, --value-column, --id-column and --registered-model go with --series")
    registered = own_model_name(FAMILY.name, args.series, args.registered_model) if args.series is not None else None
    return SarimaConfig(study=StudyOptions.from_args(args), data_dir=args.data_dir, freq=args.freq,
                        test_periods=test_periods, series=args.series, date_column=args.date_column,
                        value_column=args.value_column, id_column=args.id_column, registered_model=registered,
                        differencing=args.differencing, ic_margin=args.ic_margin)


def train(config):
    """The steps of :mod:`pipelines.sarima.steps` in the family's parent run; returns the ``TrainResult``."""
    import math

    import mlflow
    from threadpoolctl import threadpool_limits

    from pipelines.errors import ConfigurationError
    from pipelines.mlflow_logging import TrainResult, family_run, log_figure
    from pipelines.sarima import report, steps
    from pipelines.sarima.series import FREQ_NAMES
    from pipelines.study import share_view

    started = time.monotonic()
    series_set, digest, log_inputs = steps.load_series_set(config)
    if not any(len(s) > config.test_periods + 1 for s in series_set.series.values()):
        longest = max(len(s) for s in series_set.series.values())
        raise ConfigurationError(f"--test-periods {config.test_periods} leaves no training periods: the longest "
                                 f"series has {longest} {FREQ_NAMES[config.freq]} periods")
    study = config.study
    params = {"freq": config.freq, "season": series_set.season, "test_periods": config.test_periods,
              "n_trials_per_series": study.n_trials, "timeout": study.timeout or "", "seed": study.seed,
              "differencing": config.differencing, "ic_margin": "off" if config.ic_margin is None else config.ic_margin,
              "n_series": len(series_set.series), "source": series_set.source}
    tags = {"model_type": "SARIMA per series", **{f"data.{k}": v for k, v in series_set.notes.items()}}
    if config.registered_model:
        tags["registered_model_name"] = config.registered_model
    # Single-threaded BLAS: the state-space matrices are tiny; BLAS threads only add overhead (docs/sarima.md).
    what = f"on {config.series.name}" if config.series is not None else "per category"
    with threadpool_limits(limits=1, user_api="blas"), \
            family_run(FAMILY.name, f"{FAMILY.title} {FREQ_NAMES[config.freq]} {what}, {len(series_set.series)} series",
                       params=params, tags=tags) as run:
        log_inputs()
        outcomes = tune_every_series(series_set, config)
        primary = set(series_set.categories)
        scored = [o for o in outcomes if o.name in primary and o.n_test]
        means, baseline_means = steps.mean_scores(scored, "scores"), steps.mean_scores(scored, "baseline_scores")
        mlflow.log_metrics({f"test_{k}": v for k, v in means.items()})
        mlflow.log_metrics({f"baseline_test_{k}": v for k, v in baseline_means.items()})
        mlflow.log_metrics({"n_series_scored": len(scored), "n_series_fallback": sum(bool(o.reason) for o in outcomes),
                            "tuning_seconds": time.monotonic() - started})
        table = steps.summary_table(outcomes, primary)
        # as text: mlflow.log_table trips a pandas 3 deprecation warning on string columns
        mlflow.log_text(table.to_json(orient="records", indent=1), "series_summary.json")
        mlflow.log_text(table.to_csv(index=False), "series_summary.csv")
        panels = [o.panel for o in outcomes if o.panel is not None]
        if panels:
            log_figure(report.grid_figure(panels), "plots/forecasts_grid.png")
        steps.log_test_data(series_set, outcomes, [o.name for o in scored if "mape" in o.scores],
                            config.test_periods, digest)
        share_view(run.info.experiment_id, SERIES_VIEW,
                   f"tags.role = 'series' AND tags.`mlflow.parentRunId` = '{run.info.run_id}'", "test_mape",
                   ascending=True, columns=["metrics.`baseline_test_mape`", "tags.`model`", "tags.`fallback_reason`"])
        info, size = steps.log_model(series_set, outcomes)
        mlflow.log_metrics({"model_artifact_bytes": size, "wall_seconds": time.monotonic() - started})

    test_value, baseline_value = means.get("mape", math.nan), baseline_means.get("mape", math.nan)
    if math.isnan(test_value):
        logger.warning("test MAPE is undefined for every series (zero actuals?); the gate will not register it")
    logger.info("SARIMA: mean test mape %.4f (seasonal naive %.4f) over %d series; model %s",
                test_value, baseline_value, len(scored), info.model_uri)
    return TrainResult(
        family=FAMILY.name, run_id=run.info.run_id, model_uri=info.model_uri, primary_metric=FAMILY.primary_metric,
        test_value=test_value, baseline_value=baseline_value, higher_is_better=FAMILY.higher_is_better,
        data_digest=digest, registered_model=config.registered_model,
        extra={"test_metrics": means, "baseline_test_metrics": baseline_means,
               "series": {o.name: {"model": o.label, "reason": o.reason,
                                   **{f"test_{k}": v for k, v in o.scores.items()}} for o in outcomes},
               "model_id": getattr(info, "model_id", None), "model_artifact_bytes": size,
               "n_series": len(outcomes), "n_scored": len(scored), "wall_seconds": time.monotonic() - started},
        split=(f"the last {config.test_periods} {FREQ_NAMES[config.freq]} periods of each series are the test; each "
               "series' model is chosen by rolling-origin cross-validation on the periods before them (one study per "
               "series, in its nested run); the test score is the mean over the category series"),
        baseline="the seasonal naive forecast",
    )


def tune_every_series(series_set, config) -> list:
    """Each series in a nested run of its own; one odd series falls back to seasonal naive, never stops the job."""
    import mlflow

    from pipelines.sarima import steps

    deadline = time.monotonic() + config.study.timeout if config.study.timeout else None
    outcomes, names = [], list(series_set.series)
    for i, name in enumerate(names):
        values = series_set.series[name]
        with mlflow.start_run(run_name=f"series {name}", nested=True, tags={"series": name, "role": "series"}) as run:
            try:
                outcome = steps.process_series(name, values, series_set.season, config,
                                               steps.series_budget(deadline, len(names) - i))
            except Exception as exc:  # noqa: BLE001 - one odd series never stops the job
                logger.exception("series %s failed; serving its seasonal naive forecast", name)
                outcome = steps.fallback_outcome(name, values, series_set.season, config.freq, exc)
            mlflow.MlflowClient().update_run(run.info.run_id, name=f"{name}: {outcome.label}")
        outcomes.append(outcome)
    return outcomes


def summary(result, verdict: str) -> str:
    """The command's closing lines (after :func:`train` and the registration gate): the mean, then each series."""
    lines = [f"SARIMA: test mape {result.test_value:.4f} (seasonal naive {result.baseline_value:.4f}) averaged over "
             f"{result.extra['n_scored']} series; {verdict}; run {result.run_id}"]
    for name, info in result.extra["series"].items():
        mape = info.get("test_mape")
        lines.append(f"  {name:20s} {info['model']:55s} test mape {'-' if mape is None else f'{mape:.4f}'}"
                     f"{'  (' + info['reason'] + ')' if info['reason'] else ''}")
    return "\n".join(lines)
