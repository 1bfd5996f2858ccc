"""Customer segmentation with K-Means, k tuned by Optuna on the silhouette score (``train_segments``).

Reads the transactions from ``--data-dir`` (default ``data/generated``) and builds one row per customer who
bought before the reference date (``--reference-date``, default the day after the last purchase):
``total_spending``, ``frequency_days`` (distinct purchase days), ``avg_spend_per_item`` and ``recency_days``
(``models/segments.py``). They are modelled in log1p space, standardised. A random ``--test-fraction`` of the
customers (seeded) is held out. Optuna searches k in ``--min-k``..``--max-k`` (default 2..10): each trial fits
K-Means on 75% of the other customers and scores the silhouette of its assignment of the remaining 25%. The
best k is refit on all non-test customers and scored once on the test customers (``test_silhouette``). The
baseline is one cluster (silhouette 0 by convention), so the gate passes only with k >= 2 and a positive
silhouette. Segments are named from their centroids (high spenders, frequent shoppers, value seekers,
occasional buyers, lapsed customers) and summarised in one paragraph each.

Logs one parent run in the experiment ``storefront-segments``: the data input, ``baseline_test_silhouette``,
one nested run per trial (``val_silhouette``), the best k, ``test_silhouette``, ``n_segments``, the segment
profile (``tables/segments.json``/``.csv``), the summaries (``segments/summary.md``), figures
(``plots/segment_scatter.png``: frequency vs spending, bubble = spend per item; ``plots/segment_sizes.png``),
the test customers' features as ``holdout/`` (for champion re-scoring) and the pyfunc model ``model``
(``models/segments_pyfunc.py``: input the four feature columns, output ``segment_id, segment_name``),
checked by loading it back. ``train_from_args`` registers nothing and returns a ``TrainResult``; the
command registers ``storefront-segments@challenger`` when the gate passes and prints the verdict.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "segment customers with K-Means (k tuned by Optuna on silhouette) and log a servable model to MLflow"

logger = logging.getLogger(__name__)

FAMILY = "segments"
PRIMARY_METRIC = "silhouette"
DEFAULT_N_TRIALS = 12
DEFAULT_TIMEOUT = 300
DEFAULT_TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.25
PYFUNC_FILE = Path(__file__).resolve().parent.parent / "models" / "segments_pyfunc.py"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pipelines.options import add_study_options, whole_number

    add_study_options(parser, n_trials=DEFAULT_N_TRIALS, timeout=DEFAULT_TIMEOUT, study_name="segments",
                      seed_help="sampler, split and K-Means seed")
    parser.add_argument("--min-k", type=whole_number, default=2, help="smallest number of segments tried (default 2)")
    parser.add_argument("--max-k", type=whole_number, default=10, help="largest number of segments tried (default 10)")
    parser.add_argument("--test-fraction", type=float, default=DEFAULT_TEST_FRACTION,
                        help=f"share of customers held out for the test silhouette (default {DEFAULT_TEST_FRACTION})")
    parser.add_argument("--reference-date", default=None,
                        help="features use purchases before this date (default: the day after the last purchase)")


def _check(n_trials, min_k, max_k, test_fraction, n_customers) -> None:
    from pipelines.errors import ConfigurationError, DataValidationError

    if n_trials is not None and n_trials < 1:
        raise ConfigurationError(f"--n-trials must be at least 1, got {n_trials}")
    if not 2 <= min_k <= max_k:
        raise ConfigurationError(f"--min-k and --max-k must satisfy 2 <= min-k <= max-k, got {min_k} and {max_k}")
    if not 0 < test_fraction < 0.9:
        raise ConfigurationError(f"--test-fraction must be between 0 and 0.9, got {test_fraction}")
    needed = int(max_k / (1 - VALIDATION_FRACTION) / (1 - test_fraction)) + 10
    if n_customers < needed:
        raise DataValidationError(f"transactions: {n_customers} customers with purchases are too few for up to "
                                  f"{max_k} segments with a test and a validation split (need at least {needed})")


def split_customers(n: int, test_fraction: float, seed: int):
    """Seeded random partition of ``range(n)`` into (fit, validation, test) index arrays, each sorted."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(n)
    n_test = max(2, int(round(n * test_fraction)))
    test, dev = np.sort(order[:n_test]), order[n_test:]
    n_val = max(2, int(round(len(dev) * VALIDATION_FRACTION)))
    return np.sort(dev[n_val:]), np.sort(dev[:n_val]), test


def make_objective(fit_features, val_features, min_k: int, max_k: int, seed: int):
    """Validation silhouette of K-Means with k from the trial (fitted on ``fit_features``)."""
    from models.segments import Segmenter, evaluation_silhouette

    def objective(trial) -> float:
        k = trial.suggest_int("k", min_k, max_k)
        segmenter = Segmenter(k=k, seed=seed).fit(fit_features)
        return evaluation_silhouette(val_features, segmenter.predict(val_features))

    return objective


def _signature(example, output):
    """Inputs and outputs from the examples (the output's int ``segment_id`` is never missing: no hint needed)."""
    import warnings

    from mlflow.models import infer_signature

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer", UserWarning)
        return infer_signature(example, output)


def train(data_dir=None, *, n_trials: int | None = DEFAULT_N_TRIALS, timeout: float | None = DEFAULT_TIMEOUT,
          seed: int = 42, storage: str | None = None, study_name: str = "segments", min_k: int = 2, max_k: int = 10,
          test_fraction: float = DEFAULT_TEST_FRACTION, reference_date=None):
    """Run the whole entry point (no registration); returns the :class:`pipelines.runs.TrainResult`."""
    import tempfile

    import mlflow
    import numpy as np
    import pandas as pd
    from models.segments import FEATURES, Segmenter, customer_features, describe_segments, evaluation_silhouette
    from pipelines import analytics_figures as figs
    from pipelines.analyze import table_for_mlflow
    from pipelines.errors import ConfigurationError, StorefrontError
    from pipelines.rescoring import log_holdout
    from pipelines.runs import TrainResult, family_run, log_figure, log_pyfunc_model, log_tables_input
    from pipelines.study import run_study
    from pipelines.tables import dataset_digest, load_tables
    from pipelines.tracking import default_data_dir

    data_dir = Path(data_dir) if data_dir else default_data_dir()
    tables = load_tables(data_dir)
    digest = dataset_digest(tables)
    try:
        features = customer_features(tables["transactions"], reference_date)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"--reference-date {reference_date!r}: {exc}") from None
    _check(n_trials, min_k, max_k, test_fraction, len(features))
    fit_idx, val_idx, test_idx = split_customers(len(features), test_fraction, seed)
    dev_idx = np.sort(np.concatenate([fit_idx, val_idx]))
    fit_f, val_f = features.iloc[fit_idx].reset_index(drop=True), features.iloc[val_idx].reset_index(drop=True)
    dev_f, test_f = features.iloc[dev_idx].reset_index(drop=True), features.iloc[test_idx].reset_index(drop=True)

    params = {"data_dir": str(data_dir), "reference_date": reference_date, "min_k": min_k, "max_k": max_k,
              "test_fraction": test_fraction, "n_customers": len(features), "n_fit": len(fit_f),
              "n_validation": len(val_f), "n_test": len(test_f), "features": ",".join(FEATURES),
              "space": "log1p, standardised"}
    with family_run(FAMILY, "segments-kmeans", params=params) as run:
        log_tables_input(tables, data_dir, digest, names=("transactions",))
        baseline = {PRIMARY_METRIC: 0.0}  # one cluster: the silhouette is undefined, 0 by convention
        study = run_study(make_objective(fit_f, val_f, min_k, max_k, seed), study_name=study_name,
                          metrics=PRIMARY_METRIC, directions="maximize", n_trials=n_trials, timeout=timeout,
                          seed=seed, storage=storage, baseline=baseline)
        k = int(study.best_params["k"])
        segmenter = Segmenter(k=k, seed=seed).fit(dev_f)
        test_labels = segmenter.predict(test_f)
        test_value = evaluation_silhouette(test_f, test_labels)
        all_labels = segmenter.predict(features)
        profile, paragraphs = describe_segments(features, all_labels, segmenter.names_)
        mlflow.log_metrics({f"test_{PRIMARY_METRIC}": test_value, "n_segments": k,
                            **{f"segment_share_{i}": float(s) for i, s in enumerate(profile["share"])}})
        mlflow.log_params({"segment_names": " | ".join(segmenter.names_)})
        mlflow.log_table(table_for_mlflow(profile), artifact_file="tables/segments.json")
        mlflow.log_text(profile.to_csv(index=False), "tables/segments.csv")
        mlflow.log_text("\n\n".join(f"**{name}**. {text}" for name, text in paragraphs.items()) + "\n",
                        "segments/summary.md")
        log_figure(figs.segment_scatter(features, pd.Series(np.asarray(segmenter.names_, dtype=object)[all_labels])),
                   "plots/segment_scatter.png")
        log_figure(figs.segment_sizes(profile), "plots/segment_sizes.png")

        requests = test_f[list(FEATURES)].astype(float)
        truth = pd.DataFrame({"customer_id": test_f["customer_id"], "segment_id": test_labels.astype("int64")})
        log_holdout(requests, truth, {"family": FAMILY, "metric": PRIMARY_METRIC, "data_digest": digest,
                                      "reference_date": str(reference_date or "end of data")})
        example = requests.head(5).reset_index(drop=True)
        names = np.asarray(segmenter.names_, dtype=object)
        output = pd.DataFrame({"segment_id": test_labels[:5].astype("int64"), "segment_name": names[test_labels[:5]]})
        with tempfile.TemporaryDirectory() as tmp:
            path = segmenter.save(Path(tmp) / "segments.json")
            info = log_pyfunc_model(PYFUNC_FILE, artifacts={"segments": str(path)}, input_example=example,
                                    requirements=("numpy", "pandas"), signature=_signature(example, output))
        served = mlflow.pyfunc.load_model(info.model_uri).predict(requests)
        if not np.array_equal(served["segment_id"].to_numpy(), test_labels):
            raise StorefrontError(f"the logged model {info.model_uri} does not reproduce the test assignments")
        logger.info("segments: k=%d (%s), test silhouette %.4f", k, ", ".join(segmenter.names_), test_value)

    return TrainResult(family=FAMILY, run_id=run.info.run_id, model_uri=info.model_uri, primary_metric=PRIMARY_METRIC,
                       test_value=test_value, baseline_value=baseline[PRIMARY_METRIC], higher_is_better=True,
                       data_digest=digest,
                       extra={"k": k, "names": list(segmenter.names_), "profile": profile, "summaries": paragraphs,
                              "best_val_silhouette": study.best_value})


def train_from_args(args: argparse.Namespace):
    """The study and the final fit from the parsed options (no registration); returns the ``TrainResult``."""
    return train(args.data_dir, n_trials=args.n_trials, timeout=args.timeout, seed=args.seed, storage=args.storage,
                 study_name=args.study_name or "segments", min_k=args.min_k, max_k=args.max_k,
                 test_fraction=args.test_fraction, reference_date=args.reference_date)


def run(args: argparse.Namespace) -> int:
    """Train, then register the model as ``challenger`` when it passes the gate (positive test silhouette)."""
    from pipelines import registry

    result = train_from_args(args)
    outcome = registry.register_and_say(result)
    print(f"segments: k={result.extra['k']} ({', '.join(result.extra['names'])}); test silhouette "
          f"{result.test_value:.4f} (baseline {result.baseline_value:.4f}, one cluster); {outcome}; run {result.run_id}")
    return 0
