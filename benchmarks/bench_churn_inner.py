"""What tuning can see on Telco: the inner cross-validation of one outer fold's training part.

``bench_churn.py`` misses ROC AUC >= 0.850 by a hair; this script shows why without looking at any outer test
fold. It takes the training part of one outer fold (the same 5-fold stratified split, seed 0, as
``bench_churn.py``) and scores candidate models by stratified 5-fold CV inside it, as Optuna does
(``pipelines.churn.tuning.CrossValProblem``):

(a) Plateau and noise: a grid over the search space (C, penalty, numeric transform, signed log), each scored
    with three different inner splits. How far apart the configurations are, how much one configuration's
    score moves with the split, and whether the splits rank the configurations alike (Spearman).
(b) Terms the search space does not have: products of numeric x categorical, categorical x categorical and
    numeric x numeric (degree 2) columns added to the pipeline, with the C and penalty giving each its best
    mean inner score over the same three splits, against the same grid without them.

    python benchmarks/bench_churn_inner.py [--data ../shared/data/telco-churn] [--fold 0]

Exits 2 without measuring anything when the Telco file is missing. Writes
``benchmarks/results/churn_inner_fold<N>.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.bench_churn import DEFAULT_DATA, OUTER_FOLDS, TELCO_FILE  # noqa: E402
from benchmarks.reporting import machine_info, measured_line, write_results  # noqa: E402

OUTER_SEED = 0  # bench_churn.py's default --seed, which also seeds its outer split
INNER_SEEDS = (0, 1, 2)
GRID = {"C": (0.03, 0.3, 3.0), "penalty": ("l2", "l1"),
        "transform": (("scale", 5), ("spline", 5), ("spline", 8)), "log_transform": (False, True)}
ADDED_C = (0.03, 0.1, 0.3, 1.0, 3.0)
ADDED_TERMS = ("none", "numeric x categorical", "categorical x categorical", "numeric x numeric")


def grid_configs() -> list[dict]:
    return [{"C": c, "penalty": pen, "class_weight": "none", "numeric_transform": tf, "n_knots": knots,
             "log_transform": log}
            for c, pen, (tf, knots), log in itertools.product(*GRID.values())]


def describe(params: dict) -> str:
    transform = f"spline({params['n_knots']})" if params["numeric_transform"] == "spline" else "scale"
    return f"C={params['C']:g}, {params['penalty']}, {transform}, log={params['log_transform']}"


def added_terms(kind: str, continuous: list[str], categorical: list[str]):
    """A ColumnTransformer entry producing the product terms of ``kind`` (scaled signed-log numerics)."""
    from sklearn.base import BaseEstimator, TransformerMixin
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, PolynomialFeatures, StandardScaler

    from models.churn.classifier import signed_log1p

    def numeric_steps():
        return [("impute", SimpleImputer(strategy="median")), ("log", FunctionTransformer(signed_log1p)),
                ("scale", StandardScaler())]

    class NumericByLevel(BaseEstimator, TransformerMixin):
        """Every numeric column times every categorical level's indicator."""

        def fit(self, X, y=None):
            self.numeric_ = Pipeline(numeric_steps()).fit(X[continuous])
            self.levels_ = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(X[categorical])
            return self

        def transform(self, X):
            v = self.numeric_.transform(X[continuous])
            c = self.levels_.transform(X[categorical])
            return (v[:, :, None] * c[:, None, :]).reshape(len(X), -1)

    if kind == "numeric x categorical":
        return "added", NumericByLevel(), continuous + categorical
    if kind == "categorical x categorical":
        return "added", Pipeline([("levels", OneHotEncoder(handle_unknown="ignore", sparse_output=False,
                                                           drop="if_binary")),
                                  ("products", PolynomialFeatures(2, interaction_only=True, include_bias=False))]), \
            categorical
    if kind == "numeric x numeric":
        return "added", Pipeline(numeric_steps() + [("products", PolynomialFeatures(2, include_bias=False))]), \
            continuous
    raise ValueError(f"unknown kind of added terms: {kind!r}")


def inner_auc(spec, X, y, params: dict, seed: int, kind: str = "none") -> float:
    """Mean ROC AUC over stratified 5-fold CV of ``X`` (the training part only)."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    from evaluation import metrics
    from models.churn.classifier import fit_pipeline, make_pipeline, positive_probability

    continuous = [c for c in spec.numeric if c in set(spec.continuous)]
    aucs = []
    for fit_idx, val_idx in StratifiedKFold(5, shuffle=True, random_state=seed).split(X, y):
        pipeline = make_pipeline(params, spec, seed)
        if kind != "none":
            pipeline.named_steps["features"].transformers.append(added_terms(kind, continuous, list(spec.categorical)))
        fit_pipeline(pipeline, X.iloc[fit_idx], y[fit_idx])
        aucs.append(metrics.auc(y[val_idx], positive_probability(pipeline, X.iloc[val_idx])))
    return float(np.mean(aucs))


def measure(path: Path, fold: int) -> dict:
    import numpy as np
    from scipy.stats import spearmanr
    from sklearn.model_selection import StratifiedKFold

    from models.churn.classifier import DEFAULT_PARAMS
    from pipelines.churn.data import load_table

    data = load_table(path, "Churn", "customerID")
    train_idx, _ = list(StratifiedKFold(OUTER_FOLDS, shuffle=True, random_state=OUTER_SEED)
                        .split(data.X, data.y))[fold]  # the outer test part is never read
    X, y = data.X.iloc[train_idx].reset_index(drop=True), data.y[train_idx]

    started = time.perf_counter()
    configs = grid_configs()
    scores = np.array([[inner_auc(data.spec, X, y, c, s) for s in INNER_SEEDS] for c in configs])
    plain = [inner_auc(data.spec, X, y, DEFAULT_PARAMS, s) for s in INNER_SEEDS]
    means = scores.mean(axis=1)
    order = np.argsort(-means, kind="stable")
    plateau = {
        "configs": len(configs), "inner_seeds": list(INNER_SEEDS),
        "mean_range": [float(means.min()), float(means.max())],
        "plain_mean": float(np.mean(plain)),
        "best_without_log": float(means[[not c["log_transform"] for c in configs]].max()),
        "best_with_log": float(means[[c["log_transform"] for c in configs]].max()),
        "within_0_001_of_best": int(np.sum(means >= means.max() - 0.001)),
        "split_sd_mean": float(scores.std(axis=1, ddof=1).mean()),
        "spearman": {f"{a}-{b}": float(spearmanr(scores[:, i], scores[:, j]).statistic)
                     for (i, a), (j, b) in itertools.combinations(enumerate(INNER_SEEDS), 2)},
        "best_per_split": [describe(configs[int(i)]) for i in scores.argmax(axis=0)],
        "top": [{"config": describe(configs[int(i)]), "scores": [float(v) for v in scores[i]]} for i in order[:6]],
        "seconds": time.perf_counter() - started,
    }
    print(f"plateau: {plateau}", flush=True)

    started = time.perf_counter()
    added = {}
    for kind in ADDED_TERMS:
        results = []
        for c, pen in itertools.product(ADDED_C, ("l2", "l1")):
            params = {**DEFAULT_PARAMS, "C": c, "penalty": pen, "log_transform": True}
            split_scores = [inner_auc(data.spec, X, y, params, s, kind) for s in INNER_SEEDS]
            results.append((float(np.mean(split_scores)), describe(params), split_scores))
        best = max(results)
        added[kind] = {"best": best[0], "best_config": best[1], "best_per_split": best[2],
                       "range": [min(results)[0], best[0]]}
        print(f"{kind}: {added[kind]}", flush=True)
    return {"fold": fold, "rows": len(y), "plateau": plateau, "added": added,
            "added_seconds": time.perf_counter() - started}


def markdown(report: dict) -> str:
    m, r = report["machine"], report["result"]
    p, a = r["plateau"], r["added"]
    lines = [
        "# Churn: what tuning sees on Telco (inner CV of one outer fold's training part)",
        "",
        measured_line(m),
        f"Command: `{report['command'].strip()}`.",
        "",
        f"Outer fold {r['fold']} of `bench_churn.py`'s split (5-fold stratified, seed {OUTER_SEED}): its training "
        f"part only ({r['rows']} customers); every score is the mean ROC AUC of stratified 5-fold CV inside it. "
        "The outer test part is never read.",
        "",
        f"## (a) Plateau and noise: {p['configs']} configurations x {len(p['inner_seeds'])} inner splits",
        "",
        f"- Mean inner AUC over the grid: {p['mean_range'][0]:.4f} to {p['mean_range'][1]:.4f} "
        f"(plain one-hot + scaled L2, C=1: {p['plain_mean']:.4f}).",
        f"- Best without the signed log {p['best_without_log']:.4f}, with it {p['best_with_log']:.4f}; "
        f"{p['within_0_001_of_best']} configurations lie within 0.001 of the best.",
        f"- One configuration's score moves by {p['split_sd_mean']:.4f} (standard deviation over the inner "
        "splits, averaged over configurations); the splits rank configurations alike (Spearman "
        + ", ".join(f"{k}: {v:.2f}" for k, v in p["spearman"].items()) + ").",
        "- Best per split: " + "; ".join(p["best_per_split"]) + ".",
        "",
        "| configuration | " + " | ".join(f"split {s}" for s in p["inner_seeds"]) + " |",
        "|---|" + "---:|" * len(p["inner_seeds"]),
    ]
    lines += [f"| {t['config']} | " + " | ".join(f"{v:.4f}" for v in t["scores"]) + " |" for t in p["top"]]
    lines += [
        "",
        "## (b) Added product terms (signed log + scaling, C in "
        + ", ".join(f"{c:g}" for c in ADDED_C) + ", L1 or L2; mean over the same inner splits)",
        "",
        "| added terms | best mean inner AUC | per split | vs none | its configuration | range over C and penalty |",
        "|---|---:|---|---:|---|---|",
    ]
    lines += [f"| {kind} | {v['best']:.4f} | " + " / ".join(f"{x:.4f}" for x in v["best_per_split"])
              + f" | {v['best'] - a['none']['best']:+.4f} | {v['best_config']} | {v['range'][0]:.4f}-{v['range'][1]:.4f} |"
              for kind, v in a.items()]
    lines += ["", f"Part (a) {p['seconds']:.0f} s, part (b) {r['added_seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with the Telco CSV")
    parser.add_argument("--fold", type=int, default=0, choices=range(OUTER_FOLDS),
                        help="outer fold whose training part is examined (default 0)")
    args = parser.parse_args(argv)
    path = args.data / TELCO_FILE
    if not path.is_file():
        print(f"bench_churn_inner: IBM Telco churn not found: {path} is missing; nothing was measured.",
              file=sys.stderr)
        return 2
    warnings.simplefilter("ignore", FutureWarning)
    report = {"machine": machine_info(), "command": "python benchmarks/bench_churn_inner.py " + " ".join(argv),
              "result": measure(path, args.fold)}
    write_results(f"churn_inner_fold{args.fold}", report, markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
