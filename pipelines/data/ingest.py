"""Ingest a shop's own files: validate them against the data contract and write the canonical tables.

Reads: ``customers``, ``products``, ``transactions`` and ``events`` (CSV or Parquet) from --source-dir,
laid out as the data contract says or as a column map describes (--column-map, a YAML/JSON file or
inline JSON; see ``pipelines/data/column_map.py`` and ``examples/column_maps/``). ``events`` may be absent.
Validates every table and the ids that link them; a problem stops the run with a message naming the
file, the column and the first offending rows, and nothing is written.

Writes: the four typed tables to --output-dir (default ``<project>/data/ingested``), all at once, as
``data_dir`` for the training entry points. A folder that already holds tables is replaced only with
``--overwrite``; a folder holding any other file is refused (:mod:`pipelines.outputs`).

Logs: one run in the MLflow experiment ``storefront-data`` with the row counts (read, kept, dropped per
rule) as metrics, the dataset digest as the tag ``data_digest``, the transactions table as a dataset
input (context ``ingested``), and the report and column map as artifacts. Registers nothing.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines import tracking
from pipelines.families import experiment_name
from pipelines.errors import ConfigurationError
from pipelines.outputs import add_overwrite

if TYPE_CHECKING:  # pandas is imported in the functions, to keep `storefront --help` fast
    from pipelines.data.column_map import ColumnMap
    from pipelines.data.tables import Tables
    from pipelines.data.validation import IngestReport

logger = logging.getLogger(__name__)

HELP = "validate a shop's own tables (optionally through a column map) and write the canonical tables"
DOCS = "examples/column_maps/README.md"
EXPERIMENT = experiment_name("data")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source-dir", required=True, help="folder holding the shop's files")
    parser.add_argument("--column-map", default=None,
                        help="column map: a YAML/JSON file or inline JSON (default: files follow the data contract)")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="where the canonical tables go (default: <project>/data/ingested)")
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet", help="output file format")
    parser.add_argument("--delimiter", default=None,
                        help="CSV delimiter: , ; tab | (default ',', or the column map's `delimiter`)")
    add_overwrite(parser, "--output-dir must be empty or new")
    parser.add_argument("--no-track", action="store_true", help="do not log an MLflow run")


def default_output_dir() -> Path:
    return tracking.default_data_dir().parent / "ingested"


def ingest(source_dir: str | Path, column_map: str | Path | ColumnMap | None = None,
           delimiter: str | None = None) -> tuple[Tables, IngestReport, str]:
    """Read and validate the tables: (typed tables, report, digest). Writes nothing."""
    from pipelines.data.column_map import ColumnMap, load_column_map, read_sources
    from pipelines.data.tables import dataset_digest
    from pipelines.data.validation import check_delimiter, validate_tables

    cmap = column_map if isinstance(column_map, ColumnMap) or not column_map else load_column_map(column_map)
    raw = read_sources(source_dir, cmap, check_delimiter(delimiter))
    tables, report = validate_tables(raw)
    return tables, report, dataset_digest(tables)


def run(args: argparse.Namespace) -> int:
    from pipelines.data.column_map import load_column_map
    from pipelines.data.tables import TABLE_FILES, write_tables
    from pipelines.outputs import check_output_folder

    source_dir = Path(args.source_dir)
    output_dir = args.output_dir or default_output_dir()
    if output_dir.resolve() == source_dir.resolve():
        raise ConfigurationError("--output-dir must differ from --source-dir (ingest would replace your files)")
    check_output_folder(output_dir, TABLE_FILES, args.overwrite, "--output-dir", probe=True)  # before reading anything
    cmap = load_column_map(args.column_map) if args.column_map else None
    tables, report, digest = ingest(source_dir, cmap, args.delimiter)
    print(report.render())
    print(f"dataset digest: {digest}")
    written = write_tables(tables, output_dir, args.format, overwrite=args.overwrite)
    logger.info("wrote %s", ", ".join(p.name for p in written))
    print(f"wrote {len(written)} tables to {output_dir}")
    if not args.no_track:
        run_id = log_run(tables, report, digest, source_dir, output_dir, args.format, cmap)
        print(f"MLflow run {run_id} in experiment {EXPERIMENT}")
    return 0


def log_run(tables: Tables, report: IngestReport, digest: str, source_dir: Path, output_dir: Path,
            fmt: str, cmap: ColumnMap | None) -> str:
    """Log the ingest as one run in ``storefront-data``; returns the run id."""
    import mlflow

    from pipelines import mlflow_logging

    with mlflow_logging.family_run("data", "ingest", tags={"storefront.step": "ingest"}) as run:
        mlflow.log_params({
            "source_dir": str(source_dir), "output_dir": str(output_dir), "format": fmt,
            "column_map": cmap.origin if cmap else "",
        })
        mlflow.log_metrics(report.metrics())
        mlflow_logging.log_tables_input(tables, output_dir, digest, context="ingested")
        mlflow.log_text(report.render() + f"\n\ndataset digest: {digest}\n", "ingest_report.txt")
        if cmap:
            mlflow.log_dict(dict(cmap.spec), "column_map.yaml")
    return run.info.run_id
