"""Re-scoring registered models on a challenger's test data, for champion/challenger promotion.

Each training run logs its held-out test data under the run artifact folder ``holdout/`` with
:func:`log_holdout`: ``requests.parquet`` (rows as a client would send them to the served model),
``truth.parquet`` (what really happened) and ``spec.json`` (family, primary metric, parameters).
:func:`rescorer_for` turns a challenger version into a function that scores *any* model URI of the same
kind on exactly that data, so the current champion is judged on the challenger's test window rather than
on the metric it got on older data. A model that cannot take those requests (other features, other series)
raises :class:`RescoreError`, which blocks the promotion with its message.
"""

from __future__ import annotations

import importlib
import json
import logging
import tempfile
from pathlib import Path
from typing import Callable

import mlflow
import pandas as pd

from pipelines import families
from pipelines.errors import RescoreError

logger = logging.getLogger(__name__)


def log_holdout(requests: pd.DataFrame, truth: pd.DataFrame, spec: dict) -> None:
    """Log the test data of the active run under ``holdout/`` (see the module docstring), and the requests as the
    run's dataset input with context ``evaluation`` (the MLflow UI lists it next to the training data)."""
    from pipelines.mlflow_logging import table_dataset

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        requests.to_parquet(folder / "requests.parquet", index=False)
        truth.to_parquet(folder / "truth.parquet", index=False)
        (folder / "spec.json").write_text(json.dumps(spec, indent=2, default=str))
        mlflow.log_artifacts(tmp, "holdout")
    source = mlflow.get_artifact_uri("holdout/requests.parquet")
    mlflow.log_input(table_dataset(requests, source, "test-window"), context="evaluation")


def load_holdout(run_id: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    try:
        local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="holdout"))
    except Exception as exc:  # noqa: BLE001 - any store error means the data is not there
        raise RescoreError(f"run {run_id} has no holdout/ test data to re-score on: {exc}") from exc
    return (pd.read_parquet(local / "requests.parquet"), pd.read_parquet(local / "truth.parquet"),
            json.loads((local / "spec.json").read_text()))


def scorer(family: str) -> Callable:
    """The family's ``score(requests, truth, spec, model) -> float`` (:attr:`pipelines.families.Family.rescorer`)."""
    module, _, function = families.get(family).rescorer.partition(":")
    return getattr(importlib.import_module(module), function)


def rescorer_for(version) -> Callable[[str], float]:
    """A function scoring a model URI on the test data of the run behind registry ``version``."""
    requests, truth, spec = load_holdout(version.run_id)
    score = scorer(spec["family"])

    def rescore(model_uri: str) -> float:
        try:
            model = mlflow.pyfunc.load_model(model_uri)
            value = score(requests, truth, spec, model)
        except RescoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure to score means "cannot be compared"
            raise RescoreError(f"{type(exc).__name__}: {exc}") from exc
        logger.info("re-scored %s on the test data of run %s: %s = %.4f", model_uri, version.run_id,
                    spec["metric"], value)
        return value

    return rescore
