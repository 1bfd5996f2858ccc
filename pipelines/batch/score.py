"""Score every customer (or category x horizon) with a registered model and write Parquet (``storefront batch-score``).

Reads the model given by ``--model`` (``models:/NAME@champion``, any model URI, or a family or registered name,
which means its champion) and the rows of ``--input``: a CSV or Parquet file of the served model's request rows,
or a folder of the shop's tables (every customer of ``customers``; for churn their features at ``--cutoff``; for
SARIMA every category the model knows x ``--horizon``; :mod:`pipelines.batch.jobs`). Sends them, in batches of the
model's per-request row limit, to the model itself (the registered pyfunc, so the rows are those a served model
answers: one row per recommendation, per customer or per forecast step) with ``--engine local`` (this process) or
``--engine spark`` (Apache Spark at ``--master``, default ``local[*]``; :mod:`pipelines.batch.engines`), and writes
``--output``: one Parquet file (local) or a Parquet dataset folder of part files (Spark), with the same rows in the
same order. The output is written to a temporary sibling and renamed into place; an existing output is replaced
only with ``--overwrite`` (a folder holding anything but Spark's part files never). Logs progress (requests, rows,
rows/s); logs nothing to MLflow and registers nothing.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

from models.recommenders.contract import K
from pipelines.families import RECOMMENDER_SLOT

HELP = "score every customer (or category x horizon) with a registered model, locally or on Spark, into Parquet"
DOCS = "docs/batch.md"
ENGINES = ("local", "spark")
DEFAULT_MASTER = "local[*]"
DEFAULT_HORIZON = 12
MODELS = (*RECOMMENDER_SLOT.members, RECOMMENDER_SLOT.name, "churn", "sarima")  # the names --model may use

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pipelines.batch.engines import ROWS_PER_FILE
    from pipelines.options import bool_text, whole_number, within
    from pipelines.outputs import add_overwrite

    parser.add_argument("--model", required=True,
                        help="models:/NAME@champion (or any model URI), or a family or registered name (its "
                             "champion): a recommender, churn or SARIMA model")
    parser.add_argument("--input", type=Path, required=True,
                        help="a CSV or Parquet file of the served model's request rows, or a folder of shop tables "
                             "(every customer; for churn their features at --cutoff; for SARIMA every category)")
    parser.add_argument("--output", type=Path, required=True,
                        help="Parquet output: a file (--engine local) or a dataset folder of part files (spark)")
    parser.add_argument("--engine", choices=ENGINES, default="local", help="local (default) or spark")
    parser.add_argument("--master", default=DEFAULT_MASTER,
                        help=f"Spark master URL for --engine spark (default {DEFAULT_MASTER}; spark://host:7077, "
                             "yarn, k8s://... for a cluster)")
    add_overwrite(parser, "--output")
    parser.add_argument("-k", "--k", type=within(K, "--k"), default=None,
                        help=f"recommender: recommendations per customer, {K.low}..{K.high} (default: the model's, "
                             "as served)")
    parser.add_argument("--include-purchased", type=bool_text, nargs="?", const=True, default=False,
                        help="recommender: also recommend products the customer already bought (default false)")
    parser.add_argument("--cutoff", default=None,
                        help="churn with a data folder: features as of this date (default: midnight after the last "
                             "purchase)")
    parser.add_argument("--horizon", type=whole_number, default=DEFAULT_HORIZON,
                        help=f"SARIMA: periods ahead where the input has no horizon column (default "
                             f"{DEFAULT_HORIZON})")
    parser.add_argument("--confidence", type=float, default=None,
                        help="SARIMA: interval coverage in (0, 1) (default: the model's, 0.95)")
    parser.add_argument("--rows-per-file", type=whole_number, default=ROWS_PER_FILE,
                        help=f"Spark: output rows per Parquet part file (default {ROWS_PER_FILE:,})")


def run(args: argparse.Namespace) -> int:
    from pipelines.batch.jobs import Options

    options = Options(k=args.k, include_purchased=bool(args.include_purchased), cutoff=args.cutoff,
                      horizon=args.horizon, confidence=args.confidence)
    summary = batch_score(args.model, args.input, args.output, options, engine=args.engine, master=args.master,
                          overwrite=args.overwrite, rows_per_file=args.rows_per_file)
    print(f"{summary.output}: {summary.rows:,} rows for {summary.requests:,} requests in {summary.seconds:.1f} s "
          f"({summary.rows_per_second:,.0f} rows/s, {summary.engine}"
          f"{f', {summary.files} part files' if summary.engine != 'local' else ''})")
    return 0


def batch_score(model: str, input_path: Path, output: Path, options=None, *, engine: str = "local",
                master: str = DEFAULT_MASTER, overwrite: bool = False, rows_per_file: int | None = None):
    """Score ``input_path`` with ``model`` on ``engine`` and write ``output``; returns the engine's
    :class:`~pipelines.batch.engines.Summary`."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from pipelines import tracking
    from pipelines.batch import engines
    from pipelines.batch.jobs import Options, build_job
    from pipelines.errors import ConfigurationError
    from pipelines.outputs import check_output_file, check_output_folder, is_parquet_part
    from pipelines.registry import champion_or_latest

    if engine not in ENGINES:
        raise ConfigurationError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    rows_per_file = engines.ROWS_PER_FILE if rows_per_file is None else rows_per_file
    if isinstance(rows_per_file, bool) or not isinstance(rows_per_file, int) or rows_per_file < 1:
        raise ConfigurationError(f"--rows-per-file must be a whole number >= 1, got {rows_per_file!r}")
    output = Path(output)
    if engine == "local":  # before loading anything: a refused output is the cheapest thing to report
        check_output_file(output, overwrite, "--output", probe=True)
    else:
        check_output_folder(output, is_parquet_part, overwrite, "--output", probe=True)
    tracking.setup_tracking()
    uri = champion_or_latest(model, MODELS)
    with tempfile.TemporaryDirectory(prefix="storefront-batch-") as tmp:
        try:
            folder = engines.download_model(uri, tmp)
            loaded = mlflow.pyfunc.load_model(str(folder))
        except (MlflowException, OSError) as exc:
            raise ConfigurationError(f"--model {model!r}: cannot load {uri}: "
                                     f"{getattr(exc, 'message', None) or exc}") from None
        job = build_job(loaded, uri, Path(input_path), options or Options())
        logger.info("batch-score: %s (%s) over %s: %s requests, params %s, engine %s", uri, job.kind, job.source,
                    f"{len(job.requests):,}", job.params or "the model's defaults",
                    engine if engine == "local" else f"spark at {master}")
        if engine == "local":
            summary = engines.score_local(loaded, job, output, overwrite=overwrite)
        else:
            summary = engines.score_spark(folder, loaded, job, output, overwrite=overwrite, master=master,
                                          rows_per_file=rows_per_file)
    logger.info("batch-score: wrote %s: %s rows in %.1f s (%s rows/s)", summary.output, f"{summary.rows:,}",
                summary.seconds, f"{summary.rows_per_second:,.0f}")
    return summary
