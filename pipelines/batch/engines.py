"""The two engines of ``batch-score``: the same batches through the same registered model, written as Parquet.

Both cut the request rows into the same batches (the model's per-request row limit, ``max_rows``: 1,000 unless the
model was logged with another), call the loaded pyfunc's ``predict`` once per batch with the same params, and keep
the input order: the local engine's file and the Spark engine's dataset hold the same rows, in the same order,
with the same values.

* :func:`score_local`: one process; the batches' answers are streamed into one Parquet file (a temporary sibling,
  renamed into place: :func:`pipelines.outputs.write_file`).
* :func:`score_spark`: Apache Spark at any master URL. The model's folder is shipped to the executors with
  ``SparkContext.addFile`` and loaded there once per Python worker; the rows go through ``mapInPandas``, each batch
  kept whole in one partition (``repartition`` by batch number, sorted within partitions); the answers are cached,
  counted, put back in input order (one partition when small, ranges of ``--rows-per-file`` rows when large) and
  written as a Parquet dataset folder into a temporary sibling that is renamed into place
  (:func:`pipelines.outputs.write_folder`, with Spark's part files as the project's own files).

Progress goes to the log every few seconds: requests done, output rows, rows per second. A batch the model refuses
(HTTP 400 when served) stops the run with a :class:`~pipelines.errors.DataValidationError` naming the input rows
and the model's message; nothing is written.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pandas as pd

from pipelines.batch.jobs import BatchJob
from pipelines.errors import ConfigurationError, DataValidationError

logger = logging.getLogger(__name__)

ROWS_PER_FILE = 1_000_000  # the Spark engine writes one part file per this many output rows
PROGRESS_SECONDS = 5.0
REFUSED = "storefront-batch-refused:"  # the executors' marker for a batch the model refused
ARROW_TYPES = {"string": "string", "long": "int64", "double": "float64", "boolean": "bool_"}  # pyarrow type functions


@dataclass(frozen=True)
class Summary:
    """What a batch run did."""

    engine: str
    output: Path
    requests: int
    rows: int
    seconds: float
    files: int = 1

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


class Progress:
    """Logs requests done, output rows and rows/s at most every :data:`PROGRESS_SECONDS` (and at the end)."""

    def __init__(self, total: int, engine: str, every: float = PROGRESS_SECONDS):
        self.total, self.engine, self.every = total, engine, every
        self.start = self.last = time.monotonic()
        self.requests = self.rows = 0

    def add(self, requests: int, rows: int) -> None:
        self.requests += requests
        self.rows += rows
        if time.monotonic() - self.last >= self.every:
            self.log()

    def set(self, requests: int, rows: int) -> None:
        self.requests, self.rows = requests, rows
        self.log()

    def log(self) -> None:
        self.last = time.monotonic()
        seconds = max(self.last - self.start, 1e-9)
        logger.info("batch-score (%s): %s/%s requests, %s output rows, %s rows/s", self.engine,
                    f"{self.requests:,}", f"{self.total:,}", f"{self.rows:,}", f"{self.rows / seconds:,.0f}")


def batch_size(model) -> int:
    """The rows per ``predict`` call: the model's per-request limit (``max_rows``)."""
    from models.contracts import MAX_ROWS

    python_model = model.unwrap_python_model() if hasattr(model, "unwrap_python_model") else model
    return int(getattr(python_model, "max_rows", MAX_ROWS))


def batches(frame: pd.DataFrame, size: int) -> Iterator[tuple[int, pd.DataFrame]]:
    """``(first row, rows)`` of consecutive batches of ``size`` rows, each indexed from 0."""
    for start in range(0, len(frame), size):
        yield start, frame.iloc[start:start + size].reset_index(drop=True)


def refusal(start: int, rows: int, message: str) -> str:
    return f"input rows {start}..{start + rows - 1}: the model refused the batch: {message}"


def predict_batch(model, requests: pd.DataFrame, params: dict, columns: list[str], start: int) -> pd.DataFrame:
    """The model's answer to one batch (its output columns); a refusal raises ``ValueError`` naming the rows."""
    from mlflow.exceptions import MlflowException

    try:
        answer = model.predict(requests, params=params or None)
    except MlflowException as exc:
        raise ValueError(refusal(start, len(requests), exc.message)) from None
    return answer[columns].reset_index(drop=True)


def arrow_schema(job: BatchJob):
    import pyarrow as pa

    return pa.schema([(c.name, getattr(pa, ARROW_TYPES[c.type])()) for c in job.outputs])


# --------------------------------------------------------------------------- local


def score_local(model, job: BatchJob, output: Path, *, overwrite: bool) -> Summary:
    """Score ``job`` in this process and write ``output`` (one Parquet file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.outputs import write_file

    size, schema = batch_size(model), arrow_schema(job)
    columns = [c.name for c in job.outputs]
    progress = Progress(len(job.requests), "local")

    def write(tmp: Path) -> None:
        with pq.ParquetWriter(tmp, schema) as writer:
            for start, requests in batches(job.requests, size):
                try:
                    answer = predict_batch(model, requests, job.params, columns, start)
                except ValueError as exc:
                    raise DataValidationError(str(exc)) from None
                writer.write_table(pa.Table.from_pandas(answer, schema=schema, preserve_index=False))
                progress.add(len(requests), len(answer))

    out = write_file(output, write, overwrite=overwrite)
    progress.log()
    return Summary("local", out, len(job.requests), progress.rows, time.monotonic() - progress.start)


# --------------------------------------------------------------------------- Spark

_EXECUTOR_MODELS: dict[str, object] = {}  # a Python worker's loaded models, by folder (workers are reused)


def _executor_model(path: str):
    if path not in _EXECUTOR_MODELS:
        import mlflow

        _EXECUTOR_MODELS[path] = mlflow.pyfunc.load_model(path)
    return _EXECUTOR_MODELS[path]


def restore_types(requests: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    """The request columns with the driver's dtypes again (Arrow hands an integer column with nulls over as
    floats, text as another string type): an object column holds None for nulls, as the local engine sends."""
    for name, dtype in dtypes.items():
        if dtype == "object":
            column = requests[name].astype(object)
            requests[name] = column.where(column.notna(), None)
        elif str(requests[name].dtype) != dtype:
            requests[name] = requests[name].astype(dtype)
    return requests


def _answer_batch(model, part: pd.DataFrame, params: dict, columns: list[str], dtypes) -> pd.DataFrame:
    batch, start = int(part["_batch"].iloc[0]), int(part["_row"].iloc[0])
    requests = restore_types(part.drop(columns=["_batch", "_row"]).reset_index(drop=True), dtypes)
    try:
        answer = predict_batch(model, requests, params, columns, start)
    except ValueError as exc:
        raise RuntimeError(f"{REFUSED}{exc}{REFUSED}") from None
    answer["_batch"] = batch
    answer["_seq"] = range(len(answer))
    return answer


def score_partition(frames: Iterator[pd.DataFrame], model_name: str, params: dict, columns: list[str],
                    dtypes: dict[str, str], done) -> Iterator[pd.DataFrame]:
    """``mapInPandas``'s function: the rows of one partition (whole batches, sorted by batch and row) -> the
    model's answers, one frame per batch, with ``_batch`` and ``_seq`` (the row within the batch's answer)."""
    from pyspark import SparkFiles

    model = _executor_model(SparkFiles.get(model_name))
    pending: list[pd.DataFrame] = []
    current = None
    for frame in frames:
        for batch, group in frame.groupby("_batch", sort=False):
            if current is not None and batch != current:
                answer = _answer_batch(model, pd.concat(pending, ignore_index=True), params, columns, dtypes)
                done.add(len(answer))
                yield answer
                pending = []
            current = batch
            pending.append(group)
    if pending:
        answer = _answer_batch(model, pd.concat(pending, ignore_index=True), params, columns, dtypes)
        done.add(len(answer))
        yield answer


def spark_session(master: str):
    """A Spark session at ``master`` (``local[*]``, ``spark://host:7077``, ``yarn``, ...): ``(session, ours)``,
    ``ours`` False when one was already running in this process (it is then left running)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigurationError("--engine spark needs pyspark: pip install 'storefront-ml[spark]' "
                                 "(and Java 17 or newer)") from None
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # executors run this Python (set it for a cluster)
    existing = SparkSession.getActiveSession()
    try:
        session = (SparkSession.builder.master(master).appName("storefront batch-score")
                   .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    except Exception as exc:  # noqa: BLE001 - py4j/pyspark raise plain exceptions for a missing Java
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ConfigurationError(f"--engine spark --master {master}: Spark did not start ({first}); is Java 17 "
                                 "or newer installed (java -version) and the master reachable?") from None
    session.sparkContext.setLogLevel("ERROR")
    return session, existing is None


def _spark_type(column) -> str:
    return {"string": "string", "long": "bigint", "double": "double", "boolean": "boolean"}[column.type]


def _refusal_in(exc: BaseException) -> str | None:
    text = str(exc)
    if REFUSED in text:
        return text.split(REFUSED)[1]
    return None


def score_spark(model_dir: Path, model, job: BatchJob, output: Path, *, overwrite: bool, master: str,
                rows_per_file: int = ROWS_PER_FILE) -> Summary:
    """Score ``job`` on Spark at ``master`` with the model in ``model_dir`` (a local copy of the registered model)
    and write ``output`` as a Parquet dataset folder (module docstring)."""
    from functools import partial

    from pipelines.outputs import is_parquet_part, write_folder

    size = batch_size(model)
    columns = [c.name for c in job.outputs]
    dtypes = {name: str(dtype) for name, dtype in job.requests.dtypes.items()}
    requests = job.requests.copy()
    requests["_row"] = range(len(requests))
    requests["_batch"] = requests["_row"] // size
    n_batches = int(requests["_batch"].max()) + 1
    session, ours = spark_session(master)
    progress = Progress(len(job.requests), f"spark {master}")
    try:
        sc = session.sparkContext
        sc.addFile(str(model_dir), recursive=True)
        done = sc.accumulator(0)
        partitions = max(1, min(n_batches, 4 * sc.defaultParallelism))
        schema = ", ".join([f"`{c.name}` {_spark_type(c)}" for c in job.outputs] + ["_batch bigint", "_seq bigint"])
        frame = (session.createDataFrame(requests).repartition(partitions, "_batch")
                 .sortWithinPartitions("_batch", "_row"))
        answers = frame.mapInPandas(partial(score_partition, model_name=Path(model_dir).name, params=job.params,
                                            columns=columns, dtypes=dtypes, done=done), schema).persist()
        stop = threading.Event()

        def report() -> None:
            while not stop.wait(PROGRESS_SECONDS):
                logger.info("batch-score (spark %s): %s output rows done (counted as partitions finish), %s rows/s",
                            master, f"{done.value:,}", f"{done.value / (time.monotonic() - progress.start):,.0f}")

        reporter = threading.Thread(target=report, daemon=True)
        reporter.start()
        try:
            rows = answers.count()
        except Exception as exc:  # noqa: BLE001 - a PythonException from an executor, carrying the model's refusal
            message = _refusal_in(exc)
            if message is not None:
                raise DataValidationError(message) from None
            raise
        finally:
            stop.set()
        progress.set(len(job.requests), rows)
        files = max(1, math.ceil(rows / rows_per_file))
        ordered = answers.repartition(1) if files == 1 else answers.repartitionByRange(files, "_batch", "_seq")
        ordered = ordered.sortWithinPartitions("_batch", "_seq").drop("_batch", "_seq")
        write_folder(output, lambda tmp: ordered.write.mode("overwrite").parquet(str(tmp)), is_parquet_part,
                     overwrite=overwrite, option="--output")
        out = Path(output).expanduser().resolve()
        answers.unpersist()
    finally:
        if ours:
            session.stop()
    parts = len([p for p in Path(out).iterdir() if p.name.startswith("part-")])
    return Summary(f"spark {master}", Path(out), len(job.requests), rows, time.monotonic() - progress.start, parts)


def download_model(uri: str, into: str | None = None) -> Path:
    """A local copy of the model at ``uri`` (a folder that Spark ships to its executors)."""
    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # the log says what is done
    folder = Path(into or tempfile.mkdtemp(prefix="storefront-batch-model-"))
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(folder)))
