"""Generate the synthetic shop (entry point ``generate_data``, command ``storefront generate-data``).

Reads: nothing; the data come from ``pipelines.data.synthetic.generate_shop`` (seeded, deterministic).
Writes: the four canonical tables ``customers``, ``products``, ``transactions`` and ``events`` to
``--output-dir`` as Parquet or CSV, atomically (all files or none). An existing set of tables there is replaced
only with ``--overwrite``; a folder holding other files is refused (:mod:`pipelines.outputs`).
Logs (unless ``--no-track``): one MLflow run in the experiment ``storefront-data`` with the parameters,
the row count of every table as metrics (``rows_<table>``), the dataset digest as the tag
``data_digest``, and the four tables as dataset inputs (context ``generated``) whose source is the
written file.
Registers: nothing.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from pipelines.outputs import add_overwrite

logger = logging.getLogger(__name__)

HELP = "generate the synthetic shop tables (customers, products, transactions, events)"
DOCS = "README.md#data"

DEFAULTS = {"customers": 5000, "products": 200, "years": 3, "seed": 42, "format": "parquet", "demographic_strength": 1.0}
START = "2023-01-01"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--customers", type=int, default=DEFAULTS["customers"], help="number of customers, >= 10 (default: %(default)s)"
    )
    parser.add_argument(
        "--products", type=int, default=DEFAULTS["products"], help="number of products, >= 10 (default: %(default)s)"
    )
    parser.add_argument(
        "--years", type=int, default=DEFAULTS["years"], help=f"years from {START}, >= 1 (default: %(default)s)"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULTS["seed"], help="random seed; same seed, same tables (default: %(default)s)"
    )
    parser.add_argument(
        "--demographic-strength", type=float, default=DEFAULTS["demographic_strength"],
        help="how strongly gender and age tilt what customers buy, 0..10; 1 is the default shop, 3 a strong "
             "demographic signal (default: %(default)s)")
    parser.add_argument(
        "--output-dir", default=None, help="folder for the tables (default: <project root>/data/generated)"
    )
    parser.add_argument(
        "--format", choices=("parquet", "csv"), default=DEFAULTS["format"], help="file format (default: %(default)s)"
    )
    add_overwrite(parser, "--output-dir must be empty or new")
    parser.add_argument("--no-track", action="store_true", help="do not log an MLflow run")


def run(args: argparse.Namespace) -> int:
    from pipelines import mlflow_logging, tracking
    from pipelines.families import experiment_name
    from pipelines.data.synthetic import validate_parameters

    from pipelines.data.tables import TABLE_FILES
    from pipelines.outputs import check_output_folder

    validate_parameters(args.customers, args.products, args.years, args.demographic_strength)
    output_dir = Path(args.output_dir).expanduser().resolve() if args.output_dir else tracking.default_data_dir()
    check_output_folder(output_dir, TABLE_FILES, args.overwrite, "--output-dir", probe=True)  # before minutes of work
    params = {
        "customers": args.customers,
        "products": args.products,
        "years": args.years,
        "seed": args.seed,
        "demographic_strength": args.demographic_strength,
        "start": START,
        "format": args.format,
        "output_dir": str(output_dir),
    }
    if args.no_track:
        generate(params, output_dir, args.format, args.overwrite)
        return 0

    import mlflow

    with mlflow_logging.family_run("data", f"generate-data-seed{args.seed}",
                         tags={"storefront.step": "generate_data"}) as active:
        mlflow.log_params(params)
        tables, paths, digest = generate(params, output_dir, args.format, args.overwrite)
        mlflow.log_metrics({f"rows_{name}": len(df) for name, df in tables.items()})
        mlflow.set_tags({"data_digest": digest, "data_dir": str(output_dir), "format": args.format})
        started = time.perf_counter()
        for name, path in paths.items():
            mlflow.log_input(mlflow_logging.table_dataset(tables[name], path, name), context="generated")
        elapsed = time.perf_counter() - started
        _say(f"logged run {active.info.run_id} in {experiment_name('data')} (dataset inputs: {elapsed:.1f}s)")
    return 0


def generate(params: dict, output_dir: Path, fmt: str, overwrite: bool = False):
    """Generate, write and summarise the tables; return ``(tables, {name: path}, digest)``."""
    from pipelines.data.synthetic import generate_shop
    from pipelines.data.tables import dataset_digest, write_tables

    started = time.perf_counter()

    def progress(message: str) -> None:
        _say(f"[{time.perf_counter() - started:6.1f}s] {message}")

    tables, truth = generate_shop(
        customers=params["customers"],
        products=params["products"],
        years=params["years"],
        seed=params["seed"],
        start=params["start"],
        progress=progress,
        demographic_strength=params.get("demographic_strength", 1.0),
    )
    written = write_tables(tables, output_dir, fmt, overwrite=overwrite)
    progress(f"wrote {len(written)} {fmt} files to {output_dir}")
    digest = dataset_digest(tables)
    progress("computed the dataset digest")

    width = max(len(name) for name in tables)
    lines = [f"  {name:<{width}} {len(df):>12,} rows" for name, df in tables.items()]
    _say(
        f"generated {params['years']} years from {truth.start.date()} (seed {params['seed']}); "
        f"{int(truth.churned.sum()):,} customers churn within the window\n" + "\n".join(lines)
    )
    _say(f"digest {digest}\npath   {output_dir}")
    return tables, {path.stem: path for path in written}, digest


def _say(message: str) -> None:
    print(message, flush=True)
