"""Search, evaluate and log SARIMA sales forecasts, one model per series (``train_sarima``).

Reads the transactions in ``--data-dir`` (default ``data/generated``) and sums the amount per category per
period (``--freq``, default M; Y, Q, M, W or D) plus the shop total ``All`` (:mod:`pipelines.sarima.series`); or,
with ``--series``, the user's CSV of one or more series (``--date-column``, ``--value-column``, ``--id-column``),
whose frequency is inferred from its dates and whose missing values stay missing (``--na-values``). The seasonal
period is the frequency's (1, 4, 12, 52, 7) unless ``--season`` sets it.

For each series the last ``--test-periods`` periods (default: the frequency's, 6 monthly) are the test and never
reach the search. A stepwise AICc search (:mod:`pipelines.sarima.tuning`; at most ``--n-trials`` candidate models
per series, ``--timeout`` seconds for the whole job; one Optuna trial and one nested run per candidate) chooses
the orders, the constant and a log/none transform on the training periods; the series serves the Akaike-weighted
average of the best candidates, and a short series that average and the seasonal naive forecast in equal parts.
It is scored once on the test (``test_mape``, ``test_smape``, ``test_mase``, ``test_rmse``,
``test_interval_coverage`` of the 95% interval; missing test periods skipped), next to the seasonal naive forecast
of the same periods (``baseline_test_*``). The served model keeps those parameters (fitted on the training
periods, so its test metrics describe exactly what is served) and runs the Kalman filter through the *whole*
series, so its forecasts start right after the last observed period.

Logs one parent run in the experiment ``storefront-sarima`` holding the data inputs, the averaged test and
baseline metrics (over the category series; the shop total ``All`` is scored and served but not averaged),
a table of every series, the grid figure of all forecasts, the held-out data for re-scoring (``holdout/``)
and the pyfunc model ``model`` (``models/sarima/pyfunc.py``), checked by loading it back and comparing its
forecasts with the training-time ones. Under it, one nested run per series holds its search (one nested run per
candidate with its AICc and its statsmodels warning counts), its members, fallback reason, missing-value counts,
test metrics and figure. :func:`train` registers nothing: it returns a ``TrainResult`` for the registration gate;
the command (``run``) then registers the model as ``<name>@challenger`` when its mean test MAPE beats the seasonal
naive forecast's, and prints the verdict (with what to try when it does not). A model of a ``--series`` file
registers as ``--registered-model`` (default ``storefront-sarima-<file stem>``), never as ``storefront-sarima``.
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

    from models.sarima.frequency import FREQUENCIES
    from pipelines.options import add_na_values, add_study_options, whole_number

    add_study_options(parser, FAMILY, study_name="sarima", per=": candidate models per series, at most",
                      timeout_help="seconds for the whole job's searches, shared out between the series still to tune",
                      workers=False)  # one study per series: not a study that workers can share
    parser.add_argument("--freq", default=None, choices=list(FREQUENCIES),
                        help="period: " + ", ".join(f"{f.code} {f.name} (season {f.season})" for f in FREQUENCIES.values())
                             + " (default: inferred from the dates of --series, M for the shop)")
    parser.add_argument("--season", type=whole_number, default=None,
                        help="seasonal period in periods, 1 for none (default: the frequency's)")
    parser.add_argument("--test-periods", type=whole_number, default=None,
                        help="periods at the end of each series held out as the test (default: "
                             + ", ".join(f"{f.test_periods} {f.code}" for f in FREQUENCIES.values()) + ")")
    parser.add_argument("--series", type=Path, default=None,
                        help="a CSV of your own series instead of the shop's categories")
    parser.add_argument("--date-column", default=None, help="with --series: the column of dates")
    parser.add_argument("--value-column", default=None, help="with --series: the column of values")
    parser.add_argument("--id-column", default=None,
                        help="with --series: the column naming the series (default: one series named after the file)")
    add_na_values(parser, "--series")
    parser.add_argument("--registered-model", default=None,
                        help="with --series: registered model name (default storefront-sarima-<file stem>)")


def config_from_args(args: argparse.Namespace):
    """The checked :class:`pipelines.sarima.steps.SarimaConfig` of the parsed options."""
    from pipelines.errors import ConfigurationError
    from pipelines.families import own_model_name
    from pipelines.options import NA_VALUES, StudyOptions
    from pipelines.sarima import series as sales_series
    from pipelines.sarima.steps import SarimaConfig

    sales_series.check_freq(args.freq)
    for option, value in (("--test-periods", args.test_periods), ("--season", args.season),
                          ("--n-trials", args.n_trials)):
        if value is not None and value < 1:
            raise ConfigurationError(f"{option} must be a positive integer, got {value!r}")
    own = (args.date_column, args.value_column, args.id_column, args.registered_model, args.na_values)
    if args.series is None and any(v is not None for v in own):
        raise ConfigurationError("--date-column, --value-column, --id-column, --na-values and --registered-model go "
                                 "with --series")
    registered = own_model_name(FAMILY.name, args.series, args.registered_model) if args.series is not None else None
    return SarimaConfig(study=StudyOptions.from_args(args), data_dir=args.data_dir, freq=args.freq,
                        season=args.season, test_periods=args.test_periods, series=args.series,
                        date_column=args.date_column, value_column=args.value_column, id_column=args.id_column,
                        na_values=NA_VALUES if args.na_values is None else args.na_values,
                        registered_model=registered)


def train(config):
    """The steps of :mod:`pipelines.sarima.steps` in the family's parent run; returns the ``TrainResult``."""
    import math

    import mlflow
    from threadpoolctl import threadpool_limits

    from pipelines.errors import ConfigurationError
    from pipelines.mlflow_logging import TrainResult, family_run, log_figure
    from pipelines.sarima import report, steps
    from pipelines.study import share_view

    started = time.monotonic()
    series_set, digest, log_inputs = steps.load_series_set(config)
    frequency = series_set.frequency
    test_periods = config.test_periods or frequency.test_periods
    if not any(len(s) > test_periods + 1 for s in series_set.series.values()):
        longest = max(len(s) for s in series_set.series.values())
        raise ConfigurationError(f"--test-periods {test_periods} leaves no training periods: the longest "
                                 f"series has {longest} {frequency.name} periods")
    study = config.study
    params = {"freq": series_set.freq, "freq_source": "inferred" if series_set.freq_inferred else "option",
              "season": series_set.season, "test_periods": test_periods,
              "n_trials_per_series": study.n_trials, "timeout": study.timeout or "", "seed": study.seed,
              "n_series": len(series_set.series), "source": series_set.source}
    tags = {"model_type": "SARIMA per series", **{f"data.{k}": v for k, v in series_set.notes.items()}}
    if config.registered_model:
        tags["registered_model_name"] = config.registered_model
    # Single-threaded BLAS: the state-space matrices are tiny; BLAS threads only add overhead (docs/sarima.md).
    what = f"on {config.series.name}" if config.series is not None else "per category"
    with threadpool_limits(limits=1, user_api="blas"), \
            family_run(FAMILY.name, f"{FAMILY.title} {frequency.name} {what}, {len(series_set.series)} series",
                       params=params, tags=tags) as run:
        log_inputs()
        outcomes = tune_every_series(series_set, config, test_periods)
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
                            test_periods, digest)
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
                                   **{f"test_{k}": v for k, v in o.scores.items()},
                                   **{f"baseline_test_{k}": v for k, v in o.baseline_scores.items()}}
                          for o in outcomes},
               "test_periods": test_periods, "freq": series_set.freq,
               "model_id": getattr(info, "model_id", None), "model_artifact_bytes": size,
               "n_series": len(outcomes), "n_scored": len(scored), "wall_seconds": time.monotonic() - started},
        split=(f"the last {test_periods} {frequency.name} periods of each series are the test; each series' model "
               "is chosen by a stepwise AICc search on the periods before them (one study per series, in its nested "
               "run); the test score is the mean over the category series"),
        baseline="the seasonal naive forecast",
    )


def tune_every_series(series_set, config, test_periods: int) -> list:
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
                                               steps.series_budget(deadline, len(names) - i), series_set.freq,
                                               test_periods, series_set.counts.get(name))
            except Exception as exc:  # noqa: BLE001 - one odd series never stops the job
                logger.exception("series %s failed; serving its seasonal naive forecast", name)
                outcome = steps.fallback_outcome(name, values, series_set.season, series_set.freq, exc)
            mlflow.MlflowClient().update_run(run.info.run_id, name=f"{name}: {outcome.label}")
        outcomes.append(outcome)
    return outcomes


def summary(result, verdict: str) -> str:
    """The command's closing lines (after :func:`train` and the registration gate): the mean, then each series, and
    when the gate refused the model, why and what to try."""
    lines = [f"SARIMA: test mape {result.test_value:.4f} (seasonal naive {result.baseline_value:.4f}) averaged over "
             f"{result.extra['n_scored']} series; {verdict}; run {result.run_id}"]
    for name, info in result.extra["series"].items():
        mape, naive = info.get("test_mape"), info.get("baseline_test_mape")
        lines.append(f"  {name:20s} {info['model']:55s} test mape {'-' if mape is None else f'{mape:.4f}'}"
                     f"{'' if naive is None else f' (naive {naive:.4f})'}"
                     f"{'  (' + info['reason'] + ')' if info['reason'] else ''}")
    if verdict.startswith("not registered"):
        lines += advice(result)
    return "\n".join(lines)


def advice(result) -> list[str]:
    """Why the gate refused the series set and what to try (the series that lose to the seasonal naive forecast)."""
    import math

    series = result.extra["series"]
    losing = [n for n, i in series.items() if i.get("test_mape") is not None and i.get("baseline_test_mape") is not None
              and i["test_mape"] >= i["baseline_test_mape"]]
    n_test = result.extra.get("test_periods")
    lines = ["why: the gate registers a model whose mean test MAPE beats the seasonal naive forecast's; "
             + (f"here the seasonal naive forecast does at least as well on {len(losing)} of {len(series)} series "
                f"({', '.join(losing[:8])}{', ...' if len(losing) > 8 else ''})." if losing else
                "the mean is undefined or not lower." if math.isnan(result.test_value) else "the mean is not lower."),
             "what to try:",
             f"  - a longer test (--test-periods, now {n_test}): a test this short is noisy, one season or two judge "
             "a model more fairly;",
             "  - look at the series' figure in its run (plots/forecast.png): a level shift or an outlier near the end "
             "defeats any model fitted before it; a series that is not seasonal can use --season 1;",
             "  - the seasonal naive forecast itself is a fair forecast for series where it wins: the model is logged "
             "in the run and can still be served from its run URI (mlflow models serve -m runs:/<run>/model)."]
    return lines
