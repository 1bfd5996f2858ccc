"""Tune, evaluate and log item-based collaborative filtering (``train_itemcf``).

Reads the four canonical tables from ``--data-dir`` (default ``data/generated``). The test window is the
last ``--test-days`` days of purchases; tuning fits on the history before the validation window (the
``--val-days`` before the test) and maximises validation precision@k, so it never sees the test window.
Optuna searches the similarity (cosine, asymmetric cosine with ``alpha``, shrunk cosine with
``shrinkage``), the neighbourhood size, the recency half-life of interactions and the weights of product
views and add-to-carts. The best parameters are refit on all history before the test cutoff and scored
once on the test window. After the study, the demographic cold start and the content blend are chosen on
validation too (:mod:`pipelines.recommenders.hybrid`, ``--blend-trials``).

Logs one parent run in the experiment ``storefront-itemcf``: the data inputs, the popularity baseline
(``baseline_test_*``), one nested run per trial (``val_precision_at_10``), the best params, the test
metrics (``test_precision_at_10``, ``test_recall_at_10``, ``test_ndcg_at_10``, ``test_map_at_10``,
``test_hit_rate_at_10``, ``test_coverage``, ``test_personalization``), figures (study history and
importances, precision@k for k = 1..20 against popularity, coverage per category) and the pyfunc model
``model`` (``models/recommenders/pyfunc.py``), checked by loading it back, and the test window as
``holdout/`` (for re-scoring a champion at promotion). :func:`train` registers nothing and returns a
``TrainResult``; the command (``run``) then registers the model as ``storefront-itemcf@challenger`` when it
beats the popularity baseline on test precision@k (the registration gate), and prints the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.families import get
from pipelines.recommenders.options import RecommenderConfig

FAMILY = get("itemcf")
MAX_NEIGHBOURS = 1000


@dataclass(frozen=True)
class ItemCFConfig(RecommenderConfig):
    max_neighbours: int = MAX_NEIGHBOURS


def neighbour_range(n_products: int, max_neighbours: int = MAX_NEIGHBOURS) -> tuple[int, int]:
    """Neighbourhood sizes searched: 5 to ``max_neighbours`` (at most every other product).

    Large neighbourhoods rank better (docs/recommenders.md); the cap bounds the served artifact, 12 bytes per
    product and neighbour.
    """
    upper = max(1, min(int(max_neighbours), n_products - 1))
    return min(5, upper), upper


def default_trial(n_products: int, max_neighbours: int = MAX_NEIGHBOURS) -> dict:
    """Tried first, so that even a tiny budget scores a sensible configuration: plain cosine, 50 neighbours
    (as implicit's CosineRecommender), no recency weighting, events ignored."""
    return {"similarity": "cosine", "n_neighbours": min(50, neighbour_range(n_products, max_neighbours)[1]),
            "half_life_days": 2000.0, "w_product_view": 0.0, "w_add_to_cart": 0.0}


def add_arguments(parser) -> None:
    from pipelines.options import whole_number
    from pipelines.recommenders.options import add_recommender_options

    add_recommender_options(parser, FAMILY, study_name="itemcf")
    parser.add_argument("--max-neighbours", type=whole_number, default=MAX_NEIGHBOURS,
                        help="largest neighbourhood searched; the served model holds 12 bytes per product and "
                             f"neighbour (default {MAX_NEIGHBOURS})")


def suggest_params(trial, n_products: int, events: bool = True, max_neighbours: int = MAX_NEIGHBOURS) -> dict:
    """The search space; conditional parameters only where they matter (no event weights without events)."""
    similarity = trial.suggest_categorical("similarity", ["cosine", "asymmetric", "shrunk"])
    params = {"similarity": similarity}
    if similarity == "asymmetric":
        params["alpha"] = trial.suggest_float("alpha", 0.0, 1.0)
    if similarity == "shrunk":
        params["shrinkage"] = trial.suggest_float("shrinkage", 1.0, 200.0, log=True)
    params["n_neighbours"] = trial.suggest_int("n_neighbours", *neighbour_range(n_products, max_neighbours),
                                               log=True)
    params["half_life_days"] = trial.suggest_float("half_life_days", 7.0, 2000.0, log=True)
    if events:
        params["event_weights"] = {
            # a purchase counts log1p(amount), about 3 to 7 here: weights up to 5 let events matter as much
            "product_view": trial.suggest_float("w_product_view", 0.0, 5.0),
            "add_to_cart": trial.suggest_float("w_add_to_cart", 0.0, 5.0),
        }
    return params


def model_params(optuna_params: dict) -> dict:
    """Optuna's flat params as :class:`models.recommenders.itemcf.ItemCF` arguments."""
    params = {key: value for key, value in optuna_params.items() if not key.startswith("w_")}
    params["event_weights"] = {event: optuna_params[f"w_{event}"] for event in ("product_view", "add_to_cart")
                               if f"w_{event}" in optuna_params}
    return params


def make_objective(data, baseline, k: int, max_neighbours: int = MAX_NEIGHBOURS):
    """Validation precision@k of item-CF fitted on the history before the validation window."""
    from models.recommenders.itemcf import ItemCF
    from pipelines.recommenders.training import validation_score

    log = data.log("validation")
    popularity = baseline.popularity("validation")

    def objective(trial) -> float:
        params = suggest_params(trial, len(log.product_ids), events=len(log.ev_user) > 0,
                                max_neighbours=max_neighbours)
        recommender = ItemCF(**params).fit(log).recommender(popularity)
        return validation_score(recommender, data, k)

    return objective


def config_from_args(args) -> ItemCFConfig:
    """The checked :class:`ItemCFConfig` of the parsed options."""
    from pipelines.errors import ConfigurationError
    from pipelines.recommenders.options import recommender_config

    if args.max_neighbours < 1:
        raise ConfigurationError(f"--max-neighbours must be a positive integer, got {args.max_neighbours!r}")
    return ItemCFConfig(**recommender_config(args), max_neighbours=args.max_neighbours)


def train(config: ItemCFConfig):
    """Study, refit and test of :mod:`pipelines.recommenders.training` in the family's parent run; returns the
    :class:`pipelines.mlflow_logging.TrainResult` (registers nothing)."""
    import time

    import mlflow

    from models.recommenders.itemcf import ItemCF
    from pipelines.recommenders import training as rt
    from pipelines.recommenders.hybrid import tune_extras
    from pipelines.mlflow_logging import family_run
    from pipelines.study import run_study
    from pipelines.tracking import default_data_dir

    started = time.monotonic()
    data_dir = config.data_dir or default_data_dir()
    k, max_neighbours = config.k, config.max_neighbours
    data = rt.load_recommender_data(data_dir, config.test_days, config.val_days)
    study_options = config.study.named("itemcf")
    with family_run(FAMILY.name, f"{FAMILY.title} top-{k}",
                    params={"k": k, "data_dir": str(data_dir), "max_neighbours": max_neighbours},
                    tags={"model_type": "item-based CF"}) as run:
        rt.log_data_inputs(data)
        baseline = rt.popularity_baseline(data, k)
        mlflow.log_param("baseline_window_days", baseline.window_days or "all")
        study = run_study(make_objective(data, baseline, k, max_neighbours), options=study_options,
                          metrics=f"precision_at_{k}", directions="maximize", baseline=baseline.test_metrics,
                          enqueue=[default_trial(len(data.catalog), max_neighbours)])
        params = model_params(study.best_params)
        extras = tune_extras(data, baseline, k, lambda: ItemCF(**params).fit(data.log("validation")).recommender(
            baseline.popularity("validation")), blend_trials=config.blend_trials, seed=config.study.seed)
        fit_started = time.monotonic()
        model = ItemCF(**params).fit(data.log("test"))
        recommender = model.recommender(baseline.popularity("test"))
        mlflow.log_metric("fit_seconds", time.monotonic() - fit_started)
        result = rt.finish_training(family=FAMILY.name, label=FAMILY.title, run_id=run.info.run_id,
                                    recommender=recommender, data=data, baseline=baseline, k=k, extras=extras)
        mlflow.log_metric("wall_seconds", time.monotonic() - started)
    return result


def summary(result, verdict: str) -> str:
    """The command's closing line (after :func:`train` and the registration gate)."""
    from pipelines.recommenders.training import summary_line

    return summary_line(result, FAMILY.title, verdict)
