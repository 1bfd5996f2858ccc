"""Figures and tables of a churn training run, logged as artifacts of the active MLflow run.

* ``plots/roc_curve.png`` and ``plots/pr_curve.png``: the tuned model against the baseline on the test set;
* ``plots/reliability.png``: the reliability (calibration) diagram on the test set, with the uncalibrated
  probabilities when a calibration was applied, and the baseline;
* ``plots/score_distribution.png``: the predicted probability by true class, with the threshold and the
  risk-segment cut-offs;
* ``tables/odds_ratios.csv`` + ``plots/odds_ratios.png``: odds ratio per input feature (90th vs 10th
  percentile for numbers, each level vs the most frequent one for categories), read off the model;
* ``tables/coefficients.csv``: every model term's coefficient and odds ratio (per standard deviation for
  scaled numbers, per spline basis function, per one-hot level).
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd

from models.churn.classifier import SEGMENT_CUTS, ChurnClassifier, coefficient_table, odds_ratio_table
from pipelines.mlflow_logging import log_figure

TOP_FEATURES = 20


def _figure(width: float = 6.5, height: float = 5.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def roc_figure(y, curves: dict[str, np.ndarray]):
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = _figure()
    for name, p in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="random")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve (test)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def pr_figure(y, curves: dict[str, np.ndarray]):
    from sklearn.metrics import average_precision_score, precision_recall_curve

    fig, ax = _figure()
    for name, p in curves.items():
        precision, recall, _ = precision_recall_curve(y, p)
        ax.step(recall, precision, where="post", label=f"{name} (AP {average_precision_score(y, p):.3f})")
    ax.axhline(float(np.mean(y)), color="grey", linestyle=":", label=f"prevalence {np.mean(y):.3f}")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall curve (test)", ylim=(0, 1.02))
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


def reliability_figure(y, curves: dict[str, np.ndarray], bins: int = 10):
    from sklearn.calibration import calibration_curve

    fig, ax = _figure()
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    for name, p in curves.items():
        observed, predicted = calibration_curve(y, p, n_bins=bins, strategy="quantile")
        brier = float(np.mean((np.asarray(p) - np.asarray(y)) ** 2))
        ax.plot(predicted, observed, marker="o", label=f"{name} (Brier {brier:.3f})")
    ax.set(xlabel="mean predicted probability", ylabel="observed frequency", title="Reliability diagram (test)",
           xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def score_distribution_figure(y, p, threshold: float, label: str):
    fig, ax = _figure(7, 4.5)
    bins = np.linspace(0, 1, 41)
    y = np.asarray(y)
    ax.hist(p[y == 0], bins=bins, alpha=0.6, label=f"no {label} (n={int((y == 0).sum())})")
    ax.hist(p[y == 1], bins=bins, alpha=0.6, label=f"{label} (n={int((y == 1).sum())})")
    ax.axvline(threshold, color="black", label=f"threshold {threshold:.3f}")
    for cut in SEGMENT_CUTS:
        ax.axvline(cut, color="grey", linestyle="--")
    ax.set(xlabel=f"predicted {label} probability (segments cut at {SEGMENT_CUTS[0]} and {SEGMENT_CUTS[1]})",
           ylabel="customers", title="Score distribution by true class (test)")
    ax.legend()
    fig.tight_layout()
    return fig


def odds_ratio_figure(table: pd.DataFrame):
    top = table.head(TOP_FEATURES).iloc[::-1]
    fig, ax = _figure(8, max(3.0, 0.35 * len(top) + 1.2))
    labels = [f"{f} ({c})" for f, c in zip(top["feature"], top["comparison"])]
    colours = ["tab:red" if v > 1 else "tab:blue" for v in top["odds_ratio"]]
    ax.barh(labels, top["odds_ratio"], color=colours)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set(xlabel="odds ratio (log scale; > 1 raises the odds)", title=f"Odds ratios, top {len(top)} features")
    fig.tight_layout()
    return fig


def log_report(model: ChurnClassifier, X_fit: pd.DataFrame, y_test: np.ndarray, p_test: np.ndarray,
               p_test_raw: np.ndarray, p_baseline: np.ndarray, baseline_name: str, label: str) -> pd.DataFrame:
    """Log every figure and table of the module docstring; returns the odds-ratio table."""
    curves = {"tuned model": p_test, baseline_name: p_baseline}
    log_figure(roc_figure(y_test, curves), "plots/roc_curve.png")
    log_figure(pr_figure(y_test, curves), "plots/pr_curve.png")
    reliability = {"tuned model": p_test}
    if model.calibration is not None:
        reliability["tuned model, uncalibrated"] = p_test_raw
    reliability[baseline_name] = p_baseline
    log_figure(reliability_figure(y_test, reliability), "plots/reliability.png")
    log_figure(score_distribution_figure(y_test, p_test, model.threshold, label), "plots/score_distribution.png")
    odds = odds_ratio_table(model, X_fit)
    mlflow.log_text(odds.to_csv(index=False), "tables/odds_ratios.csv")
    mlflow.log_text(coefficient_table(model.pipeline).to_csv(index=False), "tables/coefficients.csv")
    if not odds.empty:
        log_figure(odds_ratio_figure(odds), "plots/odds_ratios.png")
    return odds
