"""Benchmark SVD++ on MovieLens 100k: rating accuracy against Surprise, and top-10 ranking.

Reads ``../shared/data/ml-100k/u.data`` (relative to the project root; ``--data`` to change it) and exits 2
without measuring anything when it is missing. Everything runs in this one process (plus worker processes
it starts), side by side, on 2 cores.

(a) Rating accuracy, protocol of ``../shared/data/README.md``: 5-fold CV on ``u.data`` (shuffled, seed 0),
RMSE and MAE averaged over the folds (``evaluation.metrics``; estimates clipped to 1..5 as Surprise does).

* Surprise's default SVD++ through our pipeline: ``models.recommenders.svdpp.SVDppRecommender`` with Surprise's
  defaults, scored from its numpy ``FactorScorer`` (reference: Surprise's README, RMSE 0.919, MAE 0.721);
  beside it Surprise's own ``SVDpp().fit/test`` on the same folds.
* Optuna-tuned, nested: on each outer fold, Optuna (TPE, the entry point's search space
  ``pipelines.recommenders.train_svdpp.suggest_params(trial, "rmse")``, Surprise's defaults enqueued first) minimises
  the mean RMSE of a 3-fold CV *inside the training part*; the search never sees the outer test fold.
  Two worker processes share the study (Optuna journal storage); a median pruner stops a trial after its
  first inner fold when it is clearly worse. The best parameters are refit on the training part and
  scored once on the outer fold. Target: tuned RMSE <= 0.910.
* Peer: Surprise's ``GridSearchCV`` over a seed-style grid (``GRID``: n_factors 10/20, n_epochs 20/30, lr_all
  0.005/0.01, reg_all 0.02/0.1, 16 combinations, ``n_jobs=2``; n_factors 50 left out to keep the run under 30 min) on the training part of outer fold 1 with the *same* 3 inner folds as our
  study of that fold. Each fold's study gets ``--fold-budget`` seconds (default 180; 0 = a third of the
  grid's wall time); reported: the grid's best inner-CV RMSE and wall time, and when our fold-1 study first
  reached that RMSE (seconds from its start, completed trials only). Target: within a third of the grid's
  wall time.

(b) Top-10, per-user temporal split (each user's latest 20% of ratings, at least one, are the test;
relevant = the test items; recommendations exclude the user's training items; metrics averaged over users
with a test item). Every rating is an interaction with the project's implicit rating ``log1p(rating)``
(``models.recommenders.interactions``, the rating standing for the amount).

* popularity (most-rated items of the training part);
* implicit's ``CosineRecommender`` (K=50) on the same matrix, the item-CF peer (``bench_itemcf.run_implicit``);
* Surprise's SVD++ with default parameters ranked by its predicted rating, trained on the 1-5 ratings
  (unclipped estimates, so that clipping at 5 creates no ties; reference about 0.059);
* our SVD++ with the ranking objective, its defaults untuned (``pipelines.recommenders.train_svdpp.RANKING_DEFAULTS``);
* our SVD++ with the ranking objective tuned: Optuna (``suggest_params(trial, "precision")``, the defaults
  enqueued first, two workers) maximises precision@10 on a validation split *inside the training part*
  (each user's latest 20% of it), then the best parameters are refit on the whole training part and scored
  once on the test part. Target: precision@10 >= 0.14.

    python benchmarks/bench_svdpp.py [--data ../shared/data/ml-100k] [--part a|b|all] [--workers 2]
                                     [--topk-budget 300] [--quick]

``--quick`` shrinks every budget for a smoke run (its numbers are not the benchmark's). Part (b) runs first;
the report is rewritten after each part. Writes ``benchmarks/results/svdpp.md`` and
``benchmarks/results/svdpp.json``; about 20 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.reporting import RESULTS, machine_info, measured_line, verdict_rows, write_results  # noqa: E402
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ml-100k"
K = 10
OUTER_FOLDS = 5
INNER_FOLDS = 3
SEED = 0
REFERENCE = {"rmse": 0.919, "mae": 0.721, "rating_ranked_precision": 0.059, "popularity_precision": 0.104}
TARGETS = {"tuned_rmse": 0.910, "grid_time_fraction": 1 / 3, "precision_at_10": 0.14}
# A seed-style grid: the values tutorials and the seeds' notebooks try first. n_factors 50 is left out: with it
# the grid alone takes about 8 minutes of SVD++ fits on 2 cores and the whole benchmark no longer fits in 30.
GRID = {"n_factors": [10, 20], "n_epochs": [20, 30], "lr_all": [0.005, 0.01], "reg_all": [0.02, 0.1]}
QUICK_GRID = {"n_factors": [5, 10], "n_epochs": [5], "lr_all": [0.007], "reg_all": [0.02, 0.1]}

logger = logging.getLogger("bench_svdpp")


# --- data ------------------------------------------------------------------------------------------------


def load_ratings(folder: Path):
    """``u.data`` as a frame with integer ``user``/``item`` indices (0-based), ``rating`` and ``timestamp``."""
    import numpy as np
    import pandas as pd

    path = folder / "u.data"
    if not path.is_file():
        print(f"bench_svdpp: MovieLens 100k not found: {path} is missing. The benchmark reads the reference data "
              "from ../shared/data/ml-100k (relative to the project root) or --data; nothing was measured.",
              file=sys.stderr)
        sys.exit(2)
    raw = pd.read_csv(path, sep="\t", names=["user", "item", "rating", "timestamp"])
    users, items = np.unique(raw["user"]), np.unique(raw["item"])
    return raw.assign(user=np.searchsorted(users, raw["user"]), item=np.searchsorted(items, raw["item"]),
                      rating=raw["rating"].astype(float))


class Ratings:
    """Triples as numpy arrays (shared with forked worker processes)."""

    def __init__(self, frame):
        self.users = frame["user"].to_numpy()
        self.items = frame["item"].to_numpy()
        self.ratings = frame["rating"].to_numpy()
        self.n_users = int(self.users.max()) + 1
        self.n_items = int(self.items.max()) + 1


def kfold(n: int, n_splits: int, seed: int) -> list[tuple]:
    from sklearn.model_selection import KFold

    return list(KFold(n_splits=n_splits, shuffle=True, random_state=seed).split(range(n)))


# --- (a) rating accuracy -----------------------------------------------------------------------------------


def fit_score(data: Ratings, params: dict, train_idx, test_idx) -> dict[str, float]:
    """Fit our SVD++ on ``train_idx`` and return RMSE/MAE on ``test_idx`` (clipped estimates, as Surprise)."""
    from evaluation.metrics import mae, rmse
    from models.recommenders.svdpp import SVDppRecommender

    started = time.perf_counter()
    model = SVDppRecommender(**params, random_state=SEED).fit(
        data.users[train_idx], data.items[train_idx], data.ratings[train_idx], n_users=data.n_users,
        n_items=data.n_items)
    predicted = model.predict(data.users[test_idx], data.items[test_idx])
    truth = data.ratings[test_idx]
    return {"rmse": rmse(truth, predicted), "mae": mae(truth, predicted), "seconds": time.perf_counter() - started}


def surprise_dataset(data: Ratings, idx):
    import pandas as pd
    from surprise import Dataset, Reader

    frame = pd.DataFrame({"u": data.users[idx], "i": data.items[idx], "r": data.ratings[idx]})
    return Dataset.load_from_df(frame, Reader(rating_scale=(1, 5)))


def surprise_fit_score(data: Ratings, train_idx, test_idx) -> dict[str, float]:
    """Surprise's own ``SVDpp()`` (defaults) fitted and tested on the same fold."""
    from surprise import SVDpp, accuracy

    started = time.perf_counter()
    dataset = surprise_dataset(data, train_idx)
    algo = SVDpp(random_state=SEED, cache_ratings=True).fit(dataset.build_full_trainset())
    testset = list(zip(data.users[test_idx].tolist(), data.items[test_idx].tolist(), data.ratings[test_idx].tolist()))
    predictions = algo.test(testset)
    return {"rmse": accuracy.rmse(predictions, verbose=False), "mae": accuracy.mae(predictions, verbose=False),
            "seconds": time.perf_counter() - started}


class FixedFolds:
    """A Surprise CV iterator over given index folds of a dataset's ``raw_ratings`` (for ``GridSearchCV``)."""

    def __init__(self, folds):
        self.folds = folds

    def get_n_folds(self) -> int:
        return len(self.folds)

    def split(self, data):
        for train_idx, test_idx in self.folds:
            yield (data.construct_trainset([data.raw_ratings[i] for i in train_idx]),
                   data.construct_testset([data.raw_ratings[i] for i in test_idx]))


def run_grid(data: Ratings, train_idx, inner_folds, workers: int, spec: dict) -> dict:
    """Surprise's GridSearchCV over ``spec`` (:data:`GRID`) on the training part, with our inner folds."""
    from surprise import SVDpp
    from surprise.model_selection import GridSearchCV

    grid = {**spec, "random_state": [SEED], "cache_ratings": [True]}
    search = GridSearchCV(SVDpp, grid, measures=["rmse", "mae"], cv=FixedFolds(inner_folds), n_jobs=workers)
    started = time.perf_counter()
    search.fit(surprise_dataset(data, train_idx))
    seconds = time.perf_counter() - started
    best = {k: v for k, v in search.best_params["rmse"].items() if k in spec}
    return {"grid": spec, "best_rmse": float(search.best_score["rmse"]), "best_params": best, "seconds": seconds,
            "combinations": len(search.cv_results["params"]), "fits": len(search.cv_results["params"]) * len(inner_folds)}


# Optuna workers: module globals filled before forking.
_STATE: dict = {}


def _rmse_objective(trial):
    import numpy as np
    import optuna

    from pipelines.recommenders.train_svdpp import model_params, suggest_params

    data, train_idx, folds = _STATE["data"], _STATE["train_idx"], _STATE["folds"]
    params = model_params(suggest_params(trial, "rmse"))
    params.pop("objective", None)
    scores = []
    for step, (fit_pos, val_pos) in enumerate(folds):
        scores.append(fit_score(data, params, train_idx[fit_pos], train_idx[val_pos])["rmse"])
        trial.report(float(np.mean(scores)), step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return float(np.mean(scores))


def _precision_objective(trial):
    from pipelines.recommenders.train_svdpp import model_params, suggest_params

    params = model_params(suggest_params(trial, "precision"))
    return topk_precision(_STATE["fit_part"], _STATE["val_relevant"], params)


def _worker(objective_name: str, storage_path: str, study_name: str, timeout: float, seed: int) -> None:
    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=study_name, storage=_journal(storage_path),
                              sampler=optuna.samplers.TPESampler(seed=seed),
                              pruner=optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=0))
    objective = {"rmse": _rmse_objective, "precision": _precision_objective}[objective_name]
    study.optimize(objective, timeout=timeout)


def _journal(path: str):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(path))


def parallel_study(objective_name: str, direction: str, enqueue: list[dict], timeout: float, workers: int,
                   seed: int):
    """An Optuna study run by ``workers`` forked processes for ``timeout`` seconds; returns (study, start time)."""
    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = tempfile.mkdtemp(prefix="bench-svdpp-")
    path = os.path.join(folder, "journal.log")
    name = f"{objective_name}-{seed}"
    study = optuna.create_study(study_name=name, storage=_journal(path), direction=direction)
    for params in enqueue:
        study.enqueue_trial(params)
    context = multiprocessing.get_context("fork")
    started = time.time()
    processes = [context.Process(target=_worker, args=(objective_name, path, name, timeout, seed + w))
                 for w in range(workers)]
    for p in processes:
        p.start()
    for p in processes:
        p.join()
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"an Optuna worker failed (exit codes {failed})")
    return optuna.load_study(study_name=name, storage=_journal(path)), started


def completed(study):
    import optuna

    return [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]


def time_to_reach(study, started: float, target: float, minimize: bool = True) -> float | None:
    """Seconds from the study's start until a completed trial first reached ``target`` (None: never)."""
    hits = [t.datetime_complete.timestamp() - started for t in completed(study)
            if (t.value <= target if minimize else t.value >= target)]
    return min(hits) if hits else None


def rating_benchmark(data: Ratings, workers: int, quick: bool, tuned_folds: int = OUTER_FOLDS,
                     surprise_own: bool = True, fold_budget: float | None = None) -> dict:
    import numpy as np
    from joblib import Parallel, delayed

    from pipelines.recommenders.train_svdpp import SURPRISE_DEFAULTS, model_params

    n = len(data.ratings)
    outer = kfold(n, OUTER_FOLDS, SEED)
    if quick:
        outer = outer[:2]
    defaults = dict(SURPRISE_DEFAULTS)
    logger.info("(a) default SVD++, our pipeline, %d folds", len(outer))
    started = time.perf_counter()
    ours = Parallel(n_jobs=workers)(delayed(fit_score)(data, defaults, tr, te) for tr, te in outer)
    ours_seconds = time.perf_counter() - started
    theirs, theirs_seconds = [], None
    if surprise_own:
        logger.info("(a) default SVD++, Surprise's own fit/test, %d folds", len(outer))
        started = time.perf_counter()
        theirs = Parallel(n_jobs=workers)(delayed(surprise_fit_score)(data, tr, te) for tr, te in outer)
        theirs_seconds = time.perf_counter() - started

    grid_fold = 0
    train0 = outer[grid_fold][0]
    inner = {f: kfold(len(outer[f][0]), INNER_FOLDS, SEED + 100 + f) for f in range(len(outer))}
    spec = QUICK_GRID if quick else GRID
    logger.info("(a) Surprise GridSearchCV over %s on the training part of fold 1", spec)
    grid = run_grid(data, train0, inner[grid_fold], workers, spec)
    budget = fold_budget or grid["seconds"] * TARGETS["grid_time_fraction"]
    logger.info("(a) grid: best inner-CV RMSE %.4f in %.0f s; our budget per fold %.0f s", grid["best_rmse"],
                grid["seconds"], budget)

    tuned = []
    for f, (train_idx, test_idx) in enumerate(outer[:tuned_folds]):
        _STATE.update(data=data, train_idx=train_idx, folds=inner[f])
        study, study_started = parallel_study("rmse", "minimize", [defaults], budget, workers, SEED + 10 * f)
        best = completed(study)
        best_trial = min(best, key=lambda t: t.value)
        params = model_params(best_trial.params)
        params.pop("objective", None)
        refit = fit_score(data, params, train_idx, test_idx)
        states = [t.state.name for t in study.trials]
        entry = {"fold": f + 1, "trials": len(states), "complete": states.count("COMPLETE"),
                 "pruned": states.count("PRUNED"), "inner_cv_rmse": best_trial.value, "params": params,
                 "test_rmse": refit["rmse"], "test_mae": refit["mae"],
                 "study_seconds": max(t.datetime_complete.timestamp() for t in study.trials
                                      if t.datetime_complete) - study_started}
        if f == grid_fold:
            entry["seconds_to_grid_best"] = time_to_reach(study, study_started, grid["best_rmse"])
            entry["trajectory"] = sorted((round(t.datetime_complete.timestamp() - study_started, 1), round(t.value, 5))
                                         for t in best)
        logger.info("(a) fold %d: %d trials (%d pruned), inner CV RMSE %.4f, test RMSE %.4f, params %s", f + 1,
                    entry["trials"], entry["pruned"], best_trial.value, refit["rmse"], params)
        tuned.append(entry)

    def mean(rows, key):
        return float(np.mean([r[key] for r in rows]))

    return {
        "folds": len(outer),
        "default_ours": {"rmse": mean(ours, "rmse"), "mae": mean(ours, "mae"), "seconds": ours_seconds,
                         "per_fold_rmse": [r["rmse"] for r in ours]},
        "default_surprise": {"rmse": mean(theirs, "rmse"), "mae": mean(theirs, "mae"), "seconds": theirs_seconds,
                             "per_fold_rmse": [r["rmse"] for r in theirs]} if theirs else None,
        "tuned": {"rmse": mean(tuned, "test_rmse"), "mae": mean(tuned, "test_mae"), "budget_seconds": budget,
                  "budget_rule": f"{fold_budget:.0f} s per fold (--fold-budget)" if fold_budget
                  else "a third of the grid's wall time each",
                  "folds": tuned, "default_rmse_same_folds": float(np.mean([r["rmse"] for r in ours[:len(tuned)]])),
                  "default_mae_same_folds": float(np.mean([r["mae"] for r in ours[:len(tuned)]]))},
        "grid": grid,
    }


# --- (b) top-10 on the per-user temporal split -----------------------------------------------------------------


class TopKPart:
    """One training part as the project's interaction matrix, plus what evaluation needs."""

    def __init__(self, train, n_users: int, n_items: int):
        import numpy as np
        from scipy import sparse

        self.n_users, self.n_items = n_users, n_items
        spent = sparse.csr_matrix((train["rating"].to_numpy(dtype=float),
                                   (train["user"].to_numpy(), train["item"].to_numpy())), shape=(n_users, n_items))
        spent.sum_duplicates()
        self.matrix = spent.copy()
        np.log1p(self.matrix.data, out=self.matrix.data)  # the project's implicit rating, log1p(amount)
        self.raw = spent  # the 1-5 ratings, for the rating-ranked reference
        self.seen = spent.astype(bool)
        self.popularity = np.asarray(self.seen.sum(axis=0)).ravel().astype(float)

    def top_k(self, scores_of_users) -> dict[int, list[int]]:
        """Each user's top-K items by score, training items excluded, ties broken by popularity."""
        import numpy as np

        from models.recommenders.engine import rank_top_k

        tie_rank = np.empty(self.n_items, dtype=np.int64)
        tie_rank[np.argsort(-self.popularity, kind="stable")] = np.arange(self.n_items)
        result = {}
        for start in range(0, self.n_users, 512):
            users = np.arange(start, min(start + 512, self.n_users))
            scores = np.asarray(scores_of_users(users), dtype=float).copy()
            bought = self.seen[users].tocoo()
            scores[bought.row, bought.col] = -np.inf
            idx, _ = rank_top_k(scores, K, tie_rank)
            for user, row in zip(users, idx):
                result[int(user)] = row[row >= 0].tolist()
        return result


def temporal_split(frame):
    from evaluation.splits import per_user_latest_fraction_split

    ordered = frame.sort_values("timestamp", kind="stable")
    return per_user_latest_fraction_split(ordered, "user", "timestamp", fraction=0.2, min_test=1)


def relevant_of(test) -> dict[int, set[int]]:
    return {int(user): set(items.tolist()) for user, items in test.groupby("user")["item"]}


def ranking_metrics(part: TopKPart, recommended, relevant) -> dict[str, float]:
    from evaluation.metrics import evaluate_ranking

    metrics = evaluate_ranking(relevant, recommended, K, range(part.n_items))
    return {key: metrics[key] for key in ("precision_at_10", "recall_at_10", "ndcg_at_10", "coverage")}


def fit_ranking_model(part: TopKPart, params: dict, matrix=None):
    from models.recommenders.svdpp import SVDppRecommender

    coo = (part.matrix if matrix is None else matrix).tocoo()
    return SVDppRecommender(**params, random_state=SEED).fit(coo.row, coo.col, coo.data, n_users=part.n_users,
                                                             n_items=part.n_items)


def topk_precision(part: TopKPart, relevant, params: dict) -> float:
    model = fit_ranking_model(part, params)
    return ranking_metrics(part, part.top_k(model.scorer_.score_users), relevant)["precision_at_10"]


def topk_benchmark(frame, workers: int, budget: float, quick: bool) -> dict:
    import numpy as np

    from pipelines.recommenders.train_svdpp import RANKING_DEFAULTS, SURPRISE_DEFAULTS, model_params

    n_users, n_items = int(frame["user"].max()) + 1, int(frame["item"].max()) + 1
    train, test = temporal_split(frame)
    part, relevant = TopKPart(train, n_users, n_items), relevant_of(test)
    rows = {}

    started = time.perf_counter()
    rows["popularity (most-rated in train)"] = {
        **ranking_metrics(part, part.top_k(lambda users: part.popularity[None, :].repeat(len(users), 0)), relevant),
        "seconds": time.perf_counter() - started}

    from benchmarks.bench_itemcf import run_implicit

    seconds, implicit_lists = run_implicit(part.matrix.tocsr(), range(n_users), np.arange(n_items), repeats=1)
    rows["implicit CosineRecommender K=50 (item-CF peer)"] = {**ranking_metrics(part, implicit_lists, relevant),
                                                            "seconds": seconds}

    logger.info("(b) Surprise SVD++ (defaults) ranked by predicted rating")
    started = time.perf_counter()
    model = fit_ranking_model(part, {**SURPRISE_DEFAULTS, "objective": "rmse"}, matrix=part.raw)
    rows["Surprise SVD++ defaults, ranked by predicted rating"] = {
        **ranking_metrics(part, part.top_k(model.scorer_.score_users), relevant),
        "seconds": time.perf_counter() - started}

    logger.info("(b) our SVD++, ranking objective, untuned defaults %s", RANKING_DEFAULTS)
    started = time.perf_counter()
    model = fit_ranking_model(part, model_params(RANKING_DEFAULTS))
    rows["SVD++ ranking objective, defaults (untuned)"] = {
        **ranking_metrics(part, part.top_k(model.scorer_.score_users), relevant),
        "seconds": time.perf_counter() - started}

    fit_train, val = temporal_split(train)
    _STATE.update(fit_part=TopKPart(fit_train, n_users, n_items), val_relevant=relevant_of(val))
    budget = 60.0 if quick else budget
    logger.info("(b) tuning the ranking objective for %.0f s with %d workers", budget, workers)
    study, study_started = parallel_study("precision", "maximize", [dict(RANKING_DEFAULTS)], budget, workers, SEED)
    best = max(completed(study), key=lambda t: t.value)
    params = model_params(best.params)
    started = time.perf_counter()
    model = fit_ranking_model(part, params)
    rows["SVD++ ranking objective, Optuna-tuned"] = {
        **ranking_metrics(part, part.top_k(model.scorer_.score_users), relevant),
        "seconds": time.perf_counter() - started}
    states = [t.state.name for t in study.trials]
    tuning = {"trials": len(states), "complete": states.count("COMPLETE"), "validation_precision_at_10": best.value,
              "params": params, "budget_seconds": budget, "study_seconds": max(
                  t.datetime_complete.timestamp() for t in study.trials if t.datetime_complete) - study_started, "defaults_validation_precision_at_10":
              next((t.value for t in study.trials if t.number == 0 and t.value is not None), None)}
    logger.info("(b) tuned: %s", tuning)
    return {"rows": rows, "tuning": tuning, "users": len(relevant), "train_ratings": len(train),
            "test_ratings": len(test)}


# --- report ------------------------------------------------------------------------------------------------------


def fmt(value, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def write_report(results: dict, command: str) -> str:
    lines = ["# SVD++ benchmark (MovieLens 100k)", "",
             measured_line(results["machine"]) + " The whole benchmark took "
             f"{results['total_seconds'] / 60:.1f} min.",
             f"Command: `{command}`."]
    for part, origin in results.get("earlier_parts", {}).items():
        lines.append(f"Part {'(b)' if part == 'topk' else '(a)'} was measured by an earlier process: "
                     f"`{origin['command']}` ({origin['date']}).")
    lines.append("")
    verdicts = []
    if "rating" in results:
        a = results["rating"]
        grid, tuned = a["grid"], a["tuned"]
        first = tuned["folds"][0]
        reached = first.get("seconds_to_grid_best")
        lines += [
            f"## (a) Rating accuracy, {a['folds']}-fold CV (RMSE, MAE; estimates clipped to 1..5)", "",
            "| model | RMSE | MAE | wall time (s) |", "|---|---:|---:|---:|",
            f"| Surprise README, SVD++ defaults (reference) | {REFERENCE['rmse']:.3f} | {REFERENCE['mae']:.3f} | |",
            f"| SVD++ defaults, our pipeline (`SVDppRecommender` -> numpy `FactorScorer`) | "
            f"{fmt(a['default_ours']['rmse'])} | {fmt(a['default_ours']['mae'])} | {a['default_ours']['seconds']:.0f} |",
            (f"| SVD++ defaults, Surprise's own fit/test, same folds | {fmt(a['default_surprise']['rmse'])} | "
             f"{fmt(a['default_surprise']['mae'])} | {a['default_surprise']['seconds']:.0f} |"
             if a["default_surprise"] else "| SVD++ defaults, Surprise's own fit/test | not run (--skip-surprise-own; "
             "tests/models/recommenders/test_svdpp.py checks our scorer equals Surprise's estimates to 1e-9) | | |"),
            f"| SVD++ Optuna-tuned, nested (3-fold CV inside each training part), "
            f"{len(tuned['folds'])} of {a['folds']} outer folds | {fmt(tuned['rmse'])} | "
            f"{fmt(tuned['mae'])} | {sum(f['study_seconds'] for f in tuned['folds']):.0f} (tuning) |",
            f"| SVD++ defaults, our pipeline, on the same {len(tuned['folds'])} folds | "
            f"{fmt(tuned['default_rmse_same_folds'])} | {fmt(tuned['default_mae_same_folds'])} | |", "",
            f"Tuning per outer fold (budget: {tuned.get('budget_rule', 'a third of the grid wall time each')}; "
            "2 worker processes):", "",
            "| fold | trials (pruned) | inner-CV RMSE | test RMSE | params |", "|---:|---:|---:|---:|---|"]
        for f in tuned["folds"]:
            lines.append(f"| {f['fold']} | {f['trials']} ({f['pruned']}) | {fmt(f['inner_cv_rmse'])} | "
                         f"{fmt(f['test_rmse'])} | `{json.dumps(f['params'])}` |")
        lines += [
            "", "Against Surprise's GridSearchCV on the training part of fold 1, same 3 inner folds, 2 jobs:", "",
            "| search | combinations / trials | best inner-CV RMSE | wall time (s) |", "|---|---:|---:|---:|",
            f"| GridSearchCV `{json.dumps(grid['grid'])}` | {grid['combinations']} ({grid['fits']} fits) | "
            f"{fmt(grid['best_rmse'])} | {grid['seconds']:.0f} |",
            f"| Optuna (ours), budget {tuned['budget_seconds']:.0f} s | {first['trials']} | "
            f"{fmt(first['inner_cv_rmse'])} | {first['study_seconds']:.0f} |", "",
            f"Grid's best parameters: `{json.dumps(grid['best_params'])}`. Our study first reached the grid's best "
            + (f"inner-CV RMSE after {reached:.0f} s ({reached / grid['seconds']:.2f} of the grid's wall time)."
               if reached is not None else "inner-CV RMSE: never within its budget."), ""]
        verdicts += [(f"tuned RMSE <= {TARGETS['tuned_rmse']}", tuned["rmse"] <= TARGETS["tuned_rmse"]),
                     ("tuning reaches the grid's best RMSE within 1/3 of its wall time",
                      reached is not None and reached <= grid["seconds"] * TARGETS["grid_time_fraction"])]
    if "topk" in results:
        b = results["topk"]
        lines += [f"## (b) Top-10, per-user temporal split ({b['users']} users, {b['train_ratings']} training and "
                  f"{b['test_ratings']} test ratings)", "",
                  "| model | precision@10 | recall@10 | NDCG@10 | coverage | fit + top-10 (s) |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, row in b["rows"].items():
            lines.append(f"| {name} | {fmt(row['precision_at_10'])} | {fmt(row['recall_at_10'])} | "
                         f"{fmt(row['ndcg_at_10'])} | {fmt(row['coverage'])} | {row['seconds']:.1f} |")
        t = b["tuning"]
        lines += ["", f"References: Surprise SVD++ ranked by predicted rating about {REFERENCE['rating_ranked_precision']}, "
                  f"popularity {REFERENCE['popularity_precision']}.",
                  f"Tuning: {t['trials']} trials ({t['complete']} complete) in {t['study_seconds']:.0f} s (budget "
                  f"{t['budget_seconds']:.0f} s) with 2 workers; validation precision@10 {fmt(t['validation_precision_at_10'])} (the enqueued defaults: "
                  f"{fmt(t['defaults_validation_precision_at_10'])}); best parameters `{json.dumps(t['params'])}`.", ""]
        tuned_precision = b["rows"]["SVD++ ranking objective, Optuna-tuned"]["precision_at_10"]
        verdicts.append((f"SVD++ ranking objective precision@10 >= {TARGETS['precision_at_10']}",
                         tuned_precision >= TARGETS["precision_at_10"]))
    lines += verdict_rows(dict(verdicts))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with u.data")
    parser.add_argument("--part", choices=("a", "b", "all"), default="all", help="which benchmark to run")
    parser.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    parser.add_argument("--topk-budget", type=float, default=300.0,
                        help="seconds of Optuna tuning for the top-10 benchmark (default 300)")
    parser.add_argument("--tuned-folds", type=int, default=OUTER_FOLDS,
                        help=f"outer folds that get a nested Optuna study in (a) (default {OUTER_FOLDS})")
    parser.add_argument("--fold-budget", type=float, default=180.0,
                        help="seconds of Optuna tuning per outer fold in (a); 0 = a third of the grid's wall time "
                             "(default 180; the time to reach the grid's best is read from fold 1's study)")
    parser.add_argument("--skip-surprise-own", action="store_true",
                        help="in (a), skip the duplicate 5-fold CV of Surprise's own SVDpp fit/test")
    parser.add_argument("--quick", action="store_true", help="tiny budgets for a smoke run")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    frame = load_ratings(args.data)
    results = {"data": str(args.data), "ratings": len(frame)}
    command = "python benchmarks/bench_svdpp.py" + ("" if argv is None and len(sys.argv) == 1 else
                                                    " " + " ".join(sys.argv[1:] if argv is None else argv))
    started = time.perf_counter()

    def save() -> None:
        results["machine"] = machine_info()
        results["total_seconds"] = time.perf_counter() - started
        write_results("svdpp-quick" if args.quick else "svdpp", results, write_report(results, command))

    previous = RESULTS / f"svdpp{'-quick' if args.quick else ''}.json"
    if args.part != "all" and previous.is_file():  # keep the other part's figures (measured by an earlier process)
        other = {"a": "topk", "b": "rating"}[args.part]
        earlier = json.loads(previous.read_text())
        if other in earlier:
            results[other] = earlier[other]
            origin = earlier.get("earlier_parts", {}).get(other) or {  # carried over more than once: keep its origin
                "date": earlier.get("machine", {}).get("date", earlier.get("date")), "command": earlier.get("command") or "an earlier run of this script"}
            results.setdefault("earlier_parts", {})[other] = origin
    results["command"] = command
    if args.part in ("b", "all"):
        results["topk"] = topk_benchmark(frame, args.workers, args.topk_budget, args.quick)
        save()
    if args.part in ("a", "all"):
        results["rating"] = rating_benchmark(Ratings(frame), args.workers, args.quick, args.tuned_folds,
                                             not args.skip_surprise_own, args.fold_budget or None)
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
