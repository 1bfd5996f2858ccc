"""Shared MLflow mechanics for training entry points: the parent run, dataset inputs, figures, pyfunc models.

Every family's entry point opens its study's parent run with :func:`family_run`, logs the data it read
with :func:`log_tables_input`, and logs its servable model with :func:`log_pyfunc_model`.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import mlflow
import pandas as pd

from pipelines import tracking

logger = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


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


class _Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process gets SIGTERM, so the run is ended as KILLED."""


def _raise_terminated(signum, frame):  # noqa: ARG001 - signal handler signature
    raise _Terminated(f"signal {signum}")


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


@contextlib.contextmanager
def family_run(family: str, run_name: str, params: Mapping[str, Any] | None = None,
               tags: Mapping[str, str] | None = None) -> Iterator[mlflow.ActiveRun]:
    """The parent run of one study in the family's experiment (``storefront-<family>``).

    The run ends FINISHED on success, FAILED on an exception, KILLED on Ctrl-C or SIGTERM; the exception
    is re-raised so nothing after a failure (registration) happens. Under ``mlflow run`` (which exports
    ``MLFLOW_RUN_ID``, a run of its own, often in another experiment) the family run is still a new run in the
    family's experiment; the two are linked by the tags ``storefront.launcher_run_id`` (on this run) and
    ``storefront.family_run_id`` (on the launcher's run).
    """
    exp_id = tracking.experiment_id(tracking.EXPERIMENTS[family])
    launcher = os.environ.pop("MLFLOW_RUN_ID", None)
    if launcher:
        tags = {**(tags or {}), "storefront.launcher_run_id": launcher}
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread
        previous = None
    run = mlflow.start_run(experiment_id=exp_id, run_name=run_name,
                           tags={"storefront.family": family, "git_commit": git_commit(), **(tags or {})})
    if launcher:
        mlflow.MlflowClient().set_tag(launcher, "storefront.family_run_id", run.info.run_id)
    try:
        if params:
            mlflow.log_params({k: ("" if v is None else v) for k, v in params.items()})
        yield run
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
            signal.signal(signal.SIGTERM, previous)


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
    the digest is :func:`pipelines.tables.dataset_digest` of the table; the profile counts every row. The
    source is declared local explicitly (a bare path makes MLflow warn that two source types match it).
    """
    import json
    import warnings
    from functools import cached_property

    from mlflow.data.dataset_source_registry import get_dataset_source_from_json
    from mlflow.data.pandas_dataset import PandasDataset
    from mlflow.models import infer_signature

    from pipelines.tables import dataset_digest

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


def log_pyfunc_model(python_model: str | Path, *, name: str = "model", artifacts: Mapping[str, str],
                     input_example: pd.DataFrame, params: Mapping[str, Any] | None = None,
                     requirements: tuple[str, ...] = ("numpy", "pandas"), signature=None):
    """Log a pyfunc "model from code" whose code travels with it (the ``models`` package as code path).

    The signature is inferred from ``input_example`` (and ``params``) unless given; explicit pinned pip
    requirements keep logging fast and the environment reproducible. Returns the ``ModelInfo``.
    """
    from mlflow.models import infer_signature

    if signature is None:
        signature = infer_signature(input_example, None, params=dict(params) if params else None)
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=str(python_model),
        artifacts=dict(artifacts),
        code_paths=[str(MODELS_DIR)],
        signature=signature,
        input_example=input_example,
        pip_requirements=pinned_requirements(*requirements),
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
