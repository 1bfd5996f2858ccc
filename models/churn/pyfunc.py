"""The pyfunc "model from code" that serves a churn (or purchase-propensity) classifier.

Logged by ``pipelines.churn.steps`` with two artifacts written by :func:`save_artifacts`: ``pipeline``
(the fitted scikit-learn Pipeline, joblib, compressed; scikit-learn is pinned in the model's requirements)
and ``config`` (JSON: the feature spec, the threshold, the Platt calibration, the segment cut-offs, the
target and, for shop models, the lookback and label windows that the batch scorer needs).

Serving contract (:mod:`models.churn.contract`):

* input rows: ``customer_id`` (string, or an integer) plus every feature column of the signature. Numeric
  features are numbers: finite, of magnitude at most 1e15, never booleans (they are declared ``Any`` so that
  MLflow passes them unconverted and the model can refuse ``true`` or ``"3"``); a numeric column of a
  bring-your-own table that held missing values written as text in training (blanks, ``?``, ...) also accepts
  numbers as text and those markers (= missing), exactly as training read them. A null is imputed only in a
  column that had missing values in training (``FeatureSpec.nullable``, listed in the MLmodel metadata as
  ``nullable_columns``); elsewhere it is a 400. Categorical features are strings; an unseen category is fine
  (none of its column's one-hot terms applies: the column adds nothing).
* output one row per input row: ``customer_id, churn_probability, risk_segment, churn`` (for the purchase
  target: ``purchase_probability, propensity_segment, purchase``). The segment is ``low`` below 0.4,
  ``medium`` below 0.7, else ``high``; the flag is ``probability >= threshold`` (tuned on validation data).
* a missing or mistyped column, a null the model does not impute, or more rows than the row limit
  (:func:`models.contracts.row_limit`) raises :func:`models.serving.bad_request` (HTTP 400) naming the column
  and the row.

Request path: at load time the fitted pipeline is compiled to plain NumPy arrays
(:mod:`models.churn.compiled`: the same probabilities, without scikit-learn's per-call validation and
DataFrame copies), and the request's columns are read with :func:`models.churn.columns.coerce_arrays`
(the same conversion and errors as training, without building an intermediate DataFrame). A pipeline
the compiler does not support is scored by scikit-learn as before.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from models.churn.classifier import SEGMENT_CUTS, ChurnClassifier, PlattCalibration, risk_segments
from models.churn.columns import ID_COLUMN, FeatureSpec, FeatureTypeError, FrameColumns, coerce_arrays
from models.churn.compiled import CompiledPipeline, UnsupportedPipeline, compile_pipeline
from models.churn.contract import output_columns
from models.contracts import MAX_ROWS, row_limit
from models.serving import as_frame, bad_request, check_rows, require_columns, string_values

logger = logging.getLogger(__name__)

PIPELINE_ARTIFACT = "pipeline"
CONFIG_ARTIFACT = "config"


def model_config(model: ChurnClassifier, target: str, **extra: Any) -> dict:
    """The JSON config stored beside the pipeline (``extra``: source, windows, label column, ...)."""
    return {"target": target, "spec": model.spec.to_dict(), "threshold": float(model.threshold),
            "calibration": None if model.calibration is None else model.calibration.to_dict(),
            "segment_cuts": list(SEGMENT_CUTS), **extra}


def save_artifacts(model: ChurnClassifier, config: dict, folder: str | Path) -> dict[str, str]:
    """Write the two artifacts into ``folder``; returns the ``artifacts`` mapping for ``log_model``."""
    import joblib

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pipeline_path = folder / "pipeline.joblib"
    config_path = folder / "churn_config.json"
    joblib.dump(model.pipeline, pipeline_path, compress=3)
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True))
    return {PIPELINE_ARTIFACT: str(pipeline_path), CONFIG_ARTIFACT: str(config_path)}


def load_classifier(pipeline_path: str | Path, config_path: str | Path) -> tuple[ChurnClassifier, dict]:
    import joblib

    config = json.loads(Path(config_path).read_text())
    model = ChurnClassifier(joblib.load(pipeline_path), FeatureSpec.from_dict(config["spec"]),
                            float(config["threshold"]), PlattCalibration.from_dict(config.get("calibration")))
    return model, config


class ChurnModel(mlflow.pyfunc.PythonModel):
    """Churn probability, risk segment and decision flag for each request row.

    ``model_input`` is annotated ``pd.DataFrame``: MLflow then validates requests against the logged
    signature only (a DataFrame hint infers no schema of its own).
    """

    def __init__(self):
        self.classifier: ChurnClassifier | None = None
        self.config: dict = {}
        self._compiled_for: ChurnClassifier | None = None
        self._compiled: CompiledPipeline | None = None
        self.max_rows = MAX_ROWS

    def load_context(self, context):
        self.classifier, self.config = load_classifier(context.artifacts[PIPELINE_ARTIFACT],
                                                       context.artifacts[CONFIG_ARTIFACT])
        self.compiled()
        self.max_rows = row_limit(context.model_config)

    def compiled(self) -> CompiledPipeline | None:
        """The NumPy form of the current classifier's pipeline (None: scored by scikit-learn)."""
        if self._compiled_for is not self.classifier:
            self._compiled_for = self.classifier
            try:
                self._compiled = compile_pipeline(self.classifier.pipeline, self.classifier.spec)
            except UnsupportedPipeline as exc:
                logger.info("churn pipeline scored by scikit-learn (not compiled: %s)", exc)
                self._compiled = None
        return self._compiled

    def probability(self, numeric: np.ndarray, categorical: list[np.ndarray]) -> np.ndarray:
        classifier, compiled = self.classifier, self.compiled()
        if compiled is None:
            spec = classifier.spec
            X = pd.DataFrame({**{c: numeric[:, i] for i, c in enumerate(spec.numeric)},
                              **dict(zip(spec.categorical, categorical))})[spec.features]
            return classifier.predict_proba(X)
        p = compiled.predict_proba(numeric, categorical)
        return p if classifier.calibration is None else classifier.calibration.apply(p)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:  # noqa: ARG002
        spec = self.classifier.spec
        frame = as_frame(model_input)
        check_rows(len(frame), self.max_rows)
        columns = FrameColumns(frame)
        if any(c not in columns for c in (ID_COLUMN, *spec.features)):
            require_columns(frame, [ID_COLUMN, *spec.features])
        ids = np.array(string_values(columns.items(ID_COLUMN), ID_COLUMN), dtype=object)
        try:
            numeric, categorical = coerce_arrays(columns, spec, strict=True)
        except FeatureTypeError as exc:
            raise bad_request(str(exc)) from None
        probability, segment, flag = output_columns(self.config.get("target", "churn"))
        p = self.probability(numeric, categorical) if columns.rows else np.array([], dtype=float)
        return pd.DataFrame({
            ID_COLUMN: ids,
            probability: p.astype(float),
            segment: risk_segments(p, tuple(self.config.get("segment_cuts", SEGMENT_CUTS))),
            flag: p >= self.classifier.threshold,
        })


mlflow.models.set_model(ChurnModel())
