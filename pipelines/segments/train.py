"""Customer segmentation with K-Means, k tuned by Optuna on the silhouette score (``train_segments``).

Reads the transactions from ``--data-dir`` (default ``data/generated``) and builds one row per customer who
bought before the reference date (``--reference-date``, default the day after the last purchase):
``total_spending``, ``frequency_days`` (distinct purchase days), ``avg_spend_per_item`` and ``recency_days``
(``models/segments/model.py``). They are modelled in log1p space, standardised. A random ``--test-fraction`` of the
customers (seeded, :func:`evaluation.splits.random_partition`) is held out. Optuna searches k in ``--min-k``..``--max-k`` (default 2..10): each trial fits
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
(``models/segments/pyfunc.py``: input the four feature columns, output ``segment_id, segment_name``),
checked by loading it back. :func:`train` registers nothing and returns a ``TrainResult``; the
command registers ``storefront-segments@challenger`` when the gate passes and prints the verdict.
"""

from __future__ import annotations

import argparse
import logging

from pipelines.families import get


logger = logging.getLogger(__name__)

FAMILY = get("segments")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pipelines.options import add_study_options, whole_number

    add_study_options(parser, FAMILY, study_name="segments", seed_help="sampler, split and K-Means seed")
    parser.add_argument("--min-k", type=whole_number, default=2, help="smallest number of segments tried (default 2)")
    parser.add_argument("--max-k", type=whole_number, default=10, help="largest number of segments tried (default 10)")
    parser.add_argument("--test-fraction", type=float, default=0.2,
                        help="share of customers held out for the test silhouette (default 0.2)")
    parser.add_argument("--reference-date", default=None,
                        help="features use purchases before this date (default: the day after the last purchase)")


def config_from_args(args: argparse.Namespace):
    """The :class:`pipelines.segments.steps.SegmentsConfig` of the parsed options."""
    from pipelines.options import StudyOptions
    from pipelines.segments.steps import SegmentsConfig

    return SegmentsConfig(study=StudyOptions.from_args(args), data_dir=args.data_dir, min_k=args.min_k,
                          max_k=args.max_k, test_fraction=args.test_fraction, reference_date=args.reference_date)


def train(config):
    """The steps of :mod:`pipelines.segments.steps` in the family's parent run; returns the ``TrainResult``."""
    from models.segments.model import FEATURES, Segmenter, customer_features, evaluation_silhouette
    from pipelines.data.tables import dataset_digest, load_tables
    from pipelines.errors import ConfigurationError
    from pipelines.mlflow_logging import TrainResult, family_run, log_tables_input
    from pipelines.segments import steps
    from pipelines.study import run_study
    from pipelines.tracking import default_data_dir

    data_dir = config.data_dir or default_data_dir()
    tables = load_tables(data_dir)
    digest = dataset_digest(tables)
    try:
        features = customer_features(tables["transactions"], config.reference_date)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"--reference-date {config.reference_date!r}: {exc}") from None
    steps.check_config(config, len(features))
    split = steps.split_customers(features, config.test_fraction, config.study.seed)
    seed = config.study.seed
    params = {"data_dir": str(data_dir), "reference_date": config.reference_date, "min_k": config.min_k,
              "max_k": config.max_k, "test_fraction": config.test_fraction, "n_customers": len(features),
              "n_fit": len(split.fit), "n_validation": len(split.validation), "n_test": len(split.test),
              "features": ",".join(FEATURES), "space": "log1p, standardised"}
    with family_run(FAMILY.name, f"K-Means, k {config.min_k} to {config.max_k}", params=params) as run:
        log_tables_input(tables, data_dir, digest, names=("transactions",))
        baseline = {FAMILY.primary_metric: 0.0}  # one cluster: the silhouette is undefined, 0 by convention
        study = run_study(steps.make_objective(split.fit, split.validation, config.min_k, config.max_k, seed),
                          options=config.study.named("segments"), metrics=FAMILY.primary_metric,
                          directions="maximize", baseline=baseline)
        k = int(study.best_params["k"])
        segmenter = Segmenter(k=k, seed=seed).fit(split.dev)
        test_labels = segmenter.predict(split.test)
        test_value = evaluation_silhouette(split.test, test_labels)
        profile, paragraphs = steps.log_profile(features, segmenter, test_value)
        info = steps.log_model(segmenter, split.test, test_labels, digest, config.reference_date)
        logger.info("segments: k=%d (%s), test silhouette %.4f", k, ", ".join(segmenter.names_), test_value)

    return TrainResult(family=FAMILY.name, run_id=run.info.run_id, model_uri=info.model_uri,
                       primary_metric=FAMILY.primary_metric, test_value=test_value,
                       baseline_value=baseline[FAMILY.primary_metric], higher_is_better=FAMILY.higher_is_better,
                       data_digest=digest,
                       extra={"k": k, "names": list(segmenter.names_), "profile": profile, "summaries": paragraphs,
                              "best_val_silhouette": study.best_value},
                       split=(f"customers have no order here: a random {config.test_fraction:.0%} of them is the "
                              f"test set; each trial fits on {1 - steps.VALIDATION_FRACTION:.0%} of the others and "
                              "scores the rest"),
                       baseline="one cluster (silhouette 0 by convention)")


def summary(result, verdict: str) -> str:
    """The command's closing line (after :func:`train` and the registration gate)."""
    return (f"segments: k={result.extra['k']} ({', '.join(result.extra['names'])}); test silhouette "
            f"{result.test_value:.4f} (baseline {result.baseline_value:.4f}, one cluster); {verdict}; "
            f"run {result.run_id}")
