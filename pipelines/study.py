"""The Optuna-with-MLflow study runner shared by every model family.

:func:`run_study` runs an Optuna study inside the active MLflow parent run:

* the baseline's test metrics are logged first (``baseline_test_<metric>``);
* each trial is a nested child run with its params, its validation metric(s) (``val_<metric>``), its
  duration and its state (tag ``trial_state``: COMPLETE, PRUNED or FAIL; failed trials carry the error
  message in the tag ``error`` and end with status FAILED, pruned ones KILLED); a failing trial never
  stops the study;
* what the objective records with ``trial.set_user_attr`` (e.g. counts of library warnings) goes to the
  trial's run too: finite numbers as metrics, anything else as tags;
* a progress line per trial goes to the log;
* afterwards the parent gets the best value(s) as ``val_<metric>``, the best params as ``best_<param>``
  params, the tag ``best_trial``, the trials table, and figures (optimisation history, parameter
  importances, and the Pareto front for two objectives).

Objectives only compute scores: they never call MLflow or the registry. A storage URL (``sqlite:///...``,
``postgresql://...``) makes the study resumable and shareable: several processes started with the same
storage and study name work on one study, each in its own parent run.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import mlflow
import optuna
import pandas as pd

from pipelines.errors import ConfigurationError, StudyFailedError
from pipelines.mlflow_logging import log_figure
from pipelines.options import StudyOptions

logger = logging.getLogger(__name__)

Objective = Callable[[optuna.Trial], float | Sequence[float]]


@dataclass
class StudyResult:
    study: optuna.Study
    best_trials: list[optuna.trial.FrozenTrial]
    n_complete: int
    n_pruned: int
    n_failed: int

    @property
    def best_params(self) -> dict:
        return dict(self.best_trials[0].params)

    @property
    def best_value(self) -> float:
        return self.best_trials[0].values[0]


def _redact(url: str | None) -> str:
    if not url or "@" not in url:
        return url or "in-memory"
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


def _metric_value(value) -> float:
    return float(value) if value is not None and math.isfinite(float(value)) else float("nan")


def _user_attrs(trial: optuna.Trial) -> tuple[dict[str, float], dict[str, str]]:
    """The objective's ``trial.set_user_attr`` values: finite numbers (metrics) and the rest as text (tags)."""
    numbers, texts = {}, {}
    for key, value in trial.user_attrs.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isfinite(float(value)):
                numbers[key] = float(value)
        else:
            texts[key] = str(value)[:5000]
    return numbers, texts


class _TrackedObjective:
    """Wraps an objective so that each call is a nested MLflow run; counts the states for the progress line."""

    def __init__(self, objective: Objective, metrics: Sequence[str], n_trials: int | None):
        self.objective = objective
        self.metrics = list(metrics)
        self.n_trials = n_trials
        self.started = time.monotonic()

    def __call__(self, trial: optuna.Trial):
        t0 = time.monotonic()
        mlflow.start_run(run_name=f"trial-{trial.number:03d}", nested=True, tags={"trial_number": str(trial.number)})
        state, status, error, values = "COMPLETE", "FINISHED", None, None
        try:
            values = self.objective(trial)
            vals = values if isinstance(values, (list, tuple)) else [values]
            if not all(math.isfinite(float(v)) for v in vals):
                raise ValueError(f"objective returned a non-finite value {values!r}")
            return values
        except optuna.TrialPruned:
            state, status = "PRUNED", "KILLED"
            raise
        except Exception as exc:
            state, status, error = "FAIL", "FAILED", f"{type(exc).__name__}: {exc}"
            raise
        except BaseException as exc:  # Ctrl-C or SIGTERM during the trial: the study stops here
            state, status, error = "INTERRUPTED", "KILLED", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            try:
                self._log_trial(trial, state, values, error, t0)
            finally:  # ended here, not by a `with` block, which would mark pruned and interrupted trials FAILED
                mlflow.end_run(status)
            self._progress(trial.number, state, values, error, time.monotonic() - t0)

    def _log_trial(self, trial: optuna.Trial, state: str, values, error: str | None, t0: float) -> None:
        if trial.params:
            mlflow.log_params(trial.params)
        metrics = {"duration_s": time.monotonic() - t0}
        if values is not None and state == "COMPLETE":
            vals = values if isinstance(values, (list, tuple)) else [values]
            metrics.update({f"val_{m}": _metric_value(v) for m, v in zip(self.metrics, vals)})
        numbers, texts = _user_attrs(trial)
        metrics.update(numbers)
        mlflow.log_metrics(metrics)
        if texts:
            mlflow.set_tags(texts)
        mlflow.set_tag("trial_state", state)
        if error:
            mlflow.set_tag("error", error[:4000])

    def _progress(self, number, state, values, error, seconds):
        total = f"/{self.n_trials}" if self.n_trials else ""
        if state == "COMPLETE":
            vals = values if isinstance(values, (list, tuple)) else [values]
            detail = " ".join(f"val_{m}={float(v):.4f}" for m, v in zip(self.metrics, vals))
        elif state == "FAIL":
            detail = f"failed: {error}"
        elif state == "INTERRUPTED":
            detail = f"({error})"
        else:
            detail = ""
        logger.info("trial %d%s %s %s (%.1fs, %.0fs elapsed)", number + 1, total, state.lower(), detail,
                    seconds, time.monotonic() - self.started)


def run_study(
    objective: Objective,
    *,
    options: StudyOptions,
    metrics: str | Sequence[str],
    directions: str | Sequence[str],
    baseline: Mapping[str, float] | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    enqueue: Sequence[Mapping[str, object]] = (),
) -> StudyResult:
    """Run ``objective`` in an Optuna study tracked under the active MLflow run (see the module docstring).

    ``metrics``/``directions`` name the objective's value(s) (``"rmse"``/``"minimize"``, or two of each for a
    two-objective study). ``options`` holds the study's name, budget (``n_trials`` and ``timeout`` in seconds; at
    least one must be set), seed and storage. ``enqueue``: parameter sets tried first (e.g. the library
    defaults, so that even a tiny budget evaluates a sensible configuration); only for a new study, they count
    towards ``n_trials``.
    """
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    directions = [directions] if isinstance(directions, str) else list(directions)
    n_trials, timeout = _check_budget(options, metrics, directions)
    if mlflow.active_run() is None:
        raise RuntimeError("run_study needs an active MLflow parent run")
    if baseline:
        mlflow.log_metrics({f"baseline_test_{k}": float(v) for k, v in baseline.items()})
    mlflow.log_params({"study_name": options.study_name, "n_trials": n_trials if n_trials is not None else "",
                       "timeout": timeout if timeout is not None else "", "seed": options.seed,
                       "storage": _redact(options.storage), "objective": ",".join(metrics)})

    study, n_before = _open_study(options, directions, pruner, enqueue)
    logger.info("study %s: %s trials, timeout %s s, optimising %s", options.study_name, n_trials or "unbounded",
                timeout or "none", ", ".join(f"{d} {m}" for m, d in zip(metrics, directions)))
    study.optimize(_TrackedObjective(objective, metrics, n_trials), n_trials=n_trials, timeout=timeout,
                   catch=(Exception,))

    counts = _log_counts(study, n_before)
    best = list(study.best_trials) if len(directions) > 1 else [study.best_trial]
    _log_outcome(study, best, metrics, directions)
    return StudyResult(study, best, counts["COMPLETE"], counts["PRUNED"], counts["FAIL"])


def _check_budget(options: StudyOptions, metrics: list[str], directions: list[str]) -> tuple[int | None, float | None]:
    """``(n_trials, timeout)`` of a valid study (a timeout of 0 means none)."""
    if len(metrics) != len(directions):
        raise ConfigurationError(f"{len(metrics)} metrics but {len(directions)} directions")
    if not options.study_name:
        raise ConfigurationError("a study needs a name")
    n_trials, timeout = options.n_trials, options.timeout
    if n_trials is not None and n_trials < 1:
        raise ConfigurationError(f"n_trials must be at least 1, got {n_trials}")
    if timeout is not None and timeout <= 0:
        timeout = None
    if n_trials is None and timeout is None:
        raise ConfigurationError("set n_trials or timeout, or the study never ends")
    return n_trials, timeout


def _open_study(options: StudyOptions, directions: list[str], pruner, enqueue) -> tuple[optuna.Study, int]:
    """A new study, or the stored one of that name (resumed) when there is a storage; and its earlier trials."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=options.study_name,
        storage=options.storage,
        sampler=optuna.samplers.TPESampler(seed=options.seed),
        pruner=pruner,
        directions=directions,
        load_if_exists=options.storage is not None,
    )
    n_before = len(study.trials)
    if n_before:
        logger.info("resuming study %s with %d earlier trials from %s", options.study_name, n_before,
                    _redact(options.storage))
    else:
        for params in enqueue:
            study.enqueue_trial(dict(params), skip_if_exists=True)
    return study, n_before


def _log_counts(study: optuna.Study, n_before: int) -> dict[str, int]:
    """Log how this run's trials ended; raise :class:`StudyFailedError` when none of the study's completed."""
    trials = study.trials
    states = pd.Series([t.state.name for t in trials[n_before:]])
    counts = {s: int((states == s).sum()) for s in ("COMPLETE", "PRUNED", "FAIL")}
    mlflow.log_metrics({"n_trials_complete": counts["COMPLETE"], "n_trials_pruned": counts["PRUNED"],
                        "n_trials_failed": counts["FAIL"], "n_trials_total": len(trials)})
    if not any(t.state == optuna.trial.TrialState.COMPLETE for t in trials):
        failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
        first = failed[0].system_attrs.get("fail_reason", "") if failed else ""
        raise StudyFailedError(f"study {study.study_name}: none of {len(trials)} trials completed. {first}".strip())
    return counts


def _log_outcome(study: optuna.Study, best: list[optuna.trial.FrozenTrial], metrics: list[str],
                 directions: list[str]) -> None:
    lead = best[0]
    mlflow.set_tag("best_trial", str(lead.number))
    mlflow.log_params({f"best_{k}": v for k, v in lead.params.items()})
    mlflow.log_metrics({f"val_{m}": float(v) for m, v in zip(metrics, lead.values)})
    table = study.trials_dataframe(attrs=("number", "state", "values", "params", "duration"))
    table["duration"] = table["duration"].dt.total_seconds()
    mlflow.log_text(table.to_csv(index=False), "study/trials.csv")
    if len(best) > 1 or len(metrics) > 1:
        front = pd.DataFrame([{"trial": t.number, **{f"val_{m}": v for m, v in zip(metrics, t.values)}, **t.params}
                              for t in best])
        mlflow.log_text(front.to_csv(index=False), "study/pareto_front.csv")
    _log_study_figures(study, metrics)
    logger.info("best trial %d: %s with %s", lead.number,
                ", ".join(f"val_{m}={v:.4f}" for m, v in zip(metrics, lead.values)), lead.params)


def _log_study_figures(study: optuna.Study, metrics: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from optuna.visualization import matplotlib as ovm

    import matplotlib.pyplot as plt

    n_complete = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    # Optuna's plots switch the global style to ggplot; the rc context puts the user's style back afterwards.
    with warnings.catch_warnings(), plt.rc_context():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # Conditional search spaces (a parameter used by one branch only) make the importance evaluator warn.
        warnings.filterwarnings("ignore", message="Some regimes for parameter", category=UserWarning)
        figures = {}
        if len(metrics) == 1:
            figures["optimization_history"] = lambda: ovm.plot_optimization_history(study, target_name=f"val_{metrics[0]}")
            if n_complete >= 2:  # importances need at least two completed trials
                figures["param_importances"] = lambda: ovm.plot_param_importances(study)
        else:
            figures["pareto_front"] = lambda: ovm.plot_pareto_front(study, target_names=[f"val_{m}" for m in metrics])
            for i, m in enumerate(metrics):
                figures[f"optimization_history_{m}"] = (
                    lambda i=i, m=m: ovm.plot_optimization_history(study, target=lambda t: t.values[i],
                                                                   target_name=f"val_{m}"))
        for name, plot in figures.items():
            try:
                ax = plot()
            except (ValueError, RuntimeError, ZeroDivisionError) as exc:  # e.g. importances need 2+ varied trials
                logger.info("skipped study figure %s: %s", name, exc)
                continue
            fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
            fig.set_size_inches(8, 5)
            fig.tight_layout()
            log_figure(fig, f"study/{name}.png")
