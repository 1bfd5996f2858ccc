"""The churn classifier: a scikit-learn Pipeline, its search space, calibration, threshold and risk segments.

* :func:`make_pipeline` builds ``ColumnTransformer`` (continuous numerics: median imputation, optional
  signed log, scaling, optional cubic ``SplineTransformer``; other numerics: imputation and scaling;
  categoricals: one-hot with ``handle_unknown="ignore"``, so an unseen category sets none of its
  column's indicators: that column then adds nothing to the log-odds; numeric columns that had missing
  values in training (``FeatureSpec.nullable``): also a ``MissingIndicator`` term each, so "missing" can
  carry its own weight instead of passing for the median)
  followed by ``LogisticRegression``. The penalty is given as ``l1``/``l2``/``elasticnet`` and mapped to
  scikit-learn's ``l1_ratio`` (1, 0, in between) with a solver that supports it (liblinear, lbfgs, saga).
* :func:`suggest_params` is the Optuna search space: ``C``, ``penalty`` (+ ``l1_ratio``), ``class_weight``,
  ``numeric_transform`` (scale or spline, + ``n_knots``) and ``log_transform``.
* :class:`PlattCalibration` maps raw probabilities through ``sigmoid(a * logit(p) + b)``;
  :func:`choose_calibration` keeps it only when it lowers the Brier score of cross-fitted predictions on
  validation data (class weights distort probabilities; this undoes it).
* :func:`tune_threshold` picks the decision threshold on validation data: maximum F1, or minimum cost when
  a cost ratio (cost of a missed churner / cost of a false alarm) is given.
* :func:`risk_segments`: ``low`` below 0.4, ``medium`` from 0.4 to below 0.7, ``high`` from 0.7 on
  (the seeds' cut-offs), applied to the (calibrated) probability. The ``churn`` flag uses the tuned
  threshold instead, so the two answer different questions: how urgent, and whether to act.

Never imports ``pipelines``.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, SplineTransformer, StandardScaler

from models.churn.columns import FeatureSpec
from models.churn.contract import SEGMENT_CUTS

logger = logging.getLogger(__name__)

SEGMENTS = ("low", "medium", "high")
PENALTIES = ("l2", "l1", "elasticnet")
TRANSFORMS = ("scale", "spline")
DEFAULT_PARAMS: dict[str, Any] = {"C": 1.0, "penalty": "l2", "l1_ratio": 0.0, "class_weight": "none",
                                  "numeric_transform": "scale", "n_knots": 5, "log_transform": False}
_EPS = 1e-6


def risk_segments(probability: np.ndarray, cuts: tuple[float, float] = SEGMENT_CUTS) -> np.ndarray:
    """``low`` (p < 0.4), ``medium`` (0.4 <= p < 0.7), ``high`` (p >= 0.7) for each probability."""
    index = np.searchsorted(np.asarray(cuts, dtype=float), np.asarray(probability, dtype=float), side="right")
    return np.asarray(SEGMENTS, dtype=object)[index]


def signed_log1p(x: np.ndarray) -> np.ndarray:
    """``sign(x) * log(1 + |x|)``: tames skewed amounts and counts, defined for negative values too."""
    return np.sign(x) * np.log1p(np.abs(x))


# --- search space and pipeline ------------------------------------------------------------------


# The defaults as Optuna trial params: enqueued as the first trial, so the study always scores plain
# one-hot + scaled L2 logistic regression (a tiny budget then cannot end below it on validation).
DEFAULT_TRIAL: dict[str, Any] = {"C": 1.0, "penalty": "l2", "class_weight": "none", "numeric_transform": "scale",
                                 "log_transform": False}


def suggest_params(trial) -> dict[str, Any]:
    """Sample one configuration from an Optuna ``trial`` (the keys of :data:`DEFAULT_PARAMS`)."""
    params: dict[str, Any] = {"C": trial.suggest_float("C", 1e-3, 30.0, log=True)}
    penalty = trial.suggest_categorical("penalty", list(PENALTIES))
    params["penalty"] = penalty
    params["l1_ratio"] = (trial.suggest_float("l1_ratio", 0.1, 0.9) if penalty == "elasticnet"
                          else {"l1": 1.0, "l2": 0.0}[penalty])
    params["class_weight"] = trial.suggest_categorical("class_weight", ["none", "balanced"])
    params["numeric_transform"] = trial.suggest_categorical("numeric_transform", list(TRANSFORMS))
    params["n_knots"] = trial.suggest_int("n_knots", 3, 8) if params["numeric_transform"] == "spline" else 0
    params["log_transform"] = trial.suggest_categorical("log_transform", [False, True])
    return params


def complete_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` over :data:`DEFAULT_PARAMS`, checked (raises ``ValueError`` naming the bad key)."""
    full = {**DEFAULT_PARAMS, **dict(params)}
    if full["penalty"] not in PENALTIES:
        raise ValueError(f"penalty must be one of {', '.join(PENALTIES)}, got {full['penalty']!r}")
    if full["penalty"] == "l1":
        full["l1_ratio"] = 1.0
    elif full["penalty"] == "l2":
        full["l1_ratio"] = 0.0
    elif not 0.0 < float(full["l1_ratio"]) < 1.0:
        raise ValueError(f"l1_ratio must be strictly between 0 and 1 for elasticnet, got {full['l1_ratio']!r}")
    if full["numeric_transform"] not in TRANSFORMS:
        raise ValueError(f"numeric_transform must be one of {', '.join(TRANSFORMS)}, got {full['numeric_transform']!r}")
    if full["class_weight"] not in ("none", "balanced"):
        raise ValueError(f"class_weight must be none or balanced, got {full['class_weight']!r}")
    if not float(full["C"]) > 0:
        raise ValueError(f"C must be positive, got {full['C']!r}")
    return full


def _classifier(params: Mapping[str, Any], seed: int) -> LogisticRegression:
    solver = {"l2": "lbfgs", "l1": "liblinear", "elasticnet": "saga"}[params["penalty"]]
    return LogisticRegression(
        C=float(params["C"]), l1_ratio=float(params["l1_ratio"]), solver=solver,
        class_weight="balanced" if params["class_weight"] == "balanced" else None,
        # saga converges slowly on spline bases with weak regularisation: a looser tolerance keeps a trial
        # within seconds (the AUC is unaffected at 1e-3); warnings are counted by fit_pipeline.
        max_iter=1000, tol=1e-3 if solver == "saga" else 1e-4, random_state=seed,
    )


def make_pipeline(params: Mapping[str, Any], spec: FeatureSpec, seed: int = 0) -> Pipeline:
    """The unfitted Pipeline for ``params`` (see :func:`complete_params`) over the columns of ``spec``."""
    params = complete_params(params)
    continuous = [c for c in spec.numeric if c in set(spec.continuous)]
    discrete = [c for c in spec.numeric if c not in set(spec.continuous)]
    steps = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
    if params["log_transform"]:
        steps.append(("log", FunctionTransformer(signed_log1p, feature_names_out="one-to-one")))
    steps.append(("scale", StandardScaler()))
    if params["numeric_transform"] == "spline":
        steps.append(("spline", SplineTransformer(n_knots=int(params["n_knots"]), degree=3, knots="quantile",
                                                  extrapolation="constant")))
    transformers = []
    if continuous:
        transformers.append(("num", Pipeline(steps), continuous))
    if discrete:
        transformers.append(("bin", Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                                              ("scale", StandardScaler())]), discrete))
    if spec.categorical:
        transformers.append(("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(spec.categorical)))
    if spec.imputed_numeric:  # a 0/1 term per numeric column that had missing values in training
        transformers.append(("missing", MissingIndicator(features="all"), spec.imputed_numeric))
    if not transformers:
        raise ValueError("the feature spec has no columns")
    return Pipeline([("features", ColumnTransformer(transformers)), ("model", _classifier(params, seed))])


def fit_pipeline(pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray) -> int:
    """Fit in place; returns how many ConvergenceWarnings the solver raised (they are counted, not shown)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        pipeline.fit(X, np.asarray(y, dtype=int))
    others = [w for w in caught if not issubclass(w.category, ConvergenceWarning)]
    for w in others:  # not ours to hide
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    count = len(caught) - len(others)
    if count:
        logger.debug("logistic regression did not converge (%d warning(s))", count)
    return count


def positive_probability(pipeline: Pipeline, X: pd.DataFrame) -> np.ndarray:
    return pipeline.predict_proba(X)[:, 1]


# --- calibration and threshold ------------------------------------------------------------------


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class PlattCalibration:
    """``sigmoid(slope * logit(p) + intercept)``: two numbers, fitted on validation predictions."""

    slope: float
    intercept: float

    @classmethod
    def fit(cls, y: np.ndarray, p: np.ndarray) -> "PlattCalibration":
        lr = LogisticRegression(C=1e4, solver="lbfgs", max_iter=1000)
        lr.fit(_logit(p)[:, None], np.asarray(y, dtype=int))
        return cls(float(lr.coef_[0, 0]), float(lr.intercept_[0]))

    def apply(self, p: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.slope * _logit(p) + self.intercept)))

    def to_dict(self) -> dict:
        return {"method": "platt", "slope": self.slope, "intercept": self.intercept}

    @classmethod
    def from_dict(cls, data: Mapping | None) -> "PlattCalibration | None":
        return None if not data else cls(float(data["slope"]), float(data["intercept"]))


def _brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((np.asarray(p, dtype=float) - np.asarray(y, dtype=float)) ** 2))


@dataclass(frozen=True)
class CalibrationChoice:
    calibration: PlattCalibration | None
    brier_raw: float
    brier_calibrated: float  # cross-fitted: each prediction calibrated by a map fitted without it


def choose_calibration(y: np.ndarray, p: np.ndarray, seed: int = 0, folds: int = 5) -> CalibrationChoice:
    """Platt calibration when it lowers the cross-fitted Brier score of ``p`` against ``y``, else None."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    folds = min(folds, int(np.bincount(y, minlength=2).min()))
    raw = _brier(y, p)
    if folds < 2:
        return CalibrationChoice(None, raw, raw)
    oof = np.empty_like(p)
    for fit_idx, apply_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(p, y):
        oof[apply_idx] = PlattCalibration.fit(y[fit_idx], p[fit_idx]).apply(p[apply_idx])
    calibrated = _brier(y, oof)
    chosen = PlattCalibration.fit(y, p) if calibrated < raw else None
    return CalibrationChoice(chosen, raw, calibrated)


def tune_threshold(y: np.ndarray, p: np.ndarray, cost_ratio: float | None = None) -> float:
    """The threshold t (predict churn when p >= t) that maximises F1, or minimises cost.

    With ``cost_ratio`` r the cost is ``false positives + r * false negatives`` (a missed churner costs r
    false alarms). Candidate thresholds are the observed probabilities; ties in p are kept together.
    """
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    if y.size == 0 or y.size != p.size:
        raise ValueError(f"y and p must be non-empty and aligned, got {y.size} and {p.size} values")
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    last_of_tie = np.r_[ps[1:] != ps[:-1], True]  # predicting p >= ps[i] flags everything up to the tie's end
    tp = np.cumsum(ys)[last_of_tie]
    fp = np.cumsum(1 - ys)[last_of_tie]
    candidates = ps[last_of_tie]
    positives = int(ys.sum())
    fn = positives - tp
    if cost_ratio is None:
        f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros(len(tp)), where=(2 * tp + fp + fn) > 0)
        return float(candidates[int(np.argmax(f1))])
    if not cost_ratio > 0:
        raise ValueError(f"cost_ratio must be positive, got {cost_ratio!r}")
    cost = fp + cost_ratio * fn
    best = int(np.argmin(cost))
    if positives * cost_ratio < cost[best]:  # flagging nobody is cheaper
        return float(np.nextafter(ps[0], np.inf))
    return float(candidates[best])


def classification_at(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """Precision, recall and F1 of ``p >= threshold`` (0.0 when undefined)."""
    y = np.asarray(y, dtype=int)
    flag = np.asarray(p, dtype=float) >= threshold
    tp = float(np.sum(flag & (y == 1)))
    fp = float(np.sum(flag & (y == 0)))
    fn = float(np.sum(~flag & (y == 1)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


# --- the fitted model ---------------------------------------------------------------------------


@dataclass
class ChurnClassifier:
    """A fitted pipeline with its calibration and threshold: everything the served model needs."""

    pipeline: Pipeline
    spec: FeatureSpec
    threshold: float
    calibration: PlattCalibration | None = None

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = positive_probability(self.pipeline, X[self.spec.features])
        return p if self.calibration is None else self.calibration.apply(p)

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Log-odds after calibration (a monotone map of the pipeline's own log-odds)."""
        z = self.pipeline.decision_function(X[self.spec.features])
        return z if self.calibration is None else self.calibration.slope * z + self.calibration.intercept


def coefficient_table(pipeline: Pipeline) -> pd.DataFrame:
    """One row per model term: ``term`` (transformed feature), ``coefficient``, ``odds_ratio`` (exp of it)."""
    names = pipeline.named_steps["features"].get_feature_names_out()
    coef = pipeline.named_steps["model"].coef_[0]
    table = pd.DataFrame({"term": [n.split("__", 1)[-1] for n in names], "coefficient": coef,
                          "odds_ratio": np.exp(coef)})
    order = np.argsort(-np.abs(coef), kind="stable")
    return table.iloc[order].reset_index(drop=True)


def odds_ratio_table(model: ChurnClassifier, X: pd.DataFrame, max_levels: int = 10) -> pd.DataFrame:
    """Odds ratio per input feature, read off the model (additive in the features, so exact):

    numeric features compare their 90th to their 10th percentile in ``X`` (min to max when those are equal);
    categorical levels (the ``max_levels`` most frequent) compare with the most frequent level. Other
    features are held at their median or most frequent value. Columns: ``feature``, ``comparison``,
    ``low``, ``high``, ``odds_ratio``.
    """
    spec = model.spec
    X = X[spec.features]
    base = {c: float(np.nanmedian(X[c].to_numpy(float))) if X[c].notna().any() else 0.0 for c in spec.numeric}
    modes = {c: X[c].value_counts().index[0] for c in spec.categorical}
    base.update(modes)
    rows, pairs = [], []
    for col in spec.numeric:
        values = X[col].dropna().to_numpy(float)
        if values.size == 0:
            continue
        low, high = np.quantile(values, [0.1, 0.9])
        if low == high:
            low, high = values.min(), values.max()
        if low == high:
            continue
        rows.append({"feature": col, "comparison": "p90 vs p10" if (low, high) != (values.min(), values.max())
                     else "max vs min", "low": f"{low:.4g}", "high": f"{high:.4g}"})
        pairs.append(({**base, col: low}, {**base, col: high}))
    for col in spec.categorical:
        for level in X[col].value_counts().index[1:max_levels + 1]:
            rows.append({"feature": col, "comparison": f"{level} vs {modes[col]}", "low": str(modes[col]),
                         "high": str(level)})
            pairs.append(({**base, col: modes[col]}, {**base, col: level}))
    if not rows:
        return pd.DataFrame(columns=["feature", "comparison", "low", "high", "odds_ratio"])
    lows = pd.DataFrame([a for a, _ in pairs])[spec.features]
    highs = pd.DataFrame([b for _, b in pairs])[spec.features]
    for frame in (lows, highs):
        for col in spec.numeric:
            frame[col] = frame[col].astype(float)
    diff = model.decision_function(highs) - model.decision_function(lows)
    table = pd.DataFrame(rows)
    table["odds_ratio"] = np.exp(diff)
    order = np.argsort(-np.abs(diff), kind="stable")
    return table.iloc[order].reset_index(drop=True)
