"""Score every customer active at a cutoff with a logged churn model and write a CSV ranked by risk.

Reads the model given by ``--model`` (a registered name, which means ``models:/<name>@champion``, or any
model URI: ``models:/storefront-churn/3``, ``runs:/<run id>/churn-logreg``, a local folder) and the canonical tables
of ``--data-dir``. Builds the features of every customer with a purchase in the model's lookback window
before ``--cutoff`` (default: midnight after the last purchase, i.e. "now" for the data), exactly as in
training (nothing on or after the cutoff is read), scores them with the model and writes ``--output``:
``rank, customer_id, churn_probability, risk_segment, churn`` (``purchase_*`` columns for a purchase model),
highest probability first. The file is written to a temporary name and renamed, so it is complete or absent;
an existing file is replaced only with ``--overwrite``, and a folder is refused.
Logs nothing to MLflow and registers nothing.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipelines.outputs import add_overwrite

HELP = "score every active customer with a churn model and write a CSV ranked by risk"
DOCS = "docs/churn.md"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pipelines.options import add_data_dir

    parser.add_argument("--model", required=True,
                        help="registered model name (scores its @champion) or a model URI (models:/name/3, "
                             "models:/name@alias, runs:/<run id>/churn-logreg)")
    add_data_dir(parser)
    parser.add_argument("--cutoff", default=None,
                        help="score as of this date (default: midnight after the last purchase in the data)")
    parser.add_argument("--output", type=Path, required=True, help="CSV file to write")
    add_overwrite(parser, "--output")


def model_uri(name_or_uri: str) -> str:
    """A model URI: anything with a scheme or a path is used as given, a bare name means its champion."""
    if "://" in name_or_uri or ":/" in name_or_uri or Path(name_or_uri).exists():
        return name_or_uri
    return f"models:/{name_or_uri}@champion"


def run(args: argparse.Namespace) -> int:
    path = score(args.model, args.output, args.data_dir, args.cutoff, overwrite=args.overwrite)
    print(path)
    return 0


def score(model_name: str, output: Path, data_dir: Path | None = None, cutoff: str | None = None, *,
          overwrite: bool = False) -> Path:
    """Score every customer active at ``cutoff`` with ``model_name`` and write ``output``; returns its path.

    An existing ``output`` is replaced only with ``overwrite`` (:mod:`pipelines.outputs`)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from models.churn.features import ID_COLUMN
    from models.churn.contract import output_columns
    from pipelines import tracking
    from pipelines.errors import ConfigurationError, DataValidationError
    from pipelines.data.tables import load_tables
    from pipelines.mlflow_logging import predict_in_batches
    from pipelines.outputs import check_output_file, write_file

    check_output_file(output, overwrite, "--output", probe=True)  # before loading and scoring
    data_dir = Path(data_dir) if data_dir else tracking.default_data_dir()
    tables = load_tables(data_dir)  # checked first: a bad table is the cheaper thing to report
    tracking.setup_tracking()
    uri = model_uri(model_name)
    try:
        model = mlflow.pyfunc.load_model(uri)
    except MlflowException as exc:
        raise ConfigurationError(f"--model {model_name}: cannot load {uri}: {exc.message}") from exc
    requests, cutoff, config = shop_requests(model, uri, model_name, tables, data_dir, cutoff)
    try:
        scores = predict_in_batches(model, requests)
    except MlflowException as exc:
        raise DataValidationError(f"{data_dir}: the model rejected the features: {exc.message}") from exc
    probability = output_columns(config.get("target", "churn"))[0]
    scores = scores.sort_values([probability, ID_COLUMN], ascending=[False, True], kind="stable").reset_index(drop=True)
    scores.insert(0, "rank", range(1, len(scores) + 1))
    out = write_file(Path(output), lambda tmp: scores.to_csv(tmp, index=False, float_format="%.6f"),
                     overwrite=overwrite)
    segment = output_columns(config.get("target", "churn"))[1]
    counts = scores[segment].value_counts().to_dict()
    logger.info("scored %d customers active at %s with %s: %s; wrote %s", len(scores), cutoff.date(), uri,
                ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), out)
    return out


def shop_requests(model, uri: str, model_name: str, tables, data_dir: Path, cutoff=None):
    """``(requests, cutoff, model config)``: the served model's request rows (``customer_id`` and the model's
    features) for every customer active in the model's lookback window before ``cutoff`` (default: midnight after
    the last purchase), built from the shop's ``tables`` exactly as in training. Shared by ``score-churn`` and
    ``batch-score``; a model not trained on the shop tables, a bad date or tables without the model's features are
    :class:`~pipelines.errors.ConfigurationError`/:class:`~pipelines.errors.DataValidationError` naming them."""
    import pandas as pd

    from models.churn.features import ID_COLUMN, FeatureInputError, build_features
    from pipelines.errors import ConfigurationError, DataValidationError

    config = getattr(model.unwrap_python_model(), "config", None) or {}
    if config.get("source") != "shop":
        raise ConfigurationError(f"--model {model_name}: {uri} is not a churn model trained on the shop tables "
                                 f"(source {config.get('source', 'unknown')!r}); score its table rows through "
                                 "the served model instead")
    dates = tables["transactions"]["purchase_date"]
    if dates.empty:
        raise DataValidationError(f"{data_dir}: the transactions table is empty")
    if cutoff:
        try:
            cutoff = pd.Timestamp(cutoff)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"--cutoff: not a date: {cutoff!r}") from exc
    else:
        cutoff = dates.max().normalize() + pd.Timedelta(days=1)
    try:
        features = build_features(tables, cutoff, int(config["lookback_days"]))
    except FeatureInputError as exc:
        raise DataValidationError(f"{data_dir}: {exc}") from exc
    if features.empty:
        raise DataValidationError(f"{data_dir}: no customer bought anything in the {config['lookback_days']} days "
                                  f"before {cutoff.date()}")
    expected = config["spec"]["numeric"] + config["spec"]["categorical"]
    missing = [c for c in expected if c not in features.columns]
    if missing:
        raise DataValidationError(f"{data_dir}: the model needs feature(s) {', '.join(missing)} that these tables "
                                  "cannot provide (e.g. a customers column it was trained with)")
    return features[[ID_COLUMN, *expected]], cutoff, config
