"""Training pieces shared by the recommender families (item-CF and SVD++); nothing here is family-specific.

* Splits (DESIGN.md, "Splits"): the test window is the last ``test_days`` days of purchases (cutoff T);
  the validation window is the ``val_days`` before T. Tuning fits on the history before the validation
  cutoff and scores on the validation window, so it never sees the test window; the final model is refit
  on all history before T and scored once on the test window. :class:`RecommenderData` holds both stages.
* Relevant items: what a customer bought in the window and had not bought before it (recommendations
  exclude purchased products by default, so a repeat purchase cannot be hit and is not counted).
* Evaluation: a fitted :class:`models.recommenders.engine.Recommender`'s top-k for every customer with relevant
  items, scored by :func:`evaluation.metrics.evaluate_ranking` (``precision_at_10``, ..., ``coverage``,
  ``personalization``). Customers unknown at the cutoff get what they get when served with their demographics
  from the customers table: their segment's products, or the popular ones. The cold start, the content blend
  and the metrics by customer segment are :mod:`pipelines.recommenders.hybrid`.
* Popularity baseline: the same engine with :class:`models.recommenders.popularity.PopularityScorer`; its window
  (recent days counted) is chosen on the validation window. Its ``baseline_test_*`` metrics go to the study.
* :func:`finish_training`: test metrics, figures (precision@k for k = 1..20 against popularity,
  per-category coverage), the pyfunc model (``models/recommenders/pyfunc.py`` with one ``.npz``), the
  round-trip check of the logged model, and the :class:`pipelines.mlflow_logging.TrainResult`.
* :func:`register_and_report`: the commands' registration step (the gate of :mod:`pipelines.registry`) and
  their one-line summary.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Mapping, Sequence

import mlflow
import numpy as np
import pandas as pd

from evaluation.metrics import evaluate_ranking, precision_at_k
from evaluation.splits import STAGES, SplitError, Windows, recommender_windows
from models.recommenders.coldstart import ATTRIBUTES, age_value, table_demographics, text_value
from models.recommenders.interactions import InteractionLog
from models.recommenders.popularity import PopularityRecommender
from models.recommenders.contract import CONTRACT, PYFUNC_FILE
from models.recommenders.engine import Recommender
from pipelines import families
from pipelines.errors import ConfigurationError, DataValidationError
from pipelines.recommenders.options import DEFAULT_TEST_DAYS, DEFAULT_VAL_DAYS
from pipelines.mlflow_logging import TrainResult, check_round_trip, log_figure, log_pyfunc_model, log_tables_input
from pipelines.data.tables import Tables, dataset_digest, load_tables

logger = logging.getLogger(__name__)

MODEL_REQUIREMENTS = ("numpy", "pandas", "scipy")
POPULARITY_WINDOWS = (30, 90, 365, None)  # candidate windows (days; None = all history) for the baseline
CURVE_KS = tuple(range(1, 21))


@dataclass
class RecommenderData:
    """The shop tables with the validation and test windows of one training run."""

    tables: Tables
    source: str
    digest: str
    windows: Windows
    test_days: int
    val_days: int
    _logs: dict = field(default_factory=dict, repr=False)
    _relevant: dict = field(default_factory=dict, repr=False)

    @property
    def val_cutoff(self) -> pd.Timestamp:
        return self.windows.val_cutoff

    @property
    def test_cutoff(self) -> pd.Timestamp:
        return self.windows.test_cutoff

    @property
    def test_end(self) -> pd.Timestamp:
        return self.windows.test_end

    @cached_property
    def catalog(self) -> np.ndarray:
        """Every product id, sorted: the columns of all matrices and the catalogue of ``coverage``."""
        return np.sort(self.tables["products"]["product_id"].astype(str).unique())

    def bounds(self, stage: str) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
        """``(fit_before, window_start, window_end)`` of ``stage`` (:meth:`evaluation.splits.Windows.bounds`)."""
        return self.windows.bounds(stage)

    def log(self, stage: str) -> InteractionLog:
        """Purchases and events before the stage's cutoff, indexed (cached). The frames are indexed once, at the
        latest cutoff; earlier stages' logs are derived from that one (:meth:`InteractionLog.before`)."""
        if stage not in self._logs:
            latest = max(STAGES, key=lambda s: self.bounds(s)[0])
            if latest not in self._logs:
                self._logs[latest] = InteractionLog.from_frames(
                    self.tables["transactions"], self.tables["events"], reference_date=self.bounds(latest)[0],
                    product_ids=self.catalog)
            if stage != latest:
                self._logs[stage] = self._logs[latest].before(self.bounds(stage)[0])
        return self._logs[stage]

    def window_transactions(self, stage: str) -> pd.DataFrame:
        _, start, end = self.bounds(stage)
        tx = self.tables["transactions"]
        return tx[(tx["purchase_date"] >= start) & (tx["purchase_date"] < end)]

    def history_transactions(self, stage: str) -> pd.DataFrame:
        tx = self.tables["transactions"]
        return tx[tx["purchase_date"] < self.bounds(stage)[0]]

    @property
    def customers(self) -> pd.DataFrame:
        return self.tables["customers"]

    @cached_property
    def _demographics(self) -> dict[str, dict[str, object]]:
        values = table_demographics(self.customers)
        ids = self.customers["customer_id"].astype(str).drop_duplicates().tolist()
        return {a: dict(zip(ids, column)) for a, column in values.items()}

    def demographics(self, customer_ids: Sequence[str]) -> dict[str, list]:
        """The customers' demographic values from the customers table, as a request would send them (None: unknown)."""
        return {a: [column.get(str(c)) for c in customer_ids] for a, column in self._demographics.items()}

    @cached_property
    def described_customers(self) -> frozenset[str]:
        """The customers with at least one known demographic value (:mod:`models.recommenders.coldstart` rules)."""
        described = set()
        for attribute, column in self._demographics.items():
            read = age_value if attribute == "age" else text_value
            described.update(c for c, v in column.items() if read(v) is not None)
        return frozenset(described)

    def buyers_before(self, stage: str) -> set[str]:
        """The customers with a purchase before the stage's cutoff."""
        return set(self.history_transactions(stage)["customer_id"].astype(str))

    def relevant(self, stage: str) -> dict[str, set[str]]:
        """Products each customer bought in the stage's window and had not bought before it (cached)."""
        if stage not in self._relevant:
            self._relevant[stage] = relevant_items(self.window_transactions(stage), self.history_transactions(stage))
        return self._relevant[stage]


def relevant_items(window: pd.DataFrame, history: pd.DataFrame | None = None) -> dict[str, set[str]]:
    """``{customer_id: {product_id, ...}}`` bought in ``window``, minus pairs already bought in ``history``."""
    pairs = window[["customer_id", "product_id"]].astype(str).drop_duplicates()
    if history is not None and len(history):
        seen = history[["customer_id", "product_id"]].astype(str).drop_duplicates()
        merged = pairs.merge(seen, how="left", on=["customer_id", "product_id"], indicator=True)
        pairs = merged.loc[merged["_merge"] == "left_only", ["customer_id", "product_id"]]
    return {customer: set(items) for customer, items in pairs.groupby("customer_id", sort=True)["product_id"]}


def load_recommender_data(data_dir: str | Path, test_days: int = DEFAULT_TEST_DAYS,
                          val_days: int = DEFAULT_VAL_DAYS) -> RecommenderData:
    """Load the canonical tables and place the validation and test cutoffs (see the module docstring)."""
    for name, value in (("test_days", test_days), ("val_days", val_days)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(f"{name} must be a positive number of days, got {value!r}")
    tables = load_tables(data_dir)
    tx = tables["transactions"]
    if tx.empty:
        raise DataValidationError(f"{data_dir}: transactions is empty")
    try:
        windows = recommender_windows(tx["purchase_date"], test_days, val_days)
    except SplitError as exc:
        raise ConfigurationError(f"test_days={test_days}, val_days={val_days} do not fit the purchases: {exc}") from exc
    data = RecommenderData(tables=tables, source=str(data_dir), digest=dataset_digest(tables), windows=windows,
                           test_days=test_days, val_days=val_days)
    for stage in STAGES:
        if not data.relevant(stage):
            fit_before, start, end = data.bounds(stage)
            raise DataValidationError(
                f"{data_dir}: no customer bought a new product in the {stage} window {start.date()} to {end.date()}; "
                "use a longer window (test_days/val_days) or more data")
        if data.history_transactions(stage).empty:
            raise DataValidationError(f"{data_dir}: no purchases before the {stage} cutoff {data.bounds(stage)[0]}")
    logger.info("recommender data %s: validation %s..%s (%d customers), test %s..%s (%d customers)",
                data.digest, windows.val_cutoff.date(), windows.test_cutoff.date(), len(data.relevant("validation")),
                windows.test_cutoff.date(), windows.test_end.date(), len(data.relevant("test")))
    return data


# --- evaluation ----------------------------------------------------------------------------------


def top_k_lists(recommender: Recommender, customer_ids: Sequence[str], k: int,
                exclude_purchased: bool = True) -> dict[str, list[str]]:
    """Each customer's top-k product ids, computed for all customers at once."""
    return recommender.recommend_all(customer_ids, k, exclude_purchased)


def evaluate(recommender: Recommender, relevant: Mapping[str, set[str]], k: int, catalog: Sequence[str],
             recommended: Mapping[str, Sequence[str]] | None = None) -> dict[str, float]:
    """The ranking metrics of ``recommender``'s top-k on ``relevant`` (``precision_at_<k>``, ..., ``coverage``)."""
    if recommended is None:
        recommended = top_k_lists(recommender, list(relevant), k)
    return evaluate_ranking(relevant, recommended, k, catalog)


def popularity_recommender(data: RecommenderData, stage: str, window_days: int | None) -> Recommender:
    """The popularity baseline fitted on the stage's history (served through the same engine)."""
    log = data.log(stage)
    model = PopularityRecommender(window_days).fit(data.history_transactions(stage), log.product_ids,
                                                   reference_date=data.bounds(stage)[0])
    return Recommender(model.scorer(len(log.customer_ids)), log.customer_ids, log.product_ids, log.purchased(),
                       model.popularity_)


def choose_popularity_window(data: RecommenderData, k: int,
                             candidates: Sequence[int | None] = POPULARITY_WINDOWS) -> int | None:
    """The popularity window with the best validation precision@k (the baseline is tuned too, fairly)."""
    relevant = data.relevant("validation")
    best, best_value = None, -1.0
    for window in candidates:
        value = precision_score(popularity_recommender(data, "validation", window), relevant, k)
        logger.info("popularity window %s days: validation precision@%d %.4f", window or "all", k, value)
        if value > best_value:
            best, best_value = window, value
    return best


@dataclass
class Baseline:
    """The popularity baseline of a run: its window, its test metrics, and its popularity per stage."""

    window_days: int | None
    test_metrics: dict[str, float]
    recommenders: dict[str, Recommender]

    def popularity(self, stage: str) -> np.ndarray:
        return self.recommenders[stage].popularity


def popularity_baseline(data: RecommenderData, k: int) -> Baseline:
    """Choose the window on validation, then score the baseline once on the test window."""
    window = choose_popularity_window(data, k)
    recommenders = {stage: popularity_recommender(data, stage, window) for stage in STAGES}
    metrics = evaluate(recommenders["test"], data.relevant("test"), k, data.catalog)
    logger.info("popularity baseline (window %s days): test precision@%d %.4f", window or "all", k,
                metrics[f"precision_at_{k}"])
    return Baseline(window, metrics, recommenders)


def validation_score(recommender: Recommender, data: RecommenderData, k: int) -> float:
    """Validation precision@k: the tuning objective's score (no MLflow calls)."""
    return precision_score(recommender, data.relevant("validation"), k)


def precision_score(recommender: Recommender, relevant: Mapping[str, set[str]], k: int) -> float:
    """precision@k of ``recommender``'s top-k on ``relevant`` (a trial's score: only the metric it needs)."""
    return precision_at_k(relevant, top_k_lists(recommender, list(relevant), k), k)


# --- figures -------------------------------------------------------------------------------------


def precision_curve(relevant: Mapping[str, set[str]], recommended: Mapping[str, Sequence[str]],
                    ks: Sequence[int] = CURVE_KS) -> list[float]:
    return [precision_at_k(relevant, recommended, k) for k in ks]


def category_coverage(recommended: Mapping[str, Sequence[str]], products: pd.DataFrame, k: int) -> pd.Series:
    """Share of each category's products recommended to at least one customer in a top-k."""
    shown = {item for items in recommended.values() for item in list(items)[:k]}
    frame = products.assign(product_id=products["product_id"].astype(str))
    return frame.groupby("category")["product_id"].agg(lambda ids: float(np.mean([p in shown for p in ids])))


def log_ranking_figures(relevant: Mapping[str, set[str]], model_lists: Mapping[str, Sequence[str]],
                        baseline_lists: Mapping[str, Sequence[str]], products: pd.DataFrame, k: int,
                        label: str) -> dict[str, list[float]]:
    """Log ``plots/precision_at_k.png`` and ``plots/category_coverage.png``; return the curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {label: precision_curve(relevant, model_lists), "popularity": precision_curve(relevant, baseline_lists)}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, values in curves.items():
        ax.plot(CURVE_KS, values, marker="o", markersize=3, label=name)
    ax.axvline(k, color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="k", ylabel="precision@k (test window)", title=f"{label} vs popularity: precision@k")
    ax.set_xticks(CURVE_KS)
    ax.legend()
    fig.tight_layout()
    log_figure(fig, "plots/precision_at_k.png")

    coverage = pd.DataFrame({label: category_coverage(model_lists, products, k),
                             "popularity": category_coverage(baseline_lists, products, k)})
    fig, ax = plt.subplots(figsize=(7, 4.5))
    coverage.plot.bar(ax=ax, rot=20)
    ax.set(ylabel=f"share of products in some top-{k}", xlabel="",
           title=f"catalogue coverage per category (top-{k}, test customers)", ylim=(0, 1.05))
    fig.tight_layout()
    log_figure(fig, "plots/category_coverage.png")
    mlflow.log_text(coverage.to_csv(), "plots/category_coverage.csv")
    return curves


# --- model logging and the round trip -------------------------------------------------------------


def recommendations_table(recommender: Recommender, customer_ids: Sequence[str], k: int,
                          exclude_purchased: bool = True, demographics: Mapping[str, Sequence] | None = None
                          ) -> pd.DataFrame:
    """``customer_id, rank, product_id, score`` from the vectorised all-customer path (training's view)."""
    customer_ids = [str(c) for c in customer_ids]
    lists = recommender.top_k_all(customer_ids, k, exclude_purchased, demographics)
    frames = [pd.DataFrame({"customer_id": customer, "rank": np.arange(1, len(items) + 1),
                            "product_id": recommender.product_ids[items], "score": scores})
              for customer, (items, scores) in zip(customer_ids, lists)]
    return pd.concat(frames, ignore_index=True)


def request_frame(customer_ids: Sequence[str], demographics: Mapping[str, Sequence] | None = None) -> pd.DataFrame:
    """Request rows as a client sends them: ``customer_id`` and the demographic columns given (age as a nullable
    integer, texts as strings or None)."""
    frame = pd.DataFrame({"customer_id": [str(c) for c in customer_ids]})
    for attribute in ATTRIBUTES:
        if demographics and attribute in demographics:
            values = list(demographics[attribute])
            if attribute == "age":
                frame[attribute] = pd.array([age_value(v) for v in values], dtype="Int64")
            else:
                frame[attribute] = pd.Series([text_value(v) for v in values], dtype=object)
    return frame


def compare_recommendations(expected: pd.DataFrame, actual: pd.DataFrame, rtol: float = 1e-9) -> list[str]:
    """Differences between two recommendation tables (empty when they agree).

    Rank by rank the scores must agree within ``rtol``; the products must be equal, except that two
    products with the same score (within ``rtol``) may swap places.
    """
    problems = []
    columns = ["customer_id", "rank", "product_id", "score"]
    for name, frame in (("expected", expected), ("actual", actual)):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            return [f"{name} lacks column(s) {missing}"]
    left = expected[columns].astype({"customer_id": str, "product_id": str, "rank": int})
    right = actual[columns].astype({"customer_id": str, "product_id": str, "rank": int})
    merged = left.merge(right, on=["customer_id", "rank"], how="outer", suffixes=("_expected", "_actual"),
                        indicator="side")
    lonely = merged[merged["side"] != "both"]
    for row in lonely.head(5).itertuples():
        where = "expected" if row.side == "left_only" else "actual"
        problems.append(f"customer {row.customer_id} rank {row.rank}: only in {where}")
    both = merged[merged["side"] == "both"]
    close = np.isclose(both["score_expected"], both["score_actual"], rtol=rtol, atol=1e-12)
    for row in both[~close].head(5).itertuples():
        problems.append(f"customer {row.customer_id} rank {row.rank}: "
                        f"score {row.score_expected!r} != {row.score_actual!r}")
    differ = both[close & (both["product_id_expected"] != both["product_id_actual"])]
    for row in differ.itertuples():
        # A swap among tied scores is fine: the actual product must have the same score in the expected list.
        same_customer = left[left["customer_id"] == row.customer_id]
        tied = same_customer[np.isclose(same_customer["score"], row.score_expected, rtol=rtol, atol=1e-12)]
        if row.product_id_actual not in set(tied["product_id"]):
            problems.append(f"customer {row.customer_id} rank {row.rank}: product {row.product_id_actual} "
                            f"!= {row.product_id_expected}")
    return problems


def log_recommender_model(recommender: Recommender, example_customers: Sequence[str] | pd.DataFrame, k: int = 10,
                          name: str = "recommender"):
    """Log ``recommender`` as the pyfunc model ``name`` of the active run; return the ``ModelInfo``.

    ``example_customers``: the input example's ids, or its request rows (:func:`request_frame`).

    Artifacts: one compressed ``.npz`` (``Recommender.save``). Signature: the contract
    (:data:`models.recommenders.contract.CONTRACT`), with ``k`` defaulting to the ``k`` the model was tuned for.
    Requirements: numpy, pandas, scipy (never the training libraries).
    """
    with tempfile.TemporaryDirectory(prefix="recommender-") as tmp:
        path = recommender.save(Path(tmp) / "recommender.npz")
        size = path.stat().st_size
        info = log_pyfunc_model(
            PYFUNC_FILE, name=name, artifacts={"recommender": str(path)},
            input_example=example_customers if isinstance(example_customers, pd.DataFrame)
            else request_frame(example_customers),
            requirements=MODEL_REQUIREMENTS, signature=CONTRACT.signature(defaults={"k": int(k)}),
        )
    mlflow.log_metric("model_artifact_bytes", size)
    logger.info("logged %s model %s (%d KB artifact)", recommender.kind, info.model_uri, size // 1024)
    return info


# --- the end of a training run ------------------------------------------------------------------


def round_trip_requests(data: RecommenderData, recommender: Recommender, n: int = 50) -> pd.DataFrame:
    """Request rows: test customers known to the model (up to ``n``, with their demographics, which the model must
    ignore), an id it has never seen without demographics (popular) and, when the customers table describes
    someone, one with the demographics of the first described customer (their segment)."""
    known = [c for c in data.relevant("test") if recommender.customer_index(c) is not None][:n]
    described = sorted(data.described_customers)[:1]
    unknown = ["__unknown_customer__", *(["__unknown_customer_with_demographics__"] if described else [])]
    while any(recommender.customer_index(c) is not None for c in unknown):
        unknown = [c + "_" for c in unknown]
    values = data.demographics([*known, *described])
    values = {a: [*column[:len(known)], None, *column[len(known):]] for a, column in values.items()}
    return request_frame([*known, *unknown], values)


def log_data_inputs(data: RecommenderData) -> None:
    """The tables the run read, as MLflow dataset inputs, and the split as params."""
    log_tables_input(data.tables, data.source, data.digest, names=("transactions", "events", "products"))
    mlflow.log_params({"val_cutoff": data.val_cutoff.isoformat(), "test_cutoff": data.test_cutoff.isoformat(),
                       "test_end": data.test_end.isoformat(), "test_days": data.test_days, "val_days": data.val_days})


def log_test_data(data: RecommenderData, family: str, k: int) -> None:
    """The test window as ``holdout/`` (requests and relevant pairs), so a champion can be re-scored on it."""
    from pipelines.rescoring import log_holdout

    relevant = data.relevant("test")
    requests = request_frame(list(relevant), data.demographics(list(relevant)))
    truth = pd.DataFrame([(c, p) for c, items in relevant.items() for p in sorted(items)],
                         columns=["customer_id", "product_id"])
    log_holdout(requests, truth, {"family": family, "metric": f"precision_at_{k}", "k": k,
                                  "exclude_purchased": True, "test_cutoff": data.test_cutoff.isoformat(),
                                  "test_end": data.test_end.isoformat(), "data_digest": data.digest})


def finish_training(*, family: str, label: str, run_id: str, recommender: Recommender, data: RecommenderData,
                    baseline: Baseline, k: int, extras=None,
                    extra_metrics: Mapping[str, float] | None = None) -> TrainResult:
    """Score the final model once on the test window, log metrics, figures and the model, check the round trip.

    ``recommender`` must be fitted on the history before the test cutoff (``data.log("test")``); ``extras`` (a
    :class:`pipelines.recommenders.hybrid.Extras` chosen on validation) adds the cold start and the content blend
    and the metrics by customer segment. Call it inside the family's parent run
    (:func:`pipelines.mlflow_logging.family_run`), after the study.
    """
    from models.recommenders.coldstart import request_demographics
    from pipelines.recommenders import hybrid

    if extras is not None:
        recommender = extras.attach(recommender, data, "test")
        hybrid.log_extras(extras, k)
    relevant, catalog = data.relevant("test"), data.catalog
    depth = max(k, max(CURVE_KS))
    ids = list(relevant)
    model_lists = recommender.recommend_all(ids, depth, demographics=data.demographics(ids))
    baseline_lists = top_k_lists(baseline.recommenders["test"], ids, depth)
    metrics = evaluate(recommender, relevant, k, catalog, {c: v[:k] for c, v in model_lists.items()})
    mlflow.log_metrics({f"test_{name}": value for name, value in {**metrics, **(extra_metrics or {})}.items()})
    mlflow.log_metric("test_customers", len(relevant))
    log_ranking_figures(relevant, model_lists, baseline_lists, data.tables["products"], k, label)
    by_segment, precision_table = hybrid.segment_metrics(data, recommender, baseline, extras, k,
                                                         {"model": model_lists, "popularity": baseline_lists})
    mlflow.log_metrics(by_segment)
    counts = {"all": len(relevant), **{population: int(by_segment[f"test_{population}_customers"])
                                       for population in ("warm", "cold", "coldsim")
                                       if f"test_{population}_customers" in by_segment}}
    hybrid.log_segment_figure(precision_table, k, label, counts)

    log_test_data(data, family, k)
    requests = round_trip_requests(data, recommender)
    info = log_recommender_model(recommender, requests.iloc[[0, 1, len(requests) - 1]].reset_index(drop=True), k,
                                 families.get(family).logged_model)
    expected = recommendations_table(recommender, requests["customer_id"], k,
                                     demographics=request_demographics(requests))
    check_round_trip(info.model_uri, requests, expected, compare_recommendations,
                     params={"k": int(k), "exclude_purchased": True})
    # What training computed for those customers, for anyone to compare a served model with.
    mlflow.log_text(expected.to_csv(index=False), "round_trip/expected_top_k.csv")

    primary = f"precision_at_{k}"
    result = TrainResult(
        family=family, run_id=run_id, model_uri=info.model_uri, primary_metric=primary,
        test_value=metrics[primary], baseline_value=baseline.test_metrics[primary], higher_is_better=True,
        data_digest=data.digest, extra={"test_metrics": metrics, "baseline_test_metrics": baseline.test_metrics,
                                        "segment_metrics": by_segment, "model_id": getattr(info, "model_id", None)},
        split=(f"tuning fits on the history before {data.val_cutoff.date()} and scores the validation window "
               f"{data.val_cutoff.date()} to {data.test_cutoff.date()}; the winner is refit on all history before "
               f"{data.test_cutoff.date()} and scored once on the test window {data.test_cutoff.date()} to "
               f"{data.test_end.date()}"),
        baseline=f"popularity ({f'last {baseline.window_days} days' if baseline.window_days else 'all history'})",
    )
    logger.info("%s: test %s %.4f vs popularity %.4f (%s)", label, primary, result.test_value,
                result.baseline_value, info.model_uri)
    return result


def summary_line(result: TrainResult, label: str, verdict: str, detail: str = "") -> str:
    """A recommender command's closing line: the test metric, the baseline, the registration verdict, the run."""
    detail = f", {detail}" if detail else ""
    return (f"{label}: test {result.primary_metric} {result.test_value:.4f} "
            f"(popularity {result.baseline_value:.4f}){detail}; {verdict}; run {result.run_id}")
