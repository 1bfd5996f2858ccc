"""Shared MLflow mechanics for training entry points: the parent run, dataset inputs, figures, pyfunc models,
the round-trip check of a logged model, and the :class:`TrainResult` handed to the registry.

Every family's entry point opens its study's parent run with :func:`family_run`, logs the data it read
with :func:`log_tables_input`, logs its servable model with :func:`log_pyfunc_model` and checks it with
:func:`check_round_trip` (loaded back, the model must give training's answers).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import math
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import mlflow
import numpy as np
import pandas as pd

import models

from pipelines import families, tracking
from pipelines.errors import raise_terminated

logger = logging.getLogger(__name__)

MODELS_DIR = Path(models.__file__).resolve().parent  # travels with every logged model as its code path


def git_commit() -> str:
    """The project's git commit (with ``-dirty`` when the work tree has changes), or ``unknown``."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def _end_run(run_id: str, status: str) -> None:
    """End ``run_id`` (and any nested run still open in it) with ``status``, retrying a busy store.

    A SQLite store shared by several processes answers "database is locked" now and then; a run that then
    stayed RUNNING after a failure or a kill would misreport what happened, so the status write is retried.
    """
    from mlflow.exceptions import MlflowException

    while (active := mlflow.active_run()) is not None and active.info.run_id != run_id:
        mlflow.end_run(status)
    try:
        mlflow.end_run(status)
        return
    except MlflowException:
        pass
    for delay in (0.2, 0.5, 1.0, 2.0, 4.0, 8.0):
        time.sleep(delay)
        try:
            mlflow.MlflowClient().set_terminated(run_id, status)
            return
        except MlflowException:
            if delay == 8.0:
                raise


DISPLAY_DIGITS = 4  # significant digits of float params and tags (exact values stay in tables and models)
NOTE_TAG = "mlflow.note.content"  # the run description the MLflow UI shows
HOST_TAG, PID_TAG = "storefront.host", "storefront.pid"


def display_value(value):
    """A float rounded to :data:`DISPLAY_DIGITS` significant digits for params and tags; anything else as is."""
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.{DISPLAY_DIGITS}g}")
    return value


def clean_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Params as the runs table should show them: unset ones (None or empty text) dropped, floats rounded."""
    return {k: display_value(v) for k, v in params.items() if v is not None and v != ""}


def describe_run(run_id: str, text: str, append: bool = False) -> None:
    """Set (or, with ``append``, extend) the run's description, the Markdown the MLflow UI shows on its page."""
    client = mlflow.MlflowClient()
    if append:
        current = client.get_run(run_id).data.tags.get(NOTE_TAG, "")
        text = f"{current}\n\n{text}" if current else text
    client.set_tag(run_id, NOTE_TAG, text[:7900])


def _process_alive(pid: int, started_ms: int) -> bool:
    """Is process ``pid`` of this host alive and not a newer process that reused the number?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    try:  # a pid reused after a reboot or wrap-around started after the run did
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        return boot + ticks / os.sysconf("SC_CLK_TCK") <= started_ms / 1000 + 5
    except (OSError, ValueError, IndexError, StopIteration):
        return True


def fail_dead_runs(experiment_id: str) -> list[str]:
    """Mark RUNNING runs of this experiment whose process, on this host, is gone as FAILED (tag
    ``storefront.failed_reason``), with their RUNNING nested runs; returns their ids.

    A run started by a process that was killed with SIGKILL (or lost its machine) can never end itself. Runs
    started on other hosts are left to the next command there (their pid means nothing here)."""
    client = mlflow.MlflowClient()
    host = socket.gethostname()
    dead = []
    for run in client.search_runs([experiment_id], f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'",
                                  max_results=200):
        pid = int(run.data.tags.get(PID_TAG, "0") or 0)
        if pid and pid != os.getpid() and not _process_alive(pid, run.info.start_time):
            dead.append(run)
    failed = []
    for run in dead:
        reason = (f"process {run.data.tags[PID_TAG]} on {host} ended without closing this run (killed?); marked "
                  f"FAILED by process {os.getpid()} at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
        children = client.search_runs([experiment_id], f"attributes.status = 'RUNNING' and "
                                      f"tags.`mlflow.parentRunId` = '{run.info.run_id}'", max_results=1000)
        for stale in [run, *children]:
            client.set_tag(stale.info.run_id, "storefront.failed_reason", reason)
            client.set_terminated(stale.info.run_id, "FAILED")
            failed.append(stale.info.run_id)
        logger.warning("run %s (%s) was left RUNNING by a dead process: marked FAILED", run.info.run_id,
                       run.info.run_name)
    return failed


@contextlib.contextmanager
def family_run(family: str, run_name: str, params: Mapping[str, Any] | None = None,
               tags: Mapping[str, str] | None = None) -> Iterator[mlflow.ActiveRun]:
    """The parent run of one study in the experiment of ``family`` (a family or a step, :mod:`pipelines.families`).

    The run ends FINISHED on success, FAILED on an exception, KILLED on Ctrl-C or SIGTERM; the exception
    is re-raised so nothing after a failure (registration) happens. Under ``mlflow run`` (which exports
    ``MLFLOW_RUN_ID``, a run of its own, often in another experiment) the family run is still a new run in the
    family's experiment; the two are linked by the tags ``storefront.launcher_run_id`` (on this run) and
    ``storefront.family_run_id`` (on the launcher's run). The run carries this host and pid, so that the next
    run of the experiment can tell that a killed process left it RUNNING (:func:`fail_dead_runs`). Params are
    logged through :func:`clean_params`.

    In a worker of a shared study (:func:`pipelines.workers.current_join`) the run is the worker's own, nested
    under the study's parent run (tag ``role=worker``): it holds what this worker read; it ends FINISHED when the
    worker's trials are done (:class:`pipelines.workers.WorkerDone`, re-raised to stop the command there).
    """
    from pipelines.workers import WorkerDone, resolve_join

    exp_id = tracking.experiment_id(families.experiment_name(family))
    fail_dead_runs(exp_id)
    launcher = os.environ.pop("MLFLOW_RUN_ID", None)
    if launcher:
        tags = {**(tags or {}), "storefront.launcher_run_id": launcher}
    if (join := resolve_join()) is not None:  # a launcher's own worker waits here for the study
        tags = {**(tags or {}), "mlflow.parentRunId": join.parent_run_id, "role": "worker", "study": join.study_name}
        run_name = f"worker {socket.gethostname()}:{os.getpid()}"
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGALRM)
    try:
        signal.signal(signal.SIGTERM, raise_terminated)  # the run ends KILLED
    except ValueError:  # not the main thread
        previous = None
    run = mlflow.start_run(experiment_id=exp_id, run_name=run_name,
                           tags={"storefront.family": family, "role": "family", "git_commit": git_commit(),
                                 HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()), **(tags or {})})
    if launcher:
        mlflow.MlflowClient().set_tag(launcher, "storefront.family_run_id", run.info.run_id)
    try:
        if params:
            mlflow.log_params(clean_params(params))
        yield run
    except WorkerDone:
        _end_run(run.info.run_id, "FINISHED")
        raise
    except KeyboardInterrupt:
        _end_run(run.info.run_id, "KILLED")
        raise
    except BaseException:
        _end_run(run.info.run_id, "FAILED")
        raise
    else:
        _end_run(run.info.run_id, "FINISHED")
    finally:
        if previous is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGTERM, previous[0])
            signal.signal(signal.SIGALRM, previous[1])


def log_tables_input(tables: Mapping[str, pd.DataFrame], source: str | Path, digest: str,
                     context: str = "training", names: tuple[str, ...] = ("transactions",)) -> None:
    """Log the named tables as MLflow dataset inputs (see :func:`table_dataset`) and the digest as a tag."""
    mlflow.set_tag("data_digest", digest)
    mlflow.set_tag("data_dir", str(source))
    for name in names:
        mlflow.log_input(table_dataset(tables[name], Path(source) / name, name), context=context)


SCHEMA_SAMPLE_ROWS = 1000  # MLflow infers a dataset schema cell by cell; the first rows are enough


def table_dataset(df: pd.DataFrame, path: str | Path, name: str):
    """An MLflow dataset for one table: its file as source, its own digest, a cheap schema.

    Equivalent to ``mlflow.data.from_pandas(df, source=path, name=name)``, except that the schema is
    inferred from the first rows (MLflow inspects string cells one by one: seconds per 100,000 rows) and
    the digest is :func:`pipelines.data.tables.dataset_digest` of the table; the profile counts every row. The
    source is declared local explicitly (a bare path makes MLflow warn that two source types match it).
    """
    import json
    import warnings
    from functools import cached_property

    from mlflow.data.dataset_source_registry import get_dataset_source_from_json
    from mlflow.data.pandas_dataset import PandasDataset
    from mlflow.models import infer_signature

    from pipelines.data.tables import dataset_digest

    class TableDataset(PandasDataset):
        @cached_property
        def schema(self):
            with warnings.catch_warnings():  # the hint that integer columns cannot hold missing values
                warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer", UserWarning)
                return infer_signature(self._df.head(SCHEMA_SAMPLE_ROWS)).inputs

    source = get_dataset_source_from_json(json.dumps({"uri": str(path)}), source_type="local")
    return TableDataset(df, source=source, name=name, digest=dataset_digest({name: df}))


def log_figure(fig, artifact_file: str) -> None:
    """Log a matplotlib figure as a run artifact and close it."""
    import matplotlib.pyplot as plt

    mlflow.log_figure(fig, artifact_file)
    plt.close(fig)


def pinned_requirements(*distributions: str) -> list[str]:
    """``name==version`` for each installed distribution, always including mlflow."""
    names = ("mlflow", *[d for d in distributions if d != "mlflow"])
    return [f"{name}=={importlib.metadata.version(name)}" for name in names]


def log_pyfunc_model(python_model: str | Path, *, name: str, artifacts: Mapping[str, str],
                     input_example: pd.DataFrame, params: Mapping[str, Any] | None = None,
                     requirements: tuple[str, ...] = ("numpy", "pandas"), signature=None,
                     max_rows: int | None = None, metadata: Mapping[str, Any] | None = None):
    """Log a pyfunc "model from code" whose code travels with it (the ``models`` package as code path).

    The signature is inferred from ``input_example`` (and ``params``) unless given; explicit pinned pip
    requirements keep logging fast and the environment reproducible. ``max_rows`` (default
    :data:`models.contracts.MAX_ROWS`) is the served model's per-request row limit, stored as its
    ``model_config`` (``STOREFRONT_MAX_ROWS`` overrides it at serve time); ``metadata`` goes to the MLmodel file
    (shown in the MLflow UI). Returns the ``ModelInfo``.
    """
    from mlflow.models import infer_signature

    from models.contracts import MAX_ROWS, checked_row_limit

    if signature is None:
        signature = infer_signature(input_example, None, params=dict(params) if params else None)
    config = {"max_rows": checked_row_limit(MAX_ROWS if max_rows is None else max_rows)}
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=str(python_model),
        artifacts=dict(artifacts),
        code_paths=[str(MODELS_DIR)],
        signature=signature,
        input_example=input_example,
        pip_requirements=pinned_requirements(*requirements),
        model_config=config,
        metadata={**config, **dict(metadata or {})},
    )


@dataclass
class TrainResult:
    """What a training entry point hands to the registration gate."""

    family: str
    run_id: str
    model_uri: str
    primary_metric: str
    test_value: float
    baseline_value: float
    higher_is_better: bool
    data_digest: str
    registered_model: str | None = None  # bring-your-own data registers under the user's name
    extra: dict = field(default_factory=dict)
    split: str = ""  # how the data was split, in words (validation and test windows), for the run description
    baseline: str = "the baseline"  # what the baseline is, in words


def describe_training(result: TrainResult) -> None:
    """The parent run's description (the first thing its MLflow page shows): the study (objective, trials, best
    trial), the split, and the test score against the baseline. The registry appends the gate's verdict."""
    run = mlflow.MlflowClient().get_run(result.run_id)
    tags, metrics, params = run.data.tags, run.data.metrics, run.data.params
    title = families.get(result.family).title
    lines = []
    if "study" in tags:
        objective = params.get("objective", result.primary_metric).split(",")[0]
        direction = tags.get("study_directions", "").split(",")[0] or "optimise"
        counts = ", ".join(f"{int(metrics.get(f'n_trials_{s}', 0))} {s}" for s in ("complete", "pruned", "failed"))
        best = metrics.get(f"val_{objective}")
        best_text = f"; best trial {tags.get('best_trial')} (`val_{objective}` = {best:.4f})" if best is not None else ""
        lines.append(f"**{title}**, Optuna study `{tags['study']}`: {direction} `val_{objective}` over "
                     f"{int(metrics.get('n_trials_total', 0))} trial(s) ({counts}){best_text}. The chosen "
                     "hyperparameters are this run's params, under the trials' keys; `study/*` charts are the "
                     "optimisation history (step = trial).")
    else:
        lines.append(f"**{title}**.")
    if result.split:
        lines.append(f"Split: {result.split}.")
    lines.append(f"Test: `test_{result.primary_metric}` = {result.test_value:.4f} against {result.baseline} "
                 f"{result.baseline_value:.4f} on the same data "
                 f"({'higher' if result.higher_is_better else 'lower'} is better).")
    describe_run(result.run_id, "\n\n".join(lines))


Comparison = Callable[[pd.DataFrame, pd.DataFrame], list[str]]
"""``compare(expected, actual)``: the differences between two answer tables, empty when they agree."""


def columns_agree(numeric: Sequence[str], *, rtol: float = 0.0, atol: float = 0.0,
                  exact: Sequence[str] = ()) -> Comparison:
    """A :data:`Comparison`: same rows, the ``exact`` columns equal and the ``numeric`` ones within tolerance."""

    def compare(expected: pd.DataFrame, actual: pd.DataFrame) -> list[str]:
        missing = [c for c in (*exact, *numeric) if c not in actual.columns]
        if missing:
            return [f"the answer lacks column(s) {', '.join(missing)}"]
        if len(actual) != len(expected):
            return [f"{len(actual)} answer rows for {len(expected)} expected"]
        problems = [f"column {c!r} differs" for c in exact
                    if list(actual[c].astype(str)) != list(expected[c].astype(str))]
        for column in numeric:
            a, b = actual[column].to_numpy(float), expected[column].to_numpy(float)
            far = ~np.isclose(a, b, rtol=rtol, atol=atol)
            if far.any():
                row = int(np.flatnonzero(far)[0])
                problems.append(f"{column} in row {row}: served {a[row]!r}, training {b[row]!r} "
                                f"({int(far.sum())} row(s) differ)")
        return problems

    return compare


def predict_in_batches(model, frame: pd.DataFrame, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """``model.predict(frame, params)`` for a loaded pyfunc, in batches of at most the model's per-request row
    limit (:func:`models.contracts.row_limit`: a served request's limit, not one for the project's own scoring of
    a whole test set or customer base). The answers of the batches, in order."""
    from models.contracts import MAX_ROWS

    python_model = model.unwrap_python_model() if hasattr(model, "unwrap_python_model") else model
    size = int(getattr(python_model, "max_rows", MAX_ROWS))
    params = dict(params) if params else None
    if len(frame) <= size:
        return model.predict(frame, params=params)
    parts = [model.predict(frame.iloc[start:start + size], params=params) for start in range(0, len(frame), size)]
    return pd.concat(parts, ignore_index=True)


def check_round_trip(model_uri: str, requests: pd.DataFrame, expected: pd.DataFrame, compare: Comparison,
                     params: Mapping[str, Any] | None = None) -> int:
    """Load the logged model back, answer ``requests`` and compare with what training computed.

    Raises :class:`pipelines.errors.RoundTripError` listing the first differences; returns the rows compared.
    """
    from pipelines.errors import RoundTripError

    actual = predict_in_batches(mlflow.pyfunc.load_model(model_uri), requests, params)
    problems = compare(expected.reset_index(drop=True), actual.reset_index(drop=True))
    if problems:
        raise RoundTripError(f"the logged model {model_uri} disagrees with training on {len(problems)} point(s): "
                             + "; ".join(problems[:5]))
    if mlflow.active_run() is not None:
        mlflow.set_tag("round_trip_check", f"passed ({len(requests)} requests, {len(expected)} rows)")
    logger.info("round trip: the logged model %s reproduces training's %d answer rows", model_uri, len(expected))
    return len(expected)
