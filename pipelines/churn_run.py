"""The steps of one ``train_churn`` run: prepare the data (shop snapshots or a table), study, refit, log.

:func:`prepare_shop` and :func:`prepare_table` turn the options into a :class:`Prepared` run (tuning
problem, final-fit and test data, baseline kind, what to log); :func:`run_training` runs the Optuna study
in the family's parent run, refits the winner with its calibration and threshold, scores it once on the
test data, logs figures, the hold-out and the model (loaded back and checked), and returns the
``TrainResult``.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import mlflow
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from models.churn import DEFAULT_TRIAL, classification_at
from models.churn_columns import FeatureSpec
from models.churn_features import ID_COLUMN
from models.churn_labels import window_days_for
from models.churn_pyfunc import model_config, model_signature, output_columns, save_artifacts
from pipelines.churn_data import (
    load_table,
    model_name_for_table,
    plan_cutoffs,
    shop_snapshot,
    stack,
)
from pipelines.churn_report import log_report
from pipelines.churn_tuning import (
    CrossValProblem,
    TemporalProblem,
    baseline_model,
    fit_final,
    objective_for,
    params_from_trial,
    probability_metrics,
)
from pipelines.errors import ConfigurationError, StorefrontError
from pipelines.runs import TrainResult, family_run, log_pyfunc_model, log_tables_input, table_dataset
from pipelines.study import run_study
from pipelines.tables import dataset_digest, load_tables

logger = logging.getLogger(__name__)

PYFUNC_FILE = Path(__file__).resolve().parent.parent / "models" / "churn_pyfunc.py"
MODEL_REQUIREMENTS = ("numpy", "pandas", "scikit-learn", "joblib")
PRIMARY_METRIC = "auc"
PURCHASE_MODEL_NAME = "storefront-purchase"  # a purchase-propensity model never lands on storefront-churn


class RoundTripError(StorefrontError):
    """The logged model, loaded back, does not give the probabilities computed in training."""

    exit_code = 1


@dataclass
class Prepared:
    source: str  # "shop" or "table"
    target: str
    problem: TemporalProblem | CrossValProblem
    spec: FeatureSpec
    X_fit: pd.DataFrame
    y_fit: np.ndarray
    X_test: pd.DataFrame
    y_test: np.ndarray
    ids_test: np.ndarray
    baseline: str  # "recency" or "plain"
    digest: str
    log_inputs: Callable[[], None]
    run_params: dict
    config_extra: dict
    study_name: str
    run_name: str
    registered_model: str | None
    holdout_spec: dict = field(default_factory=dict)


def prepare_shop(args: argparse.Namespace) -> Prepared:
    from pipelines import tracking

    data_dir = Path(args.data_dir) if args.data_dir else tracking.default_data_dir()
    tables = load_tables(data_dir)
    digest = dataset_digest(tables)
    window = window_days_for(args.target, args.window_days)
    plan = plan_cutoffs(tables["transactions"]["purchase_date"], window, args.cutoff, args.snapshots,
                        args.lookback_days)
    logger.info("churn snapshots (%s, %d-day window): %s", args.target, window, plan.describe())

    built: dict[pd.Timestamp, object] = {}

    def snap(cutoff):  # the validation snapshot is also a refit snapshot: build each cutoff once
        if cutoff not in built:
            built[cutoff] = shop_snapshot(tables, cutoff, window, args.target, args.lookback_days)
        return built[cutoff]

    tuning = stack([snap(c) for c in plan.tuning_fit])
    validation = snap(plan.validation)
    final = validation if plan.final_fit == (plan.validation,) else stack([snap(c) for c in plan.final_fit])
    test = snap(plan.test)
    spec = FeatureSpec.from_frame(final.frame, exclude=[ID_COLUMN])
    problem = TemporalProblem(spec, tuning.frame[spec.features], tuning.y, validation.frame[spec.features],
                              validation.y, seed=args.seed)

    def log_inputs():
        log_tables_input(tables, data_dir, digest, names=("transactions", "events", "customers"))
        mlflow.log_metrics({
            "n_tuning_rows": tuning.size, "n_validation_rows": validation.size, "n_final_fit_rows": final.size,
            "n_test_rows": test.size, "tuning_positive_rate": float(tuning.y.mean()),
            "validation_positive_rate": float(validation.y.mean()), "test_positive_rate": float(test.y.mean()),
        })

    registered = args.registered_model or (PURCHASE_MODEL_NAME if args.target == "purchase" else None)
    return Prepared(
        source="shop", target=args.target, problem=problem, spec=spec,
        X_fit=final.frame[spec.features], y_fit=final.y, X_test=test.frame[spec.features], y_test=test.y,
        ids_test=test.frame[ID_COLUMN].to_numpy(dtype=str), baseline="recency", digest=digest, log_inputs=log_inputs,
        run_params={"source": "shop", "data_dir": str(data_dir), "target": args.target, "window_days": window,
                    "lookback_days": args.lookback_days, "snapshots": args.snapshots, "cost_ratio": args.cost_ratio,
                    **plan.describe()},
        config_extra={"source": "shop", "window_days": window, "lookback_days": args.lookback_days,
                      "test_cutoff": plan.test.isoformat()},
        study_name=args.study_name or f"churn-{args.target}-{window}d",
        run_name=f"churn-{args.target}-{window}d",
        registered_model=registered,
        holdout_spec={"target": args.target, "window_days": window, "test_cutoff": plan.test.isoformat()},
    )


def prepare_table(args: argparse.Namespace, test_fraction: float = 0.2, folds: int = 5) -> Prepared:
    data = load_table(args.table, args.label_column, args.id_column)
    counts = np.bincount(data.y, minlength=2)
    if counts.min() * test_fraction * (1 - 1 / folds) < 2:
        raise ConfigurationError(f"{data.path}: {counts.min()} rows of the rarer class are too few for a "
                                 f"{int(test_fraction * 100)}% test split and {folds}-fold tuning")
    index = np.arange(len(data.y))
    dev, test = train_test_split(index, test_size=test_fraction, stratify=data.y, random_state=args.seed)
    dev, test = np.sort(dev), np.sort(test)
    X_dev, y_dev = data.X.iloc[dev].reset_index(drop=True), data.y[dev]
    problem = CrossValProblem(data.spec, X_dev, y_dev, folds=folds, seed=args.seed)
    digest = dataset_digest({"table": data.raw})

    def log_inputs():
        mlflow.set_tag("data_digest", digest)
        mlflow.set_tag("data_table", str(data.path))
        mlflow.log_input(table_dataset(data.raw, data.path, data.path.stem), context="training")
        mlflow.log_metrics({"n_dev_rows": len(dev), "n_test_rows": len(test),
                            "dev_positive_rate": float(y_dev.mean()), "test_positive_rate": float(data.y[test].mean())})

    return Prepared(
        source="table", target="churn", problem=problem, spec=data.spec, X_fit=X_dev, y_fit=y_dev,
        X_test=data.X.iloc[test].reset_index(drop=True), y_test=data.y[test], ids_test=data.ids[test],
        baseline="plain", digest=digest, log_inputs=log_inputs,
        run_params={"source": "table", "table": str(data.path), "label_column": data.label_column,
                    "id_column": data.id_column or "", "test_fraction": test_fraction, "cv_folds": folds,
                    "cost_ratio": args.cost_ratio, "lenient_columns": ",".join(data.spec.lenient)},
        config_extra={"source": "table", "table": data.path.name, "label_column": data.label_column,
                      "id_column": data.id_column},
        study_name=args.study_name or f"churn-table-{data.path.stem}",
        run_name=f"churn-table-{data.path.stem}",
        registered_model=args.registered_model or model_name_for_table(data.path),
        holdout_spec={"table": data.path.name, "label_column": data.label_column},
    )


def run_training(prepared: Prepared, args: argparse.Namespace, family: str = "churn") -> TrainResult:
    from pipelines.rescoring import log_holdout

    p = prepared
    label = output_columns(p.target)[2]
    with family_run(family, p.run_name, params=p.run_params,
                    tags={"storefront.source": p.source, "storefront.target": p.target}) as run:
        p.log_inputs()
        baseline = baseline_model(p.baseline, p.spec, p.X_fit, p.y_fit, seed=args.seed)
        p_baseline = baseline.predict_proba(p.X_test)
        baseline_metrics = probability_metrics(p.y_test, p_baseline)
        study = run_study(objective_for(p.problem), study_name=p.study_name, metrics=PRIMARY_METRIC,
                          directions="maximize", n_trials=args.n_trials, timeout=args.timeout, seed=args.seed,
                          storage=args.storage, baseline=baseline_metrics, enqueue=[DEFAULT_TRIAL])
        params = params_from_trial(study.best_params)
        final = fit_final(p.problem, params, p.X_fit, p.y_fit, cost_ratio=args.cost_ratio, seed=args.seed)
        model = final.model
        p_test = model.predict_proba(p.X_test)
        p_test_raw = model.pipeline.predict_proba(p.X_test[p.spec.features])[:, 1]
        test = {**probability_metrics(p.y_test, p_test), **classification_at(p.y_test, p_test, model.threshold)}
        mlflow.log_metrics({f"test_{k}": v for k, v in test.items()})
        mlflow.log_metrics({"threshold": model.threshold, "val_brier_raw": final.calibration.brier_raw,
                            "val_brier_calibrated": final.calibration.brier_calibrated,
                            "final_convergence_warnings": final.convergence_warnings,
                            **{f"test_raw_{k}": v for k, v in probability_metrics(p.y_test, p_test_raw).items()
                               if k in ("brier", "log_loss")}})
        mlflow.log_params({"calibration": "platt" if model.calibration else "none",
                           "threshold_rule": "min cost" if args.cost_ratio else "max F1",
                           "baseline": p.baseline, "n_features": len(p.spec.features),
                           "registered_model": p.registered_model or ""})
        baseline_name = "recency-only LR" if p.baseline == "recency" else "plain one-hot + scaled LR"
        log_report(model, p.X_fit, p.y_test, p_test, p_test_raw, p_baseline, baseline_name, label)

        requests = pd.DataFrame({ID_COLUMN: p.ids_test}).join(p.X_test.reset_index(drop=True))
        truth = pd.DataFrame({ID_COLUMN: p.ids_test, "label": p.y_test.astype(int)})
        log_holdout(requests, truth, {"family": family, "metric": PRIMARY_METRIC, "source": p.source,
                                      "probability_column": output_columns(p.target)[0], "data_digest": p.digest,
                                      **p.holdout_spec})
        info = _log_model(model, p, requests)
        _check_round_trip(info.model_uri, requests, p_test, output_columns(p.target)[0])
        logger.info("test auc %.4f (baseline %.4f), pr_auc %.4f, brier %.4f, F1 %.3f at threshold %.3f",
                    test["auc"], baseline_metrics["auc"], test["pr_auc"], test["brier"], test["f1"], model.threshold)

    return TrainResult(
        family=family, run_id=run.info.run_id, model_uri=info.model_uri, primary_metric=PRIMARY_METRIC,
        test_value=test["auc"], baseline_value=baseline_metrics["auc"], higher_is_better=True,
        data_digest=p.digest, registered_model=p.registered_model,
        extra={"test_metrics": test, "baseline_test_metrics": baseline_metrics, "params": final.params,
               "threshold": model.threshold, "calibrated": model.calibration is not None, "source": p.source,
               "target": p.target, "test_probabilities": p_test, "model_id": getattr(info, "model_id", None)},
    )


def _log_model(model, p: Prepared, requests: pd.DataFrame):
    example = requests.head(5).reset_index(drop=True)
    config = model_config(model, p.target, **p.config_extra)
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = save_artifacts(model, config, tmp)
        return log_pyfunc_model(PYFUNC_FILE, name="model", artifacts=artifacts, input_example=example,
                                requirements=MODEL_REQUIREMENTS,
                                signature=model_signature(example, p.spec, p.target))


def _check_round_trip(model_uri: str, requests: pd.DataFrame, expected: np.ndarray, column: str) -> None:
    loaded = mlflow.pyfunc.load_model(model_uri)
    served = loaded.predict(requests)[column].to_numpy(float)
    if served.shape != expected.shape or not np.allclose(served, expected, rtol=0, atol=1e-9):
        worst = float(np.max(np.abs(served - expected))) if served.shape == expected.shape else float("nan")
        raise RoundTripError(f"the logged model {model_uri} does not reproduce the training probabilities "
                             f"(largest difference {worst})")
    logger.info("round trip: the logged model reproduces %d test probabilities", len(expected))
