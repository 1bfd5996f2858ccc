"""Tune, evaluate and log SVD++ (scikit-surprise ``SVDpp``) recommendations (``train_svdpp``).

Reads the four canonical tables from ``--data-dir`` (default ``data/generated``). The test window is the
last ``--test-days`` days of purchases; tuning fits on the history before the validation window (the
``--val-days`` before the test), so it never sees the test window. The model trains on the customer x
product matrix of :mod:`models.recommenders.interactions` (implicit rating ``log1p`` of the amount spent).

``--objective`` chooses what Optuna optimises (see :mod:`models.recommenders.svdpp` for the training modes):

* ``rmse``: rating accuracy. Plain SVD++ on the observed ratings; the score is the RMSE on the held-out
  customer-product pairs of the validation window (pairs a customer bought there for the first time, rated
  ``log1p`` of what they spent on them in the window).
* ``precision`` (default): top-k quality. SVD++ trained with sampled unobserved pairs as rating-0
  negatives; the score is the validation ``precision_at_<k>`` (products already bought are excluded, as
  when served). Optuna also searches the negatives per observed pair (``neg_ratio``), their popularity
  exponent (``neg_alpha``), whether observed pairs keep their rating or count as 1 (``positive``) and the
  regularisation of the implicit factors (``reg_yj``; the negatives are part of SVD++'s implicit feedback).
  The test ``rmse``/``mae`` of such a model are logged too, but its estimates are 0/1-scale scores, not
  ratings, so they only compare between ``rmse`` runs.
* ``multi``: a two-objective study of both scores on the same models, where ``neg_ratio`` may be 0 (plain
  rating model), so the Pareto front spans rating accuracy and ranking quality; the refit winner is the
  front's trial with the best precision (tag ``pareto_choice``, file ``study/pareto_front.csv``).

Every trial searches ``n_factors``, ``n_epochs``, ``lr_all``, ``reg_all`` and ``reg_yj`` (the implicit
factors' own regularisation: low for ratings, 0.001-0.3, high for ranking, 0.01-10); known-good settings are tried
first (Surprise's defaults for ``rmse``, ``RANKING_DEFAULTS`` for ``precision``, both for ``multi``). SVD++
is slow: Surprise loops over a customer's pairs for every rating, so a fit costs about ``epochs x factors x
the sum over customers of (pairs incl. negatives)^2``. The ranges are capped where a fit on the default data
(5,000 customers, ~55,000 pairs) stays within seconds (4-40 factors, 10-40 epochs, 0.5-2.5 negatives per
pair), and the default budget (25 trials or 100 seconds of starting trials) keeps the whole entry point
within minutes (docs/recommenders.md). Larger shops tune on a sample of customers (the rule of
:mod:`pipelines.budget`: every customer up to 6,000, else 2,000 random ones; ``--tuning-customers N`` overrides it,
0 = all): the trials fit on the sample's purchases and are scored on those customers. A sample ranks
configurations with noise and with a bias (fewer customers favour smaller, more regularised models), so the refit
winner is then chosen on every customer (:func:`full_check`): the sample's choice and the enqueued known-good start
(or the sample's runner-up) are fitted on every customer's validation history, the second in a second process,
and scored on the whole validation window; the better one is refit, and the agreement of the two orders is logged
(``tuning_agreement_kendall_tau``, ``tuning_agreement_best``, ``study/tuning_agreement.csv``). The winner is always
refit on every customer: from :data:`BACKGROUND_REFIT_PAIRS` training pairs in a second process
(:mod:`pipelines.parallel`, tag ``refit_process``), beside the blend tuning. After the study, the
demographic cold start and the content blend are chosen on validation (:mod:`pipelines.recommenders.hybrid`,
``--blend-trials``; the blend is tuned on the winner refit on the history before the validation window).

Logs one parent run in the experiment ``storefront-svdpp``: the data inputs, the popularity baseline
(``baseline_test_*`` ranking metrics; ``baseline_test_rmse``/``mae`` of the mean-rating predictor), one nested
run per trial (``val_rmse`` and/or ``val_precision_at_10``), the best params, the test metrics of the refit
model (``test_rmse``, ``test_mae`` on the held-out pairs of the test window, ``test_precision_at_10``,
``test_recall_at_10``, ``test_ndcg_at_10``, ``test_map_at_10``, ``test_hit_rate_at_10``, ``test_coverage``,
``test_personalization``), figures (study history, parameter importances or Pareto front, precision@k against
popularity, coverage per category, predicted vs. actual rating), and the pyfunc model ``model``
(``models/recommenders/pyfunc.py``: factors and biases as numpy arrays, no Surprise at serving time), checked
by loading it back, and the test window as ``holdout/`` (for re-scoring a champion at promotion).
:func:`train` registers nothing and returns a ``TrainResult`` (primary metric ``precision_at_10``); the
command (``run``) then registers the model as ``storefront-svdpp@challenger`` when it beats the popularity
baseline on test precision@k (the registration gate), and prints the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.families import get
from pipelines.recommenders.options import RecommenderConfig

FAMILY = get("svdpp")
OBJECTIVES = ("rmse", "precision", "multi")
DEFAULT_OBJECTIVE = "precision"


@dataclass(frozen=True)
class SVDppConfig(RecommenderConfig):
    objective: str = DEFAULT_OBJECTIVE
    tuning_customers: int | None = None  # None: the rule of pipelines.budget; 0: every customer
# Search space bounds: kept where a fit on the default data set stays within seconds.
FACTORS = (4, 40)
EPOCHS = (10, 40)
LEARNING_RATE = (0.002, 0.05)
REGULARISATION = (0.003, 0.3)
NEG_RATIO = (0.5, 2.5)
NEG_RATIO_STEP = 0.25
IMPLICIT_REGULARISATION = (0.01, 10.0)
# The refit on everyone runs in a second process (beside the blend tuning) from this many training pairs: below
# it, starting an interpreter costs more than the fit (the default shop has about 55,000 pairs).
BACKGROUND_REFIT_PAIRS = 20_000
# For rating accuracy the implicit factors want far less shrinkage than the explicit ones (measured on
# MovieLens 100k, docs/recommenders.md); Surprise ties reg_yj to reg_all by default.
RATING_IMPLICIT_REGULARISATION = (0.001, 0.3)
# Tried first (Optuna's enqueue), so that even a tiny budget evaluates a sensible model: Surprise's own
# defaults for rating accuracy; for ranking, binary targets with two negatives per observed pair and a
# higher learning rate (plain defaults underfit the 0/1 targets on the generated data), and
# strongly regularised implicit factors (the sampled negatives are part of N(u); see models.recommenders.svdpp).
SURPRISE_DEFAULTS = {"n_factors": 20, "n_epochs": 20, "lr_all": 0.007, "reg_all": 0.02, "reg_yj": 0.02}
RANKING_DEFAULTS = {"n_factors": 10, "n_epochs": 30, "lr_all": 0.02, "reg_all": 0.02, "neg_ratio": 2.0,
                    "neg_alpha": 0.0, "positive": "binary", "reg_yj": 1.0}
INITIAL_TRIALS = {"rmse": [SURPRISE_DEFAULTS], "precision": [RANKING_DEFAULTS],
                  "multi": [RANKING_DEFAULTS, {**SURPRISE_DEFAULTS, "neg_ratio": 0.0}]}


def add_arguments(parser) -> None:
    from pipelines.budget import add_tuning_option
    from pipelines.recommenders.options import add_recommender_options

    add_recommender_options(parser, FAMILY, study_name=None, seed_help="sampler and model seed")
    parser.add_argument("--objective", default=DEFAULT_OBJECTIVE, choices=OBJECTIVES,
                        help="what the study optimises: rmse (held-out ratings), precision (validation "
                             f"precision@k, negatives sampled) or multi (both, Pareto front) (default {DEFAULT_OBJECTIVE})")
    add_tuning_option(parser, FAMILY.name)


# --- search space and data -------------------------------------------------------------------------


def suggest_params(trial, objective: str) -> dict:
    """The search space (:class:`models.recommenders.svdpp.SVDppRecommender` arguments) for ``objective``."""
    params = {
        "n_factors": trial.suggest_int("n_factors", *FACTORS, log=True),
        "n_epochs": trial.suggest_int("n_epochs", *EPOCHS),
        "lr_all": trial.suggest_float("lr_all", *LEARNING_RATE, log=True),
        "reg_all": trial.suggest_float("reg_all", *REGULARISATION, log=True),
        # one range per study (a parameter keeps one distribution within a study)
        "reg_yj": trial.suggest_float("reg_yj", *(RATING_IMPLICIT_REGULARISATION if objective == "rmse"
                                                  else IMPLICIT_REGULARISATION), log=True),
    }
    if objective == "rmse":
        return {**params, "objective": "rmse"}
    low = 0.0 if objective == "multi" else NEG_RATIO[0]
    neg_ratio = trial.suggest_float("neg_ratio", low, NEG_RATIO[1], step=NEG_RATIO_STEP)
    if neg_ratio == 0:
        return {**params, "objective": "rmse"}
    return {**params, "objective": "precision", "neg_ratio": neg_ratio,
            "neg_alpha": trial.suggest_float("neg_alpha", 0.0, 1.0),
            "positive": trial.suggest_categorical("positive", ["rating", "binary"])}


def model_params(optuna_params: dict) -> dict:
    """A trial's params as :class:`models.recommenders.svdpp.SVDppRecommender` arguments."""
    params = dict(optuna_params)
    neg_ratio = params.get("neg_ratio")
    params["objective"] = "precision" if neg_ratio else "rmse"
    if not neg_ratio:
        for name in ("neg_ratio", "neg_alpha", "positive"):
            params.pop(name, None)
    return params


def item_labels(data, product_ids) -> "np.ndarray":
    """The category of each product (the scorer's reasons: "matches your taste in <category>")."""
    import numpy as np

    products = data.tables["products"]
    categories = dict(zip(products["product_id"].astype(str), products["category"].astype(str)))
    return np.array([categories.get(p, "") for p in product_ids], dtype=str)


def heldout_pairs(data, stage: str, log):
    """``(users, items, ratings)``: pairs a known customer bought for the first time in the stage's window.

    Indices are those of ``log``; the rating is ``log1p`` of the amount spent on the pair in the window,
    the same scale as the training ratings. Customers unknown at the cutoff are left out.
    """
    import numpy as np

    window = data.window_transactions(stage)
    customer_index = log.customer_index()
    product_index = log.product_index()
    spent = window.groupby([window["customer_id"].astype(str), window["product_id"].astype(str)])["amount"].sum()
    users = np.array([customer_index.get(c, -1) for c, _ in spent.index], dtype=np.int64)
    items = np.array([product_index.get(p, -1) for _, p in spent.index], dtype=np.int64)
    ratings = np.log1p(np.maximum(spent.to_numpy(dtype=float), 0.0))
    keep = (users >= 0) & (items >= 0)
    if keep.any():
        purchased = log.purchased()
        keep[keep] = ~np.asarray(purchased[users[keep], items[keep]]).ravel()
    return users[keep], items[keep], ratings[keep]


def sample_rows(n_rows: int, n_customers: int, seed: int):
    """Sorted random row indices of ``n_customers`` customers out of ``n_rows`` (None: every row, when
    ``n_customers`` is 0 or at least ``n_rows``)."""
    import numpy as np

    if not n_customers or n_customers >= n_rows:
        return None
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=n_customers, replace=False))


def restrict_rows(matrix, rows):
    """``matrix`` with only the entries of ``rows`` kept (None: unchanged); the shape stays, so indices still match
    the interaction log."""
    import numpy as np
    from scipy import sparse

    if rows is None:
        return matrix
    coo = matrix.tocoo()
    keep = np.isin(coo.row, rows)
    return sparse.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=matrix.shape)


def subsample_customers(matrix, n_customers: int, seed: int):
    """``(matrix, rows)``: only ``n_customers`` random customers' entries kept (0 or all: unchanged, rows None)."""
    rows = sample_rows(matrix.shape[0], n_customers, seed)
    return restrict_rows(matrix, rows), rows


def fit_svdpp(params: dict, matrix, labels, seed: int):
    """:class:`models.recommenders.svdpp.SVDppRecommender` fitted on the stored entries of the customer x product ``matrix``."""
    from models.recommenders.svdpp import SVDppRecommender

    coo = matrix.tocoo()
    return SVDppRecommender(**params, random_state=seed).fit(
        coo.row, coo.col, coo.data, n_users=matrix.shape[0], n_items=matrix.shape[1], item_labels=labels)


def refit(params: dict, matrix, labels, seed: int):
    """``(model, seconds)``: :func:`fit_svdpp` without the Surprise model kept (``algo_``: the trainset with every
    pair as Python objects), so that the fitted scorer is all there is to send back from a second process."""
    import time

    started = time.monotonic()
    model = fit_svdpp(params, matrix, labels, seed)
    del model.algo_
    return model, time.monotonic() - started


def svdpp_recommender(model, log, popularity):
    """The servable engine: the model's scorer with ``log``'s ids and purchase histories (also its reasons')."""
    from models.recommenders.engine import Recommender

    purchased = log.purchased()
    return Recommender(model.scorer_.with_history(purchased), log.customer_ids, log.product_ids, purchased,
                       popularity)


def rating_errors(model, pairs) -> dict[str, float]:
    """``rmse`` and ``mae`` of the model's (clipped) estimates on held-out ``(users, items, ratings)``."""
    from evaluation.metrics import mae, rmse

    users, items, ratings = pairs
    predicted = model.predict(users, items)
    return {"rmse": rmse(ratings, predicted), "mae": mae(ratings, predicted)}


# --- the objective ---------------------------------------------------------------------------------


def study_metrics(objective: str, k: int) -> tuple[list[str], list[str]]:
    precision = f"precision_at_{k}"
    return {"rmse": (["rmse"], ["minimize"]), "precision": ([precision], ["maximize"]),
            "multi": (["rmse", precision], ["minimize", "maximize"])}[objective]


def make_objective(data, baseline, k: int, objective: str, seed: int, tuning_customers: int = 0):
    """Validation score(s) of SVD++ fitted on the history before the validation window (no MLflow calls), on
    ``tuning_customers`` random customers (0: all)."""
    log = data.log("validation")
    scorer = SampleScorer(data, baseline, k, objective, seed, sample_rows(len(log.customer_ids), tuning_customers,
                                                                           seed))

    def score(trial):
        return scorer(suggest_params(trial, objective))

    return score


class SampleScorer:
    """The validation score(s) of SVD++ params fitted on the validation history of the customers ``rows`` of the
    validation log (None: all) and scored on those customers only: ``scorer(params)``, or ``scorer.values(model)``
    for a model fitted elsewhere on ``scorer.matrix`` (e.g. in a second process)."""

    def __init__(self, data, baseline, k: int, objective: str, seed: int, rows):
        import numpy as np

        from pipelines.errors import DataValidationError

        log = data.log("validation")
        self.k, self.objective, self.seed, self.log = k, objective, seed, log
        self.matrix = restrict_rows(log.matrix(), rows)
        self.labels = item_labels(data, log.product_ids)
        self.popularity = baseline.popularity("validation")
        relevant = data.relevant("validation")
        pairs = heldout_pairs(data, "validation", log) if objective in ("rmse", "multi") else None
        if rows is not None:  # score only the customers the trials fit on
            sampled = set(log.customer_ids[rows].tolist())
            relevant = {c: items for c, items in relevant.items() if c in sampled}
            if pairs is not None:
                mask = np.isin(pairs[0], rows)
                pairs = tuple(part[mask] for part in pairs)
        if objective in ("precision", "multi") and not relevant:
            raise DataValidationError(f"{data.source}: no tuning customer bought a new product in the validation window")
        if pairs is not None and len(pairs[0]) == 0:
            raise DataValidationError(f"{data.source}: the validation window has no new customer-product pair of a "
                                      "known customer to score the rmse objective on")
        self.relevant, self.pairs = relevant, pairs

    def values(self, model):
        """The objective's value(s) of a model fitted on :attr:`matrix`."""
        from pipelines.recommenders.training import precision_score

        values = []
        if self.objective in ("rmse", "multi"):
            values.append(rating_errors(model, self.pairs)["rmse"])
        if self.objective in ("precision", "multi"):
            values.append(precision_score(svdpp_recommender(model, self.log, self.popularity), self.relevant, self.k))
        return values[0] if len(values) == 1 else tuple(values)

    def __call__(self, params: dict):
        return self.values(fit_svdpp(params, self.matrix, self.labels, self.seed))


def ranking_value(values, objective: str) -> float:
    """A trial's value(s) as one higher-is-better number: precision (also of ``multi``), or minus the rmse."""
    if objective == "rmse":
        return -float(values if not isinstance(values, (list, tuple)) else values[0])
    return float(values[-1] if isinstance(values, (list, tuple)) else values)


@dataclass
class Choice:
    trial: object  # the refit winner (optuna FrozenTrial)
    why: str  # the tag refit_choice / pareto_choice
    validation_model: object = None  # the winner fitted on every customer's validation history (a full check ran)


def full_check_candidates(result, objective: str, best) -> list:
    """The configurations a sampled study re-scores on every customer: the sample's choice ``best``
    (:func:`choose_trial`) and the first configuration tried (the enqueued known-good start), or the sample's
    runner-up when the start is the choice."""
    import optuna

    complete = result.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    start = [t for t in complete if "fixed_params" in t.system_attrs and t.number != best.number]
    others = sorted((t for t in complete if t.number != best.number),
                    key=lambda t: (-ranking_value(t.values, objective), t.number))
    second = start[:1] or others[:1]
    return [best, *second]


def full_check(result, data, baseline, k: int, objective: str, seed: int) -> Choice:
    """After a sampled study: fit :func:`full_check_candidates` on every customer's validation history (the second
    one in a second process, :mod:`pipelines.parallel`), score them on the whole validation window and choose the
    better as the refit winner. A sample of customers ranks configurations with noise and with a bias (fewer
    customers favour smaller, more regularised models), so the sample alone is not trusted with the choice. The
    agreement of the sample's order with every customer's (:func:`pipelines.budget.agreement`) is logged as
    ``tuning_agreement_*`` and ``study/tuning_agreement.csv``."""
    import logging

    import mlflow

    from pipelines import budget
    from pipelines.parallel import in_background

    sample_choice, sample_why = choose_trial(result, objective)
    candidates = full_check_candidates(result, objective, sample_choice)
    if len(candidates) < 2:
        return Choice(sample_choice, sample_why)
    scorer = SampleScorer(data, baseline, k, objective, seed, None)
    first, second = (model_params(t.params) for t in candidates)
    with in_background(refit, second, scorer.matrix, scorer.labels, seed,
                       enabled=scorer.matrix.nnz >= BACKGROUND_REFIT_PAIRS) as pending:
        models = [refit(first, scorer.matrix, scorer.labels, seed)[0]]
        models.append(pending.result()[0])
    full = [ranking_value(scorer.values(model), objective) for model in models]
    sample = [ranking_value(t.values, objective) for t in candidates]
    found = budget.agreement(sample, full)
    mlflow.log_metrics({"tuning_agreement_kendall_tau": found["kendall_tau"], "tuning_agreement_best": found["best"],
                        "tuning_agreement_trials": found["n"], "tuning_check_customers": scorer.matrix.shape[0]})
    mlflow.log_text("trial,sample_value,full_value\n" + "".join(
        f"{t.number},{s:.6f},{f:.6f}\n" for t, s, f in zip(candidates, sample, full)), "study/tuning_agreement.csv")
    chosen = max(range(len(candidates)), key=lambda i: (full[i], -i))
    winner = candidates[chosen]
    metric = "rmse" if objective == "rmse" else f"precision_at_{k}"
    why = (f"best val_{metric} on every customer ({abs(full[chosen]):.4f}) of trial {candidates[0].number} (the "
           f"sample's choice: {sample_why}) and trial {candidates[1].number}")
    logging.getLogger(__name__).info(
        "full check on every customer's validation: %s; refit trial %d", ", ".join(
            f"trial {t.number} sample {abs(s):.4f} all {abs(f):.4f}" for t, s, f in zip(candidates, sample, full)),
        winner.number)
    return Choice(winner, why, models[chosen])


def choose_trial(result, objective: str):
    """The refit winner: the best trial, or for ``multi`` the Pareto front's trial with the best precision."""
    if objective != "multi":
        return result.best_trials[0], f"best val_{'rmse' if objective == 'rmse' else 'precision'}"
    front = sorted(result.best_trials, key=lambda t: (-t.values[1], t.values[0], t.number))
    return front[0], f"highest val precision on the Pareto front of {len(front)} trial(s)"


def log_rating_figure(model, pairs, label: str) -> None:
    """``plots/predicted_vs_actual.png``: estimates against actual ratings of the held-out test pairs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from pipelines.mlflow_logging import log_figure

    users, items, ratings = pairs
    predicted = model.predict(users, items)
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.hexbin(ratings, predicted, gridsize=40, mincnt=1, cmap="viridis")
    low, high = float(min(ratings.min(), predicted.min())), float(max(ratings.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="actual rating log1p(amount), test window", ylabel=f"{label} estimate",
           title=f"{label}: held-out test pairs (n={len(ratings)}, corr {np.corrcoef(ratings, predicted)[0, 1]:.2f})"
           if len(ratings) > 1 and np.std(predicted) > 0 else f"{label}: held-out test pairs (n={len(ratings)})")
    fig.tight_layout()
    log_figure(fig, "plots/predicted_vs_actual.png")


# --- the entry point ---------------------------------------------------------------------------------


def config_from_args(args) -> SVDppConfig:
    """The checked :class:`SVDppConfig` of the parsed options."""
    from pipelines.errors import ConfigurationError
    from pipelines.recommenders.options import recommender_config

    if args.tuning_customers is not None and args.tuning_customers < 0:
        raise ConfigurationError(f"--tuning-customers must be 0 (all) or a positive integer, got {args.tuning_customers!r}")
    return SVDppConfig(**recommender_config(args), objective=args.objective, tuning_customers=args.tuning_customers)


def train(config: SVDppConfig):
    """Study, refit and test of :mod:`pipelines.recommenders.training` in the family's parent run; returns the
    :class:`pipelines.mlflow_logging.TrainResult` (registers nothing)."""
    import time

    import mlflow

    from pipelines.recommenders import training as rt
    from pipelines.recommenders.hybrid import tune_extras
    from pipelines.mlflow_logging import family_run
    from pipelines.budget import tuning_customers
    from pipelines.parallel import in_background
    from pipelines.study import run_study
    from pipelines.tracking import default_data_dir

    started = time.monotonic()
    data_dir = config.data_dir or default_data_dir()
    k, objective, seed = config.k, config.objective, config.study.seed
    study_options = config.study.named(f"svdpp-{objective}")
    data = rt.load_recommender_data(data_dir, config.test_days, config.val_days)
    metrics, directions = study_metrics(objective, k)
    n_customers = len(data.log("validation").customer_ids)
    n_tuning, why = tuning_customers(FAMILY.name, n_customers, config.tuning_customers)
    rows = sample_rows(n_customers, n_tuning, seed)
    with family_run(FAMILY.name, f"{FAMILY.title} {objective} objective, top-{k}",
                    params={"k": k, "data_dir": str(data_dir), "tuning_customers": n_tuning,
                            "tuning_customers_rule": why},
                    tags={"model_type": "SVD++ (scikit-surprise)", "svdpp_objective": objective}) as run:
        rt.log_data_inputs(data)
        baseline = rt.popularity_baseline(data, k)
        test_log = data.log("test")
        test_pairs = test_rating_pairs(data, test_log)
        mlflow.log_param("baseline_window_days", baseline.window_days or "all")
        mlflow.log_metrics({"tuning_sample_customers": n_tuning, "tuning_shop_customers": n_customers})
        scorer = SampleScorer(data, baseline, k, objective, seed, rows)
        result = run_study(lambda trial: scorer(suggest_params(trial, objective)), options=study_options, metrics=metrics, directions=directions,
                           enqueue=INITIAL_TRIALS[objective],
                           baseline={**baseline.test_metrics, **mean_rating_baseline(test_log, test_pairs)})
        choice, params = refit_choice(result, data, baseline, k, objective, seed, rows)
        test_matrix = test_log.matrix()
        val_log = data.log("validation")

        def validation_recommender():  # the winner on the validation history: fitted by the full check, or now
            model = choice.validation_model or fit_svdpp(params, val_log.matrix(), item_labels(data, val_log.product_ids),
                                                         seed)
            return svdpp_recommender(model, val_log, baseline.popularity("validation"))

        # The refit on everyone does not depend on the blend tuning: on a second core it runs beside it
        # (pipelines.parallel).
        with in_background(refit, params, test_matrix, item_labels(data, test_log.product_ids), seed,
                           enabled=test_matrix.nnz >= BACKGROUND_REFIT_PAIRS) as pending:
            mlflow.set_tag("refit_process", "background" if pending.background else "this process")
            extras = tune_extras(data, baseline, k, validation_recommender, blend_trials=config.blend_trials, seed=seed)
            waited = time.monotonic()
            model, fit_seconds = pending.result()
            waited = time.monotonic() - waited
        mlflow.log_metrics({"fit_seconds": fit_seconds, "refit_wait_seconds": waited, "train_pairs": test_matrix.nnz,
                            "train_negatives": model.n_negatives_, "test_rating_pairs": len(test_pairs[0])})
        errors = rating_errors(model, test_pairs)
        log_rating_figure(model, test_pairs, FAMILY.title)
        recommender = svdpp_recommender(model, test_log, baseline.popularity("test"))
        train_result = rt.finish_training(family=FAMILY.name, label=FAMILY.title, run_id=run.info.run_id,
                                          recommender=recommender, data=data, baseline=baseline, k=k,
                                          extras=extras, extra_metrics=errors)
        train_result.extra.update({"objective": objective, "refit_trial": choice.trial.number, "params": params,
                                   "test_rmse": errors["rmse"], "test_mae": errors["mae"]})
        mlflow.log_metric("wall_seconds", time.monotonic() - started)
    return train_result


def test_rating_pairs(data, test_log):
    """The held-out ``(users, items, ratings)`` of the test window; an error when there are none."""
    from pipelines.errors import DataValidationError

    pairs = heldout_pairs(data, "test", test_log)
    if len(pairs[0]) == 0:
        raise DataValidationError(f"{data.source}: the test window has no new customer-product pair of a known "
                                  "customer to score rmse on")
    return pairs


def mean_rating_baseline(test_log, test_pairs) -> dict[str, float]:
    """``rmse`` and ``mae`` of predicting every held-out pair with the mean training rating."""
    import numpy as np

    mean_rating = float(test_log.matrix().data.mean())
    return {"rmse": float(np.sqrt(np.mean((test_pairs[2] - mean_rating) ** 2))),
            "mae": float(np.mean(np.abs(test_pairs[2] - mean_rating)))}


def refit_choice(result, data, baseline, k: int, objective: str, seed: int, rows) -> tuple[Choice, dict]:
    """``(choice, model params)`` of the refit winner (:func:`choose_trial`; after a sampled study,
    :func:`full_check`), with the choice tagged and logged on the parent run."""
    import mlflow

    choice = full_check(result, data, baseline, k, objective, seed) if rows is not None else \
        Choice(*choose_trial(result, objective))
    params = model_params(choice.trial.params)
    choice_tag = "pareto_choice" if objective == "multi" else "refit_choice"
    mlflow.set_tags({"refit_trial": str(choice.trial.number), choice_tag: f"trial {choice.trial.number}: {choice.why}"})
    mlflow.log_params({f"refit_{name}": value for name, value in params.items()})
    return choice, params


def summary(result, verdict: str) -> str:
    """The command's closing line (after :func:`train` and the registration gate)."""
    from pipelines.recommenders.training import summary_line

    return summary_line(result, f"{FAMILY.title} ({result.extra['objective']})", verdict,
                        f"test rmse {result.extra['test_rmse']:.4f}")
