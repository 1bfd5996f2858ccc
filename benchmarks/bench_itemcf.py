"""Benchmark item-based CF on MovieLens 100k against popularity and implicit's CosineRecommender.

Protocol (``../shared/data/README.md``, top-k recommendation): per-user temporal split, each user's
latest 20% of ratings (at least one) are the test set; the relevant items are the test items; every
recommendation list excludes the items of the user's training part; precision@10, recall@10 and NDCG@10
averaged over users with at least one test item (``evaluation.metrics``), plus catalogue coverage.

* Interactions: every rating is an interaction; its value is ``log1p(rating)`` (the project's implicit
  rating, ``models.recommenders.interactions``, with the rating as the "amount"); the same matrix feeds implicit.
* Item-CF tuned: Optuna (TPE, seed 0) searches the entry point's space (``pipelines.recommenders.train_itemcf``: the
  similarity, alpha, shrinkage, neighbourhood size, recency half-life; no events in MovieLens; the first
  trial is the entry point's default, cosine with 50 neighbours) on a
  validation split *inside the training part* (each user's latest 20% of it), maximising precision@10;
  the best parameters are refit on the whole training part and scored once on the test part.
* Peers, same run: popularity (most-rated items of the training part) and implicit's ``CosineRecommender``
  (K=50, the default threads), fitted on the same matrix.
* Speed: fit + top-10 for every user, starting from the indexed interactions (implicit gets the CSR
  matrix, item-CF the interaction log), median of several repeats, both in this process.
* Latency: the tuned model is logged with the project's own ``log_recommender_model`` (a throwaway SQLite
  tracking store), loaded with ``mlflow.pyfunc.load_model``, and asked for one customer's top-10 at a time
  (a one-row DataFrame, ``params={"k": 10}``), no HTTP; median and p95 over many customers.

Targets (issue 3): item-CF precision@10 >= 0.170; fit + top-10 within 2x implicit's time; single-customer
top-10 from the loaded pyfunc under 2 ms median.

    python benchmarks/bench_itemcf.py [--data ../shared/data/ml-100k] [--n-trials 60] [--repeats 5]

Needs ``implicit`` (the ``bench`` extra: ``pip install -e ".[bench]"``). Writes
``benchmarks/results/itemcf.md`` and ``benchmarks/results/itemcf.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.reporting import machine_info, measured_line, verdict_rows, write_results  # noqa: E402  (after the path set-up)
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ml-100k"
K = 10
TARGETS = {"precision_at_10": 0.170, "speed_ratio": 2.0, "latency_ms": 2.0}


def load_ratings(folder: Path):
    import pandas as pd

    path = folder / "u.data"
    if not path.is_file():
        sys.exit(f"bench_itemcf: MovieLens 100k not found: {path} is missing. The benchmark reads the reference "
                 f"data from ../shared/data/ml-100k (relative to the project root) or --data; nothing was measured.")
    raw = pd.read_csv(path, sep="\t", names=["user", "item", "rating", "timestamp"],
                      dtype={"user": str, "item": str, "rating": float, "timestamp": "int64"})
    return raw.assign(date=pd.to_datetime(raw["timestamp"], unit="s"))


def as_transactions(ratings):
    """MovieLens rows in the project's transaction layout (the rating stands for the amount)."""
    import pandas as pd

    return pd.DataFrame({"customer_id": ratings["user"].to_numpy(), "product_id": ratings["item"].to_numpy(),
                         "amount": ratings["rating"].to_numpy(), "purchase_date": ratings["date"].to_numpy()})


def split(ratings):
    from evaluation.splits import per_user_latest_fraction_split

    ordered = ratings.sort_values(["timestamp"], kind="stable")
    return per_user_latest_fraction_split(ordered, "user", "timestamp", fraction=0.2, min_test=1)


def relevant_of(test) -> dict[str, set[str]]:
    return {user: set(items) for user, items in test.groupby("user")["item"]}


def interaction_log(train, catalog):
    from models.recommenders.interactions import InteractionLog

    return InteractionLog.from_frames(as_transactions(train), product_ids=catalog)


def itemcf_recommender(log, params, popularity):
    from models.recommenders.itemcf import ItemCF

    return ItemCF(**params).fit(log).recommender(popularity)


def score(recommended, relevant, catalog) -> dict[str, float]:
    from evaluation.metrics import evaluate_ranking

    metrics = evaluate_ranking(relevant, recommended, K, catalog)
    return {key: metrics[key] for key in ("precision_at_10", "recall_at_10", "ndcg_at_10", "coverage")}


def tune(train, catalog, n_trials: int, seed: int):
    """Optuna on a validation split inside the training part; returns (best params, best value, seconds)."""
    import optuna

    from models.recommenders.popularity import popularity_scores
    from pipelines.recommenders.train_itemcf import default_trial, model_params, suggest_params

    fit_part, val_part = split(train)
    log = interaction_log(fit_part, catalog)
    popularity = popularity_scores(as_transactions(fit_part), catalog)
    relevant = relevant_of(val_part)
    users = list(relevant)

    def objective(trial):
        params = suggest_params(trial, len(catalog), events=False)
        rec = itemcf_recommender(log, params, popularity)
        return score(rec.recommend_all(users, K), relevant, catalog)["precision_at_10"]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial({key: value for key, value in default_trial(len(catalog)).items()
                         if not key.startswith("w_")})  # as the entry point: cosine, K=50 first
    started = time.perf_counter()
    study.optimize(objective, n_trials=n_trials)
    return model_params(study.best_params), study.best_value, time.perf_counter() - started


def timed(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def run_implicit(matrix, users_index, product_ids, repeats: int):
    import numpy as np
    from implicit.nearest_neighbours import CosineRecommender

    def fit_and_recommend():
        model = CosineRecommender(K=50)
        with warnings.catch_warnings():
            # implicit converts its own item-item product to CSR and says so; not our input (already CSR)
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            model.fit(matrix, show_progress=False)
            ids, _ = model.recommend(np.arange(matrix.shape[0]), matrix, N=K, filter_already_liked_items=True)
        return ids

    seconds, ids = timed(fit_and_recommend, repeats)
    recommended = {}
    for user, row in zip(users_index, ids):
        recommended[user] = [product_ids[j] for j in row if j >= 0]
    return seconds, recommended


def run_itemcf_timed(log, params, popularity, repeats: int):
    import numpy as np

    def fit_and_recommend():
        rec = itemcf_recommender(log, params, popularity)
        idx, _ = rec.top_k_indices(np.arange(len(log.customer_ids)), K)
        return rec, idx

    seconds, (rec, idx) = timed(fit_and_recommend, repeats)
    recommended = {user: log.product_ids[row[row >= 0]].tolist() for user, row in zip(log.customer_ids, idx)}
    return seconds, rec, recommended


def pyfunc_latency(recommender, customers, n_requests: int, seed: int) -> dict:
    """Median/p95 ms of one-customer top-10 requests to the logged-and-loaded pyfunc (no HTTP)."""
    import mlflow
    import numpy as np
    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="bench-itemcf-") as home:
        os.environ["STOREFRONT_HOME"] = home
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{home}/mlflow.db"
        from pipelines.mlflow_logging import check_round_trip
        from pipelines.recommenders.training import compare_recommendations, log_recommender_model, recommendations_table
        from pipelines.tracking import experiment_id

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MLflow's set-up chatter is not what is measured here
            with mlflow.start_run(experiment_id=experiment_id("bench-itemcf")):
                info = log_recommender_model(recommender, customers[:2], K)
            check_round_trip(info.model_uri, pd.DataFrame({"customer_id": customers[:200]}),
                             recommendations_table(recommender, customers[:200], K), compare_recommendations,
                             params={"k": K, "exclude_purchased": True})
            model = mlflow.pyfunc.load_model(info.model_uri)
        rng = np.random.default_rng(seed)
        picks = rng.choice(customers, size=n_requests)
        frames = [pd.DataFrame({"customer_id": [c]}) for c in picks]
        for frame in frames[:50]:  # warm-up
            model.predict(frame, params={"k": K})
        times = []
        for frame in frames:
            started = time.perf_counter()
            model.predict(frame, params={"k": K})
            times.append((time.perf_counter() - started) * 1000)
        engine = []
        for customer in picks[:n_requests]:
            started = time.perf_counter()
            recommender.recommend_items(str(customer), K)
            engine.append((time.perf_counter() - started) * 1000)
    return {"median_ms": statistics.median(times), "p95_ms": float(np.percentile(times, 95)),
            "engine_median_ms": statistics.median(engine), "requests": n_requests, "model_uri": info.model_uri}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with MovieLens 100k's u.data")
    parser.add_argument("--n-trials", type=int, default=60, help="Optuna trials for item-CF (default 60)")
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats, median reported (default 5)")
    parser.add_argument("--requests", type=int, default=2000, help="single-customer pyfunc requests (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    try:
        import implicit  # noqa: F401
    except ImportError:
        sys.exit("bench_itemcf: the peer library implicit is not installed; run pip install -e \".[bench]\"")
    import numpy as np

    from models.recommenders.popularity import PopularityScorer, popularity_scores
    from models.recommenders.engine import Recommender

    ratings = load_ratings(args.data)
    started = time.perf_counter()
    train, test = split(ratings)
    catalog = np.sort(ratings["item"].unique())
    relevant = relevant_of(test)
    print(f"ml-100k: {len(ratings):,} ratings, {ratings['user'].nunique()} users, {len(catalog)} items; "
          f"train {len(train):,}, test {len(test):,} ({len(relevant)} users)", flush=True)

    log = interaction_log(train, catalog)
    matrix = log.matrix()
    popularity = popularity_scores(as_transactions(train), catalog)
    rows = {}

    baseline = Recommender(PopularityScorer(popularity, len(log.customer_ids)), log.customer_ids, catalog,
                           log.purchased(), popularity)
    popular_lists = baseline.recommend_all(list(relevant), K)
    rows["popularity (most-rated in train)"] = {**score(popular_lists, relevant, catalog), "seconds": None}

    seconds, implicit_lists = run_implicit(matrix, log.customer_ids, log.product_ids, args.repeats)
    implicit_seconds = seconds
    rows["implicit CosineRecommender K=50"] = {**score(implicit_lists, relevant, catalog), "seconds": seconds}
    print(f"implicit: {rows['implicit CosineRecommender K=50']}", flush=True)

    seconds, _, lists = run_itemcf_timed(log, {"similarity": "cosine", "n_neighbours": 50}, popularity, args.repeats)
    rows["item-CF cosine K=50 (untuned)"] = {**score(lists, relevant, catalog), "seconds": seconds}

    best, val_value, tune_seconds = tune(train, catalog, args.n_trials, args.seed)
    print(f"tuned in {tune_seconds:.1f} s: validation precision@10 {val_value:.4f} with {best}", flush=True)
    seconds, tuned, lists = run_itemcf_timed(log, best, popularity, args.repeats)
    tuned_row = {**score(lists, relevant, catalog), "seconds": seconds}
    rows["item-CF tuned (Optuna on a validation split of train)"] = tuned_row
    print(f"item-CF tuned: {tuned_row}", flush=True)

    latency = pyfunc_latency(tuned, list(log.customer_ids), args.requests, args.seed)
    print(f"pyfunc latency: {latency}", flush=True)

    verdicts = {
        "precision_at_10 >= 0.170": tuned_row["precision_at_10"] >= TARGETS["precision_at_10"],
        "fit + top-10 within 2x implicit": tuned_row["seconds"] <= TARGETS["speed_ratio"] * implicit_seconds,
        "pyfunc top-10 median < 2 ms": latency["median_ms"] < TARGETS["latency_ms"],
    }
    report = {
        "machine": machine_info(),
        "command": "python benchmarks/bench_itemcf.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "protocol": "per-user temporal split, latest 20% (>= 1) of each user's ratings = test; train items excluded",
        "data": {"ratings": len(ratings), "train": len(train), "test": len(test), "test_users": len(relevant)},
        "tuning": {"n_trials": args.n_trials, "seed": args.seed, "val_precision_at_10": val_value,
                   "seconds": tune_seconds, "best_params": best},
        "rows": rows, "latency": latency, "targets": TARGETS, "verdicts": verdicts,
        "wall_seconds": time.perf_counter() - started,
    }
    write_results("itemcf", report, markdown(report))
    return 0


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# item-CF benchmark (MovieLens 100k, top-10)",
        "",
        measured_line(m),
        f"Command: `{report['command'].strip()}`.",
        f"Protocol: {report['protocol']}; metrics averaged over the {report['data']['test_users']} users with a "
        "test item (`evaluation.metrics`). One process, same matrix (`log1p(rating)`) for every model.",
        "",
        "| model | precision@10 | recall@10 | NDCG@10 | coverage | fit + top-10 all users (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in report["rows"].items():
        seconds = "" if row["seconds"] is None else f"{row['seconds']:.3f}"
        lines.append(f"| {name} | {row['precision_at_10']:.4f} | {row['recall_at_10']:.4f} | {row['ndcg_at_10']:.4f} "
                     f"| {row['coverage']:.4f} | {seconds} |")
    t, lat = report["tuning"], report["latency"]
    lines += [
        "",
        f"Tuning: {t['n_trials']} Optuna trials (TPE, seed {t['seed']}) in {t['seconds']:.1f} s, validation "
        f"precision@10 {t['val_precision_at_10']:.4f}; best parameters `{json.dumps(t['best_params'])}`.",
        "",
        f"Single-customer top-10 from the loaded pyfunc (`mlflow.pyfunc.load_model(...).predict`, one-row "
        f"DataFrame, no HTTP), {lat['requests']} requests: median {lat['median_ms']:.3f} ms, "
        f"p95 {lat['p95_ms']:.3f} ms "
        f"(the engine alone: median {lat['engine_median_ms']:.3f} ms; the rest is MLflow's input/params "
        "validation and building the output DataFrame).",
        "",
        *verdict_rows(report["verdicts"]),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
