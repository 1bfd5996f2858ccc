"""What both recommender families add to their scorer, chosen on the validation window, and the test metrics by
customer segment. Nothing here is family-specific; nothing here opens an MLflow run (``log_*`` log to the active one).

* Demographic cold start (:func:`choose_cold_start`): segment popularity
  (:class:`models.recommenders.coldstart.SegmentPopularity`) over one of :data:`COLD_START_ATTRIBUTES`, smoothed
  towards global popularity with one of :data:`COLD_START_STRENGTHS`, counting the purchases of the popularity
  baseline's window (chosen on validation too). Scored on *simulated* cold customers: every customer with
  demographics who buys in the validation window, in :data:`COLD_START_FOLDS` folds
  (:func:`evaluation.splits.customer_folds`); a fold's customers are cut to zero (the table is fitted without
  their purchases) and everything they buy in the window is relevant. The real cold customers of a window are
  too few to choose on (34 in the default shop's test window). The best variant by pooled precision@k is refit
  on all history before the test cutoff and served for unknown customers.
* Content blend (:func:`tune_blend`): an Optuna study (TPE, the run's seed, in memory, :data:`BLEND_TRIALS` trials)
  of the blend weight (0 to 1), normalisation, feature weights and neighbourhood size
  (:mod:`models.recommenders.content`), maximising validation precision@k of the family's model fitted on the
  history before the validation window. The first trial is weight 0, and the best blend is kept only when it beats
  the family alone on the validation customers by more than :data:`BLEND_MIN_GAIN_SE` paired standard errors (the
  best of many trials is biased upwards: on the main job's small shop a blend 1.7 standard errors better on
  validation was worse on test), so tuning switches it off where it does not clearly help.
* Evaluation by segment (:func:`segment_metrics`): the test metrics for warm customers (a purchase before the
  test cutoff), cold-start customers (none, demographics known; served as the model serves them: the family's
  scores when they have events, else their segment) and simulated cold customers, next to global popularity
  (``baseline_test_*``) and segment popularity (``segment_baseline_test_*``) on the same customers; the share of
  hits on products new in the test window; the figure ``plots/precision_by_segment.png``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from evaluation.compare import paired_gain
from evaluation.metrics import hit_share, precision_at_k, precision_at_k_by_user, recall_at_k
from evaluation.splits import cold_start_groups, customer_folds, new_products
from models.recommenders.coldstart import ATTRIBUTES, SegmentPopularity, SegmentScorer, SegmentTable
from models.recommenders.content import NORMALISATIONS, ContentBlend, content_similarity, product_features
from models.recommenders.engine import Recommender, rank_top_k, tie_ranks
from pipelines.recommenders.options import DEFAULT_BLEND_TRIALS

logger = logging.getLogger(__name__)

COLD_START_ATTRIBUTES = (("gender",), ("age",), ("gender", "age"), ("gender", "age", "profession"))
COLD_START_STRENGTHS = (10.0, 100.0, 1_000.0, 10_000.0, 100_000.0)
COLD_START_FOLDS = 5
FOLD_SEED = 0
BLEND_TRIALS = DEFAULT_BLEND_TRIALS
BLEND_MIN_GAIN_SE = 2.0
BLEND_DEFAULTS = {"weight": 0.0, "normalisation": "max", "w_subcategory": 0.5, "w_price": 0.5, "w_name": 0.0,
                  "n_neighbours": 50}
# who is scored, and under which metric prefix
SYSTEMS = {"model": "test_", "popularity": "baseline_test_", "segment popularity": "segment_baseline_test_"}
POPULATIONS = ("all", "warm", "cold", "coldsim")


# --- demographic cold start ------------------------------------------------------------------------


@dataclass(frozen=True)
class ColdStart:
    """The chosen segment popularity: attributes, smoothing strength, window, and its validation scores."""

    attributes: tuple[str, ...]
    strength: float
    window_days: int | None
    val_value: float  # pooled precision@k of the simulated cold customers of the validation window
    val_global: float  # global popularity on the same customers
    grid: pd.DataFrame = field(default_factory=pd.DataFrame, compare=False, repr=False)

    def model(self, data, stage: str, exclude: Sequence[str] = ()) -> SegmentPopularity:
        """Segment popularity fitted on the history before the stage's cutoff (``exclude`` cut to zero)."""
        return SegmentPopularity(self.attributes, self.strength, self.window_days).fit(
            data.customers, data.history_transactions(stage), data.catalog, reference_date=data.bounds(stage)[0],
            exclude_customers=exclude)

    def table(self, data, stage: str, exclude: Sequence[str] = ()) -> SegmentTable:
        return self.model(data, stage, exclude).table_


def available_attributes(customers: pd.DataFrame) -> tuple[str, ...]:
    """The demographic columns of the customers table that hold at least one value."""
    return tuple(a for a in ATTRIBUTES if a in customers.columns and customers[a].notna().any())


def cut_to_zero(data, stage: str, seed: int = FOLD_SEED) -> tuple[dict[str, set[str]], list[list[str]]]:
    """``(relevant, folds)`` of the simulated cold customers of the stage's window (see the module docstring)."""
    window = data.window_transactions(stage)
    described = data.described_customers
    relevant = {c: set(items) for c, items in window.groupby(window["customer_id"].astype(str))["product_id"]
                if c in described}
    if len(relevant) < 2:
        return relevant, []
    return relevant, customer_folds(relevant, min(COLD_START_FOLDS, len(relevant)), seed)


def segment_lists(table: SegmentTable, values: Mapping[str, Sequence], customers: Sequence[str], k: int,
                  product_ids: np.ndarray) -> dict[str, list[str]]:
    """Each customer's top-k of their segment's row (ties by the table's global row), one ranking per segment."""
    rows, labels = table.lookup(values, len(customers))
    rows = np.where([bool(label) for label in labels], rows, 0)  # no known attribute: the global row
    unique, inverse = np.unique(rows, return_inverse=True)
    idx, _ = rank_top_k(table.table[unique].astype(float), k, tie_ranks(table.table[0]))
    return {c: product_ids[idx[i]].tolist() for c, i in zip(customers, inverse.ravel())}


def _simulated(data, stage: str, k: int, variants: Sequence[tuple[tuple[str, ...], float]], window_days,
               folds: Sequence[Sequence[str]]) -> dict:
    """Pooled top-k lists of the cut-to-zero customers for each variant and for global popularity."""
    lists = {variant: {} for variant in variants}
    lists["global"] = {}
    for fold in folds:
        values = data.demographics(fold)
        models = {}
        for attributes in dict.fromkeys(a for a, _ in variants):
            models[attributes] = SegmentPopularity(attributes, window_days=window_days).fit(
                data.customers, data.history_transactions(stage), data.catalog,
                reference_date=data.bounds(stage)[0], exclude_customers=fold)
        for attributes, strength in variants:
            table = models[attributes].smoothed(strength)
            lists[(attributes, strength)].update(segment_lists(table, values, fold, k, data.catalog))
        root = next(iter(models.values())).table_
        lists["global"].update(segment_lists(root, {}, fold, k, data.catalog))
    return lists


_SHARED: dict = {}  # results that depend on the shop's data only, see shared()
SHARED_ENTRIES = 4


def shared(key: tuple, compute: Callable[[], object]):
    """``compute()``, or its result for the same ``key`` computed earlier in this process: the cold-start choice and
    the simulated cold customers' test lists depend on the data and ``k`` only, not on the family, so the main job's
    second recommender family reuses the first's (the choice takes about a minute at 50,000 customers). Keys start
    with the data's digest and windows; the few most recent results are kept."""
    if key not in _SHARED:
        while len(_SHARED) >= SHARED_ENTRIES:
            _SHARED.pop(next(iter(_SHARED)))
        _SHARED[key] = compute()
    else:
        logger.info("%s: reusing the result computed earlier for the same data", key[0])
    return _SHARED[key]


def data_key(data) -> tuple:
    """What the data-only results of this module depend on (see :func:`shared`)."""
    return (data.digest, data.test_days, data.val_days)


def choose_cold_start(data, baseline, k: int) -> ColdStart | None:
    """The validation choice of attributes and strength (see the module docstring); None when the customers table
    has no demographic column or too few described buyers in the validation window. Computed once per data, ``k``
    and popularity window in a process (:func:`shared`)."""
    return shared(("cold start choice", *data_key(data), k, baseline.window_days),
                  lambda: _choose_cold_start(data, baseline, k))


def _choose_cold_start(data, baseline, k: int) -> ColdStart | None:
    attributes = available_attributes(data.customers)
    candidates = [a for a in COLD_START_ATTRIBUTES if set(a) <= set(attributes)] or [(a,) for a in attributes]
    relevant, folds = cut_to_zero(data, "validation")
    if not candidates or not folds:
        logger.info("cold start: no demographics to learn from (attributes %s, %d described buyers)",
                    attributes, len(relevant))
        return None
    variants = [(a, s) for a in candidates for s in COLD_START_STRENGTHS]
    lists = _simulated(data, "validation", k, variants, baseline.window_days, folds)
    scores = {variant: precision_at_k(relevant, lists[variant], k) for variant in variants}
    global_value = precision_at_k(relevant, lists["global"], k)
    grid = pd.DataFrame([{"attributes": ",".join(a), "strength": s, f"val_coldsim_precision_at_{k}": v}
                         for (a, s), v in scores.items()])
    (best_attributes, best_strength) = max(variants, key=lambda v: scores[v])  # first of equals
    choice = ColdStart(best_attributes, best_strength, baseline.window_days, scores[(best_attributes, best_strength)],
                       global_value, grid)
    logger.info("cold start: %s, strength %g: validation precision@%d %.4f on %d simulated cold customers "
                "(global popularity %.4f)", ",".join(best_attributes), best_strength, k, choice.val_value,
                len(relevant), global_value)
    return choice


def simulated_cold_lists(data, stage: str, cold_start: ColdStart | None, k: int):
    """``(relevant, segment lists, global lists)`` of the stage's simulated cold customers, each fold's lists from
    tables fitted without it; None without a cold start or without enough described buyers."""
    if cold_start is None:
        return None
    variant = (cold_start.attributes, cold_start.strength)

    def compute():
        relevant, folds = cut_to_zero(data, stage)
        if not folds:
            return None
        lists = _simulated(data, stage, k, [variant], cold_start.window_days, folds)
        return relevant, lists[variant], lists["global"]

    return shared((f"simulated cold customers of {stage}", *data_key(data), k, variant, cold_start.window_days),
                  compute)


def segment_popularity_recommender(data, stage: str, table: SegmentTable, popularity: np.ndarray) -> Recommender:
    """The segment-popularity baseline: every customer gets their segment's list (known ones by the customers table,
    unknown ones by the request's demographics), purchased products excluded."""
    log = data.log(stage)
    scorer = SegmentScorer.for_customers(table, data.demographics(log.customer_ids), len(log.customer_ids))
    return Recommender(scorer, log.customer_ids, log.product_ids, log.purchased(), popularity, segments=table)


# --- content blend ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlendChoice:
    """The blend chosen on validation (``params["weight"] == 0``: none) and its validation scores."""

    params: dict
    val_value: float | None  # validation precision@k of the kept blend (of the family alone when none is kept) ...
    val_unblended: float | None  # ... and of the family alone; None when the blend was not tuned (no trials)
    trials: pd.DataFrame = field(default_factory=pd.DataFrame, compare=False, repr=False)
    best_gain: float = 0.0  # the best trial's paired gain over the family alone on validation, and its standard error
    best_gain_se: float = 0.0

    @property
    def weight(self) -> float:
        return float(self.params.get("weight", 0.0))

    def blend(self, products: pd.DataFrame, product_ids) -> ContentBlend | None:
        return content_blend(products, product_ids, self.params)


def content_blend(products: pd.DataFrame, product_ids, params: Mapping) -> ContentBlend | None:
    """The :class:`ContentBlend` of ``params`` (see :func:`suggest_blend`); None for weight 0."""
    if float(params.get("weight", 0.0)) <= 0:
        return None
    features = product_features(products, product_ids, w_subcategory=params["w_subcategory"],
                                w_price=params["w_price"], w_name=params["w_name"])
    return ContentBlend(content_similarity(features, int(params["n_neighbours"])), float(params["weight"]),
                        params["normalisation"])


def suggest_blend(trial, n_products: int) -> dict:
    """The blend's search space."""
    upper = max(1, n_products - 1)
    return {"weight": trial.suggest_float("weight", 0.0, 1.0),
            "normalisation": trial.suggest_categorical("normalisation", list(NORMALISATIONS)),
            "w_subcategory": trial.suggest_float("w_subcategory", 0.0, 2.0),
            "w_price": trial.suggest_float("w_price", 0.0, 2.0),
            "w_name": trial.suggest_float("w_name", 0.0, 2.0),
            "n_neighbours": trial.suggest_int("n_neighbours", min(5, upper), upper, log=True)}


def tune_blend(data, recommender: Recommender, k: int, n_trials: int = BLEND_TRIALS, seed: int = 42) -> BlendChoice:
    """The blend for the family's ``recommender`` fitted on the history before the validation window (see the
    module docstring)."""
    import optuna

    from pipelines.recommenders.training import validation_score

    products = data.tables["products"]
    plain = recommender.with_parts(blend=None)
    unblended = validation_score(plain, data, k)
    if n_trials < 1:
        return BlendChoice({"weight": 0.0}, unblended, unblended)

    def objective(trial) -> float:
        params = suggest_blend(trial, plain.n_products)
        blend = content_blend(products, plain.product_ids, params)
        return unblended if blend is None else validation_score(plain.with_parts(blend=blend), data, k)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial({**BLEND_DEFAULTS, "n_neighbours": min(BLEND_DEFAULTS["n_neighbours"],
                                                               max(1, plain.n_products - 1))})
    study.optimize(objective, n_trials=n_trials)
    best = study.best_trial
    gain = se = 0.0
    blend = content_blend(products, plain.product_ids, best.params)
    if blend is not None and best.value > unblended:
        relevant = data.relevant("validation")
        by_user = [precision_at_k_by_user(relevant, rec.recommend_all(list(relevant), k), k)
                   for rec in (plain.with_parts(blend=blend), plain)]
        gain, se = paired_gain(list(by_user[0].values()), list(by_user[1].values()))
    kept = gain > 0 and gain > BLEND_MIN_GAIN_SE * se
    choice = BlendChoice(dict(best.params) if kept else {"weight": 0.0}, best.value if kept else unblended,
                         unblended, study.trials_dataframe(), gain, se)
    logger.info("content blend: %s (best trial: weight %.3f, validation precision@%d %.4f vs %.4f for the family "
                "alone, gain %.4f = %.1f standard errors; %d trials)",
                f"weight {choice.weight:.3f}" if kept else "off", float(best.params.get("weight", 0.0)), k,
                best.value, unblended, gain, gain / se if se > 0 else 0.0, n_trials)
    return choice


# --- both, for a family's training ----------------------------------------------------------------


@dataclass(frozen=True)
class Extras:
    """The cold start and the blend of one training run (both chosen on validation)."""

    cold_start: ColdStart | None
    blend: BlendChoice

    def attach(self, recommender: Recommender, data, stage: str) -> Recommender:
        """``recommender`` (fitted on the history before the stage's cutoff) with the blend and the segment table."""
        segments = self.cold_start.table(data, stage) if self.cold_start is not None else None
        return recommender.with_parts(blend=self.blend.blend(data.tables["products"], recommender.product_ids),
                                      segments=segments)


def tune_extras(data, baseline, k: int, validation_recommender: Callable[[], Recommender], *,
                blend_trials: int = BLEND_TRIALS, seed: int = 42) -> Extras:
    """Choose the cold start and the blend on validation; ``validation_recommender()`` fits the family's best model
    on the history before the validation window (called only when the blend is tuned: ``blend_trials > 0``)."""
    cold_start = choose_cold_start(data, baseline, k)
    if blend_trials < 1:
        return Extras(cold_start, BlendChoice({"weight": 0.0}, None, None))
    return Extras(cold_start, tune_blend(data, validation_recommender(), k, blend_trials, seed))


def log_extras(extras: Extras, k: int) -> None:
    """The choices as params, their validation scores as metrics, the grids as artifacts (active run)."""
    import mlflow

    cold, blend = extras.cold_start, extras.blend
    if cold is not None:
        mlflow.log_params({"cold_start_attributes": ",".join(cold.attributes), "cold_start_strength": cold.strength,
                           "cold_start_window_days": cold.window_days or "all"})
        mlflow.log_metrics({f"val_coldsim_precision_at_{k}": cold.val_value,
                            f"baseline_val_coldsim_precision_at_{k}": cold.val_global})
        mlflow.log_text(cold.grid.to_csv(index=False), "cold_start/validation_grid.csv")
    else:
        mlflow.log_param("cold_start_attributes", "none")
    mlflow.log_params({f"blend_{name}": value for name, value in blend.params.items()})
    if blend.val_value is None:
        mlflow.set_tag("content_blend", "off (not tuned: --blend-trials 0)")
        return
    mlflow.log_metrics({f"val_blend_precision_at_{k}": blend.val_value,
                        f"val_unblended_precision_at_{k}": blend.val_unblended,
                        "val_blend_gain": blend.best_gain, "val_blend_gain_se": blend.best_gain_se})
    mlflow.set_tag("content_blend", f"weight {blend.weight:.3f}" if blend.weight > 0 else
                   f"off (no blend beat the family alone on validation by {BLEND_MIN_GAIN_SE:g} standard errors)")
    if not blend.trials.empty:
        mlflow.log_text(blend.trials.to_csv(index=False), "study/blend_trials.csv")


# --- evaluation by segment -------------------------------------------------------------------------


def _scores(relevant: Mapping[str, set], lists: Mapping[str, Sequence[str]], members: Sequence[str], k: int,
            prefix: str, population: str) -> dict[str, float]:
    subset = {c: relevant[c] for c in members}
    return {f"{prefix}{population}_precision_at_{k}": precision_at_k(subset, lists, k),
            f"{prefix}{population}_recall_at_{k}": recall_at_k(subset, lists, k)}


def segment_metrics(data, recommender: Recommender, baseline, extras: Extras | None, k: int,
                    lists: Mapping[str, Mapping[str, Sequence[str]]]) -> tuple[dict[str, float], pd.DataFrame]:
    """``(metrics, precision table)`` of the test window by segment (see the module docstring).

    ``lists``: each system's top-k lists (``"model"``, ``"popularity"``) of every test customer, as scored for the
    test metrics; the segment-popularity lists are computed here. The table has one row per population and one
    column per system (precision@k), for the figure.
    """
    relevant = data.relevant("test")
    ids = list(relevant)
    lists = {name: {c: list(v)[:k] for c, v in found.items()} for name, found in lists.items()}
    if recommender.segments is not None:
        segment_rec = segment_popularity_recommender(data, "test", recommender.segments,
                                                     baseline.recommenders["test"].popularity)
        lists["segment popularity"] = segment_rec.recommend_all(ids, k, demographics=data.demographics(ids))
    groups = cold_start_groups(ids, data.buyers_before("test"), data.described_customers)
    metrics: dict[str, float] = {}
    table = pd.DataFrame(index=list(POPULATIONS), columns=list(SYSTEMS), dtype=float)
    for name, found in lists.items():
        table.loc["all", name] = precision_at_k(relevant, found, k)
    for population, members in groups.items():
        metrics[f"test_{population}_customers"] = len(members)
        if not members:
            continue
        for name, found in lists.items():
            metrics.update(_scores(relevant, found, members, k, SYSTEMS[name], population))
            table.loc[population, name] = metrics[f"{SYSTEMS[name]}{population}_precision_at_{k}"]
    simulated = simulated_cold_lists(data, "test", extras.cold_start, k) if extras is not None else None
    if simulated is not None:
        cut, segment_found, global_found = simulated
        metrics["test_coldsim_customers"] = len(cut)
        for name, found in (("model", segment_found), ("popularity", global_found)):
            metrics.update(_scores(cut, found, list(cut), k, SYSTEMS[name], "coldsim"))
            table.loc["coldsim", name] = metrics[f"{SYSTEMS[name]}coldsim_precision_at_{k}"]
        table.loc["coldsim", "segment popularity"] = table.loc["coldsim", "model"]  # the same lists
    new = new_products(data.window_transactions("test")["product_id"].astype(str),
                       data.history_transactions("test")["product_id"].astype(str))
    metrics["test_new_items"] = len(new)
    with_new = {c: items & new for c, items in relevant.items() if items & new}
    for name, found in lists.items():
        metrics[f"{SYSTEMS[name]}new_item_hit_share"] = hit_share(relevant, found, k, new)
        if with_new:
            metrics[f"{SYSTEMS[name]}new_item_recall_at_{k}"] = recall_at_k(with_new, found, k)
    return metrics, table


def log_segment_figure(table: pd.DataFrame, k: int, label: str, counts: Mapping[str, int] | None = None) -> None:
    """``plots/precision_by_segment.png`` (bars: population x system, ``counts`` customers each) and its CSV."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow

    from pipelines.mlflow_logging import log_figure

    shown = table.dropna(how="all").rename(columns={"model": label})
    names = {"all": "all test customers", "warm": "warm", "cold": "cold start (real)",
             "coldsim": "cold start (simulated)"}
    names = {key: f"{name}\n({counts[key]:,} customers)" if counts and key in counts else name
             for key, name in names.items()}
    fig, ax = plt.subplots(figsize=(8, 4.5))
    shown.rename(index=names).plot.bar(ax=ax, rot=0)
    ax.set(ylabel=f"precision@{k} (test window)", xlabel="",
           title=f"{label}: precision@{k} by customer segment, against popularity")
    ax.legend(fontsize=8)
    fig.tight_layout()
    log_figure(fig, "plots/precision_by_segment.png")
    mlflow.log_text(table.to_csv(), "plots/precision_by_segment.csv")
