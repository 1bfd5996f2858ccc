"""The Optuna-with-MLflow study runner shared by every model family.

:func:`run_study` runs an Optuna study whose parent is the active MLflow run (tag ``role=study``):

* the baseline's test metrics are logged first (``baseline_test_<metric>``);
* each trial is a child run of the parent (tags ``role=trial``, ``study``, ``trial_number``, ``trial_state``:
  COMPLETE, PRUNED, FAIL or INTERRUPTED), written when the trial ends: its params (floats rounded for display,
  exact values in ``study/trials.csv``), its validation metric(s) (``val_<metric>``) and, from
  ``trial.set_user_attr``, validation details (``val_*`` numbers) as metrics and other diagnostics as tags.
  Complete and pruned trials end FINISHED (a pruned trial is an outcome, not a failure), failed ones FAILED with
  the message in the tag ``error``, interrupted ones KILLED. ``trial_runs="complete"`` writes runs only for
  trials that were not pruned (SARIMA prunes many orders by AICc; they stay in the trials table). A failing
  trial never stops the study. Since trial runs are written at the end, a killed process leaves no RUNNING trial;
* the parent gets the optimisation history as metrics with ``step = trial number`` (``study/val_<metric>`` and,
  for one objective, ``study/best_val_<metric>``), so the MLflow UI draws it as lines in a ``study`` section;
* a progress line per trial goes to the log;
* afterwards the parent gets the best value(s) as ``val_<metric>``, the chosen params under the trials' own
  keys, the tag ``best_trial``, the trials table, figures (optimisation history, parameter importances, the
  Pareto front for two objectives), and the experiment a shared view ``trials`` of this study's trials, best first
  (opened by :func:`trials_view_url`).

Objectives only compute scores: they never call MLflow or the registry. A storage URL (``sqlite:///...``,
``postgresql://...``) makes the study resumable and shareable.

With ``options.workers`` set the study is *shared* (:mod:`pipelines.workers`): this process queues exactly
``n_trials`` trials, starts ``workers - 1`` more worker processes (``storefront tune-worker``), runs trials with
them, and returns only when every worker and every running trial has ended; all trials of all workers are child
runs of this parent run, and the caller alone refits and registers. In a joining worker
(:func:`pipelines.workers.current_join`) ``run_study`` runs queued trials under the launcher's parent run and
then raises :class:`pipelines.workers.WorkerDone`, so the training command stops before its refit.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import socket
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import mlflow
import optuna
import pandas as pd
from mlflow.entities import Metric, Param

from pipelines.errors import ConfigurationError, StudyFailedError
from pipelines.imports import import_off_stack
from pipelines.mlflow_logging import clean_params, display_value, log_figure
from pipelines.options import StudyOptions

logger = logging.getLogger(__name__)

Objective = Callable[[optuna.Trial], float | Sequence[float]]
TRIALS_VIEW = "trials"  # the experiment's shared view of the latest study's trials
PARENT_RUN_TAG = "mlflow.parentRunId"
WORKER = f"{socket.gethostname()}:{os.getpid()}"  # which process ran a shared study's trial (tag storefront.worker)
THIN_TAG, THIN_FIX_TAG = "thin_tuning", "thin_tuning_fix"  # set by run_study when too few trials completed
COPIED_TAGS = ("mlflow.user", "mlflow.source.name", "mlflow.source.type", "mlflow.source.git.commit", "git_commit")


@dataclass
class StudyResult:
    study: optuna.Study
    best_trials: list[optuna.trial.FrozenTrial]
    n_complete: int
    n_pruned: int
    n_failed: int
    stop_reason: str = ""  # n_trials, timeout or search finished (pipelines.budget.stop_reason)
    thin: str | None = None  # what pipelines.budget.thin_advice says when fewer than the minimum of trials completed

    @property
    def best_params(self) -> dict:
        return dict(self.best_trials[0].params)

    @property
    def best_value(self) -> float:
        return self.best_trials[0].values[0]


def _redact(url: str | None) -> str:
    if not url or "@" not in url or "://" not in url:
        return url or "in-memory"
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


redact = _redact  # a storage URL without its user and password, for logs and params


def _finite(value) -> float:
    return float(value) if value is not None and math.isfinite(float(value)) else float("nan")


def _user_attrs(trial: optuna.Trial) -> tuple[dict[str, float], dict[str, str]]:
    """The objective's ``trial.set_user_attr`` values: finite ``val_*`` numbers (metrics, next to the objective)
    and everything else as text (tags), so that diagnostics never sort before the objective in the UI."""
    numbers, texts = {}, {}
    for key, value in trial.user_attrs.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if number and key.startswith("val_"):
            if math.isfinite(float(value)):
                numbers[key] = float(value)
        else:
            texts[key] = str(display_value(value))[:5000]
    return numbers, texts


class _TrackedObjective:
    """Wraps an objective: each call becomes a child run of ``parent_run_id`` (written when the trial ends) and a
    step of the parent's history metrics; counts the states for the progress line."""

    def __init__(self, objective: Objective, metrics: Sequence[str], directions: Sequence[str],
                 n_trials: int | None, study_name: str, parent_run_id: str, trial_runs: str, shared: bool = False):
        self.objective = objective
        self.metrics = list(metrics)
        self.directions = list(directions)
        self.n_trials = n_trials
        self.study_name = study_name
        self.parent_id = parent_run_id
        self.trial_runs = trial_runs
        self.client = mlflow.MlflowClient()
        parent = self.client.get_run(parent_run_id)
        self.experiment_id = parent.info.experiment_id
        self.copied_tags = {k: v for k, v in parent.data.tags.items() if k in COPIED_TAGS}
        self.best: float | None = None
        self.shared = shared  # other processes run trials too: the best so far is the study's, not ours
        self.n_run = 0  # trials this process ran
        self.started = time.monotonic()

    def __call__(self, trial: optuna.Trial):
        t0, start_ms = time.monotonic(), int(time.time() * 1000)
        if self.shared:  # which process runs it, in the study itself (a dead worker's trial names the worker)
            trial.storage.set_trial_system_attr(trial._trial_id, "storefront.worker", WORKER)
        state, status, error, values = "COMPLETE", "FINISHED", None, None
        try:
            values = self.objective(trial)
            vals = values if isinstance(values, (list, tuple)) else [values]
            if not all(math.isfinite(float(v)) for v in vals):
                raise ValueError(f"objective returned a non-finite value {values!r}")
            return values
        except optuna.TrialPruned:
            state = "PRUNED"
            raise
        except Exception as exc:
            state, status, error = "FAIL", "FAILED", f"{type(exc).__name__}: {exc}"
            raise
        except BaseException as exc:  # Ctrl-C or SIGTERM during the trial: the study stops here
            state, status, error = "INTERRUPTED", "KILLED", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            vals = None if values is None else (list(values) if isinstance(values, (list, tuple)) else [values])
            self.n_run += 1
            if self.shared and len(self.metrics) == 1:
                self.best = _study_best(trial.study)
            self._log_history(trial.number, state, vals)
            if self.trial_runs == "all" or state != "PRUNED":
                self._log_trial_run(trial, state, status, vals, error, start_ms)
            self._progress(trial.number, state, vals, error, time.monotonic() - t0)

    def _log_history(self, number: int, state: str, vals: list | None) -> None:
        """The parent's optimisation history: each complete trial's value(s), and the best so far, at step ``number``."""
        now = int(time.time() * 1000)
        batch = []
        if state == "COMPLETE" and vals is not None:
            batch += [Metric(f"study/val_{m}", _finite(v), now, number) for m, v in zip(self.metrics, vals)]
            if len(self.metrics) == 1:
                value = _finite(vals[0])
                better = min if self.directions[0] == "minimize" else max
                self.best = value if self.best is None else better(self.best, value)
        if len(self.metrics) == 1 and self.best is not None:
            batch.append(Metric(f"study/best_val_{self.metrics[0]}", self.best, now, number))
        if batch:
            self.client.log_batch(self.parent_id, metrics=batch)

    def _log_trial_run(self, trial: optuna.Trial, state: str, status: str, vals: list | None, error: str | None,
                       start_ms: int) -> None:
        tags = {**self.copied_tags, PARENT_RUN_TAG: self.parent_id, "role": "trial", "study": self.study_name,
                "trial_number": str(trial.number), "trial_state": state}
        if self.shared:
            tags["storefront.worker"] = WORKER
        numbers, texts = _user_attrs(trial)
        tags.update(texts)
        if error:
            tags["error"] = error[:4000]
        run = self.client.create_run(self.experiment_id, start_time=start_ms, run_name=f"trial {trial.number:03d}",
                                     tags=tags)
        now = int(time.time() * 1000)
        metrics = dict(numbers)
        if state == "COMPLETE" and vals is not None:
            metrics.update({f"val_{m}": _finite(v) for m, v in zip(self.metrics, vals)})
        self.client.log_batch(run.info.run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                              params=[Param(k, str(v)) for k, v in clean_params(trial.params).items()])
        self.client.set_terminated(run.info.run_id, status, end_time=now)

    def _progress(self, number, state, vals, error, seconds):
        total = f"/{self.n_trials}" if self.n_trials else ""
        if state == "COMPLETE":
            detail = " ".join(f"val_{m}={float(v):.4f}" for m, v in zip(self.metrics, vals))
        elif state == "FAIL":
            detail = f"failed: {error}"
        elif state == "INTERRUPTED":
            detail = f"({error})"
        else:
            detail = ""
        logger.info("trial %d%s %s %s (%.1fs, %.0fs elapsed)", number + 1, total, state.lower(), detail,
                    seconds, time.monotonic() - self.started)


def _study_best(study: optuna.Study) -> float | None:
    try:
        return _finite(study.best_value)
    except ValueError:  # no complete trial yet
        return None


def run_study(
    objective: Objective,
    *,
    options: StudyOptions,
    metrics: str | Sequence[str],
    directions: str | Sequence[str],
    baseline: Mapping[str, float] | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    enqueue: Sequence[Mapping[str, object]] = (),
    trial_runs: str = "all",
    share_view: bool = True,
) -> StudyResult:
    """Run ``objective`` in an Optuna study tracked under the active MLflow run (see the module docstring).

    ``metrics``/``directions`` name the objective's value(s) (``"rmse"``/``"minimize"``, or two of each for a
    two-objective study). ``options`` holds the study's name, budget (``n_trials`` and ``timeout`` in seconds; at
    least one must be set), seed and storage. ``enqueue``: parameter sets tried first (e.g. the library
    defaults, so that even a tiny budget evaluates a sensible configuration); only for a new study, they count
    towards ``n_trials``. ``trial_runs``: ``"all"`` or ``"complete"`` (no run for pruned trials). ``share_view``:
    point the experiment's shared view ``trials`` at this study (off for the many studies of one SARIMA job).
    """
    from pipelines import workers

    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    directions = [directions] if isinstance(directions, str) else list(directions)
    n_trials, timeout = _check_budget(options, metrics, directions)
    if trial_runs not in ("all", "complete"):
        raise ValueError(f"trial_runs must be 'all' or 'complete', got {trial_runs!r}")
    parent = mlflow.active_run()
    if parent is None:
        raise RuntimeError("run_study needs an active MLflow parent run")
    if (join := workers.current_join()) is not None:
        _join_study(objective, join, options, metrics, directions, pruner, timeout, trial_runs)
    if options.workers is not None and options.storage is not None and n_trials is None:
        raise ConfigurationError("--workers needs --n-trials: the shared study's total")
    tags = {"study": options.study_name, "study_directions": ",".join(directions)}
    if mlflow.MlflowClient().get_run(parent.info.run_id).data.tags.get("role", "family") == "family":
        tags["role"] = "study"  # a run that already has a role (a SARIMA series) keeps it
    mlflow.set_tags(tags)
    if baseline:
        mlflow.log_metrics({f"baseline_test_{k}": float(v) for k, v in baseline.items()})
    mlflow.log_params(clean_params({"study_name": options.study_name, "n_trials": n_trials, "timeout": timeout,
                                    "seed": options.seed, "storage": _redact(options.storage),
                                    "objective": ",".join(metrics), "workers": options.workers}))

    shared = options.workers is not None and options.storage is not None  # one worker in memory: an ordinary study
    study, n_before = _open_study(options, directions, pruner, enqueue, shared=shared)
    remaining = None if n_trials is None else max(0, n_trials - n_before)  # --n-trials is the study's total
    logger.info("study %s: %s trials to run (%d earlier), timeout %s s, optimising %s", options.study_name,
                "unbounded" if remaining is None else remaining, n_before, timeout or "none",
                ", ".join(f"{d} {m}" for m, d in zip(metrics, directions)))
    tracked = _TrackedObjective(objective, metrics, directions, n_trials, options.study_name, parent.info.run_id,
                                trial_runs, shared=shared)
    optimize_started = time.monotonic()
    if shared:
        launch = workers.Launch(study, options, parent.info.run_id, n_trials).start()
        try:
            workers.optimize(study, tracked, timeout)
        except BaseException:
            launch.stop()
            raise
        launch.finish()
    elif remaining != 0:
        study.optimize(tracked, n_trials=remaining, timeout=timeout, catch=(Exception,))

    counts = _log_counts(study, n_before)
    stopped, thin = _log_stop(study, n_before, n_trials, remaining, timeout, time.monotonic() - optimize_started)
    best = list(study.best_trials) if len(directions) > 1 else [study.best_trial]
    _log_outcome(study, best, metrics, directions)
    if share_view:
        _share_trials_view(best[0], metrics, directions)
    return StudyResult(study, best, counts["COMPLETE"], counts["PRUNED"], counts["FAIL"], stopped, thin)


def _log_stop(study: optuna.Study, n_before: int, n_trials: int | None, remaining: int | None, timeout: float | None,
              seconds: float) -> tuple[str, str | None]:
    """Tag why the study stopped (``tuning_stop_reason``) and, when it completed fewer than
    :data:`pipelines.budget.MIN_COMPLETE_TRIALS` trials on its budget, ``thin_tuning`` with the advice."""
    from pipelines import budget

    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    n_run = len(trials) - n_before
    early = remaining is not None and n_run < remaining and (timeout is None or seconds < timeout)
    reason = budget.stop_reason(remaining, n_run, early) if n_run or remaining else "n_trials"
    durations = [t.duration.total_seconds() for t in complete if t.duration is not None]
    mean = sum(durations) / len(durations) if durations else 0.0
    thin = budget.thin_advice(len(complete), reason, n_trials, timeout, mean)
    mlflow.set_tag("tuning_stop_reason", reason)
    if thin is None:
        return reason, None
    mlflow.set_tags({THIN_TAG: thin[0], THIN_FIX_TAG: thin[1]})
    logger.warning("study %s: thin tuning: %s; fix: %s", study.study_name, *thin)
    return reason, thin[0]


def thin_studies(run_id: str) -> list[tuple[str, str, str]]:
    """``(run name, what happened, fix options)`` of every thin study (tag ``thin_tuning``) in the run ``run_id`` and
    its nested runs that are not trials (the series of a SARIMA job), for the main job's summary."""
    client = mlflow.MlflowClient()
    run = client.get_run(run_id)
    found = [run] if THIN_TAG in run.data.tags else []
    found += client.search_runs([run.info.experiment_id],
                                f"tags.`{PARENT_RUN_TAG}` = '{run_id}' AND tags.`{THIN_TAG}` LIKE '%'", max_results=1000)
    return [(r.info.run_name or r.info.run_id, r.data.tags[THIN_TAG], r.data.tags.get(THIN_FIX_TAG, ""))
            for r in found if r.data.tags.get("role") != "trial"]


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


def heartbeat_seconds() -> int:
    """How often a trial of a study with an RDB storage says it is alive (``STOREFRONT_HEARTBEAT_SECONDS``,
    default 60); a RUNNING trial silent for twice that long belonged to a dead process and is marked FAIL."""
    import os

    text = os.environ.get("STOREFRONT_HEARTBEAT_SECONDS", "60")
    try:
        value = int(text)
    except ValueError:
        raise ConfigurationError(f"STOREFRONT_HEARTBEAT_SECONDS must be a whole number of seconds, got {text!r}") \
            from None
    if value < 1:
        raise ConfigurationError(f"STOREFRONT_HEARTBEAT_SECONDS must be at least 1, got {value}")
    return value


def stale_trial_failed(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Optuna's stale-trial callback: a RUNNING trial whose process stopped sending heartbeats was marked FAIL. In a
    shared study the dead worker wrote no run for it: it gets its FAILED child run of the study's parent run here."""
    from pipelines.workers import ATTR

    worker = trial.system_attrs.get("storefront.worker")
    error = f"no heartbeat for {2 * heartbeat_seconds()} s: its process died"
    logger.warning("study %s: trial %d%s marked FAIL (%s)", study.study_name, trial.number,
                   f" of worker {worker}" if worker else "", error)
    parent_id = (study.user_attrs.get(ATTR) or {}).get("parent_run_id")
    if parent_id:
        tracked = _TrackedObjective(None, [], [], None, study.study_name, parent_id, "all")
        tracked.copied_tags["storefront.worker"] = worker or "unknown"
        start = trial.datetime_start.timestamp() if trial.datetime_start else time.time()
        tracked._log_trial_run(trial, "FAIL", "FAILED", None, f"WorkerDied: {error}", int(start * 1000))


# the name of RDBStorage's "a stale trial was failed" callback: renamed in Optuna 4.9 (the old name warns)
_STALE_CALLBACK = ("heartbeat_stale_trial_callback"
                   if "heartbeat_stale_trial_callback" in inspect.signature(optuna.storages.RDBStorage).parameters
                   else "failed_trial_callback")
SCHEMA_ATTEMPTS = 5  # processes creating a fresh storage's schema together: tries before giving up


def study_storage(url: str | None, shared: bool = False):
    """The Optuna storage of ``url``: in memory (None), or an RDB storage whose trials send heartbeats, so that
    the trials of a killed worker are failed by the next process that opens the study (``shared``: a
    :func:`pipelines.workers.shared_storage_class` storage). Creating the schema of a fresh database collides
    when two processes do it at once (PostgreSQL: ``UniqueViolation`` on ``pg_type_typname_nsp_index``, or
    "already exists", optuna/optuna#1092); the loser retries, and then finds the schema made."""
    if url is None:
        return None
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    from pipelines.workers import shared_storage_class

    beat = heartbeat_seconds()
    storage_class = shared_storage_class() if shared else optuna.storages.RDBStorage
    for attempt in range(1, SCHEMA_ATTEMPTS + 1):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5, and what we need
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return storage_class(url, heartbeat_interval=beat, grace_period=2 * beat,
                                     **{_STALE_CALLBACK: stale_trial_failed})
        except (IntegrityError, ProgrammingError, OperationalError) as exc:
            text = str(exc).lower()
            if attempt == SCHEMA_ATTEMPTS or not ("already exists" in text or "duplicate key" in text
                                                  or "unique constraint" in text):
                raise
            logger.info("storage %s: schema created by another process at the same time; retrying", _redact(url))
            time.sleep(0.2 * attempt)


def _open_study(options: StudyOptions, directions: list[str], pruner, enqueue,
                shared: bool = False) -> tuple[optuna.Study, int]:
    """A new study, or the stored one of that name (resumed) when there is a storage; and its earlier trials
    (the trials of dead processes, past their heartbeat's grace period, are failed first). A ``shared`` study's
    sampler is TPE with ``constant_liar`` (running trials of other workers count as bad, so they are not sampled
    again)."""
    from pipelines.workers import bind

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = study_storage(options.storage, shared=shared)
    with warnings.catch_warnings():  # constant_liar is "experimental" in Optuna 4 (and the default in 5)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=options.seed, constant_liar=True) if shared else \
            optuna.samplers.TPESampler(seed=options.seed)
    study = optuna.create_study(
        study_name=options.study_name,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        directions=directions,
        load_if_exists=options.storage is not None,
    )
    bind(study)
    if storage is not None:
        running = {t.number for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        still = {t.number for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))}
        if running - still:
            logger.warning("study %s: trial(s) %s of dead processes marked FAIL", options.study_name,
                           ", ".join(map(str, sorted(running - still))))
    n_before = len(study.trials)
    if n_before:
        logger.info("resuming study %s with %d earlier trials from %s", options.study_name, n_before,
                    _redact(options.storage))
    else:
        for params in enqueue:
            study.enqueue_trial(dict(params), skip_if_exists=True)
    return study, n_before


def _join_study(objective: Objective, join, options: StudyOptions, metrics: list[str], directions: list[str], pruner,
                timeout: float | None, trial_runs: str) -> None:
    """A joining worker's part (:mod:`pipelines.workers`): check that this process read the parent run's data,
    run queued trials under the parent run, then raise :class:`pipelines.workers.WorkerDone`."""
    from dataclasses import replace

    from pipelines import workers

    client = mlflow.MlflowClient()
    mine = client.get_run(mlflow.active_run().info.run_id).data.tags.get("data_digest")
    theirs = client.get_run(join.parent_run_id).data.tags.get("data_digest")
    if mine and theirs and mine != theirs:
        raise ConfigurationError(f"--data-dir: the tables this worker read (digest {mine}) are not the ones of the "
                                 f"study's parent run {join.parent_run_id} (digest {theirs}); point --data-dir at "
                                 "the same data")
    options = replace(options, study_name=join.study_name, storage=join.storage, seed=join.seed, workers=None)
    study, _ = _open_study(options, directions, pruner, enqueue=(), shared=True)
    tracked = _TrackedObjective(objective, metrics, directions, None, join.study_name, join.parent_run_id,
                                trial_runs, shared=True)
    workers.optimize(study, tracked, timeout)
    raise workers.WorkerDone(join.study_name, tracked.n_run, join.parent_run_id)


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
    mlflow.log_params(clean_params(lead.params))  # under the trials' keys: the same columns in the runs table
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


def _share_trials_view(lead: optuna.trial.FrozenTrial, metrics: list[str], directions: list[str]) -> None:
    """The experiment's shared view :data:`TRIALS_VIEW`: this study's trials, best first, with the objective and
    the params as columns (the MLflow UI opens it with ``?viewStateShareKey=trials``)."""
    run = mlflow.active_run()
    share_view(run.info.experiment_id, TRIALS_VIEW,
               f"tags.role = 'trial' AND tags.`{PARENT_RUN_TAG}` = '{run.info.run_id}'", f"val_{metrics[0]}",
               ascending=directions[0] == "minimize",
               columns=[*[f"params.`{k}`" for k in lead.params], "tags.`trial_state`"])


def share_view(experiment_id: str, key: str, search_filter: str, metric: str, ascending: bool,
               columns: Sequence[str] = ()) -> None:
    """An experiment's shared runs-table view (filter, sort by ``metric`` and columns), which the MLflow UI opens
    with ``?viewStateShareKey=<key>`` (see :func:`view_url`)."""
    state = {"searchFilter": search_filter, "orderByKey": f"metrics.`{metric}`", "orderByAsc": ascending,
             "selectedColumns": [f"metrics.`{metric}`", *columns]}
    mlflow.MlflowClient().set_experiment_tag(experiment_id, f"mlflow.sharedViewState.{key}", json.dumps(state))


def view_url(ui: str, experiment_id: str, key: str = TRIALS_VIEW) -> str:
    """The MLflow UI page of an experiment's shared view ``key``, in the training (not GenAI) view."""
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}/runs?viewStateShareKey={key}&workflowType=machine_learning"


def _log_study_figures(study: optuna.Study, metrics: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    ovm = import_off_stack("optuna.visualization.matplotlib")  # see pipelines.imports

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
