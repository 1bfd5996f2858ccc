"""The steps of one ``train_segments`` run, on a typed :class:`SegmentsConfig`: the customer split, the study's
objective, the refit and its test silhouette, the profile figures and tables, the served model."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from evaluation.splits import random_partition
from models.segments.contract import CONTRACT, PYFUNC_FILE
from models.segments.model import FEATURES, Segmenter, describe_segments, evaluation_silhouette
from pipelines.analytics import figures as figs
from pipelines.analytics.analyze import table_for_mlflow
from pipelines.errors import ConfigurationError, DataValidationError
from pipelines.families import get
from pipelines.mlflow_logging import check_round_trip, columns_agree, log_figure, log_pyfunc_model
from pipelines.options import TrainConfig
from pipelines.rescoring import log_holdout

logger = logging.getLogger(__name__)

FAMILY = get("segments")
DEFAULT_TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.25


@dataclass(frozen=True)
class SegmentsConfig(TrainConfig):
    """What one ``train_segments`` run does (the options of :mod:`pipelines.segments.train`)."""

    min_k: int = 2
    max_k: int = 10
    test_fraction: float = DEFAULT_TEST_FRACTION
    reference_date: str | None = None


def check_config(config: SegmentsConfig, n_customers: int) -> None:
    """The options against each other and against the number of customers."""
    if config.study.n_trials is not None and config.study.n_trials < 1:
        raise ConfigurationError(f"--n-trials must be at least 1, got {config.study.n_trials}")
    if not 2 <= config.min_k <= config.max_k:
        raise ConfigurationError(f"--min-k and --max-k must satisfy 2 <= min-k <= max-k, got {config.min_k} and "
                                 f"{config.max_k}")
    if not 0 < config.test_fraction < 0.9:
        raise ConfigurationError(f"--test-fraction must be between 0 and 0.9, got {config.test_fraction}")
    needed = int(config.max_k / (1 - VALIDATION_FRACTION) / (1 - config.test_fraction)) + 10
    if n_customers < needed:
        raise DataValidationError(f"transactions: {n_customers} customers with purchases are too few for up to "
                                  f"{config.max_k} segments with a test and a validation split (need at least {needed})")


@dataclass
class Split:
    fit: pd.DataFrame
    validation: pd.DataFrame
    dev: pd.DataFrame  # fit + validation: the refit's customers
    test: pd.DataFrame


def split_customers(features: pd.DataFrame, test_fraction: float, seed: int) -> Split:
    """Customers have no time order here: a seeded random partition into fit, validation and test."""
    fit_idx, val_idx, test_idx = random_partition(len(features), test_fraction, VALIDATION_FRACTION, seed)
    dev_idx = np.sort(np.concatenate([fit_idx, val_idx]))

    def rows(index):
        return features.iloc[index].reset_index(drop=True)

    return Split(rows(fit_idx), rows(val_idx), rows(dev_idx), rows(test_idx))


def make_objective(fit_features, val_features, min_k: int, max_k: int, seed: int):
    """Validation silhouette of K-Means with k from the trial (fitted on ``fit_features``)."""

    def objective(trial) -> float:
        k = trial.suggest_int("k", min_k, max_k)
        segmenter = Segmenter(k=k, seed=seed).fit(fit_features)
        return evaluation_silhouette(val_features, segmenter.predict(val_features))

    return objective


def log_profile(features: pd.DataFrame, segmenter: Segmenter, test_value: float) -> tuple[pd.DataFrame, dict]:
    """Test silhouette, the segment profile, summaries and figures; returns ``(profile, paragraphs)``."""
    all_labels = segmenter.predict(features)
    profile, paragraphs = describe_segments(features, all_labels, segmenter.names_)
    mlflow.log_metrics({f"test_{FAMILY.primary_metric}": test_value, "n_segments": segmenter.k,
                        **{f"segment_share_{i}": float(s) for i, s in enumerate(profile["share"])}})
    mlflow.log_params({"segment_names": " | ".join(segmenter.names_)})
    mlflow.log_table(table_for_mlflow(profile), artifact_file="tables/segments.json")
    mlflow.log_text(profile.to_csv(index=False), "tables/segments.csv")
    mlflow.log_text("\n\n".join(f"**{name}**. {text}" for name, text in paragraphs.items()) + "\n",
                    "segments/summary.md")
    log_figure(figs.segment_scatter(features, pd.Series(np.asarray(segmenter.names_, dtype=object)[all_labels])),
               "plots/segment_scatter.png")
    log_figure(figs.segment_sizes(profile), "plots/segment_sizes.png")
    return profile, paragraphs


def log_model(segmenter: Segmenter, test: pd.DataFrame, test_labels: np.ndarray, digest: str,
              reference_date: str | None):
    """The test customers' features as ``holdout/`` and the pyfunc model, checked by loading it back."""
    requests = test[list(FEATURES)].astype(float)
    truth = pd.DataFrame({"customer_id": test["customer_id"], "segment_id": test_labels.astype("int64")})
    log_holdout(requests, truth, {"family": FAMILY.name, "metric": FAMILY.primary_metric, "data_digest": digest,
                                  "reference_date": str(reference_date or "end of data")})
    with tempfile.TemporaryDirectory() as tmp:
        path = segmenter.save(Path(tmp) / "segments.json")
        info = log_pyfunc_model(PYFUNC_FILE, name=FAMILY.logged_model, artifacts={"segments": str(path)}, input_example=requests.head(5),
                                requirements=("numpy", "pandas"), signature=CONTRACT.signature())
    expected = pd.DataFrame({"segment_id": test_labels.astype("int64")})
    check_round_trip(info.model_uri, requests, expected, columns_agree([], exact=["segment_id"]))
    return info
