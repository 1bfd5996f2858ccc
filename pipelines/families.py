"""What each model family *is*, declared once: the table every command reads.

A :class:`Family` names its MLflow experiment, its registered model, its primary metric and direction, the
entry module that trains it, the function that re-scores a registered model on a challenger's test data, its
default budgets and its documentation page. ``cli``, ``ops.main``, ``ops.promote``, ``ops.rollback``, the
registry's champion-or-latest resolution, re-scoring and the registration summary all look families up here;
adding a family means one subpackage in ``pipelines/`` and ``models/`` plus one entry in :data:`FAMILIES`
(see ``docs/architecture.md``).

The recommender *slot* is a family without an entry module of its own: ``storefront-recommender`` holds
whichever of its ``members`` (item-CF, SVD++) wins on the same test window in ``storefront main``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import ConfigurationError

PREFIX = "storefront-"


@dataclass(frozen=True)
class Family:
    """One model family (see the module docstring)."""

    name: str  # the short name users type: ``--model itemcf``; also the key of this table
    title: str  # how summaries and plots name it
    primary_metric: str  # the key of the gate and promotion metric (``test_<metric>``)
    higher_is_better: bool
    help: str  # the training command's one-line description
    about: str  # what the family answers, for experiment and registered-model descriptions
    logged_model: str  # the name its runs log their servable model under (the MLflow UI's "Models" column)
    rescorer: str  # ``module:function`` scoring a loaded model on a run's ``holdout/`` data
    docs: str  # the family's documentation page, relative to the checkout
    entry_module: str | None = None  # the training command's module (None: the recommender slot)
    command: str | None = None  # the ``storefront`` subcommand (MLproject entry point with underscores)
    n_trials: int | None = None  # default budget of the training command ...
    timeout: float | None = None  # ... and its default timeout in seconds (0 = none)
    quick_trials: int | None = None  # the budget of ``storefront main --quick``; None: not in the main job
    members: tuple[str, ...] = ()  # families whose experiments hold this family's models (the slot)
    other_models: tuple[str, ...] = ()  # more registered names the family trains on shop data

    @property
    def experiment(self) -> str:
        return PREFIX + self.name.replace("_", "-")

    @property
    def registered_model(self) -> str:
        return PREFIX + self.name.replace("_", "-")

    @property
    def experiments(self) -> tuple[str, ...]:
        """The experiments whose runs log this family's models."""
        return tuple(FAMILIES[m].experiment for m in self.members) if self.members else (self.experiment,)

    @property
    def in_main(self) -> bool:
        return self.quick_trials is not None


FAMILIES: dict[str, Family] = {family.name: family for family in (
    Family(name="itemcf", title="item-CF", primary_metric="precision_at_10", higher_is_better=True,
           help="tune item-based collaborative filtering with Optuna and log it to MLflow",
           about="What should this customer buy next, \"because you bought X\": item-based collaborative filtering on purchases and product events.",
           logged_model="itemcf-recommender",
           rescorer="pipelines.recommenders.rescore:score", docs="docs/recommenders.md",
           entry_module="pipelines.recommenders.train_itemcf", command="train-itemcf",
           n_trials=50, timeout=600, quick_trials=3),
    Family(name="svdpp", title="SVD++", primary_metric="precision_at_10", higher_is_better=True,
           help="tune SVD++ (scikit-surprise) with Optuna and log it to MLflow",
           about="What should this customer buy next: SVD++ (scikit-surprise) trained to rank, served from numpy factors.",
           logged_model="svdpp-recommender",
           rescorer="pipelines.recommenders.rescore:score", docs="docs/recommenders.md",
           entry_module="pipelines.recommenders.train_svdpp", command="train-svdpp",
           n_trials=25, timeout=100, quick_trials=2),
    Family(name="churn", title="churn", primary_metric="auc", higher_is_better=True,
           help="tune a calibrated logistic-regression churn (or purchase) model with Optuna and log it to MLflow",
           about="Who is about to stop buying (or buys next week): a calibrated logistic regression on leakage-free features at a cutoff.",
           logged_model="churn-logreg",
           rescorer="pipelines.churn.rescore:score", docs="docs/churn.md",
           entry_module="pipelines.churn.train", command="train-churn",
           n_trials=30, timeout=120, quick_trials=3, other_models=("storefront-purchase",)),
    Family(name="sarima", title="SARIMA", primary_metric="mape", higher_is_better=False,
           help="choose a SARIMA per category (stepwise AICc), score it on the last periods and log a forecasting model",
           about="How much will each category sell in the next periods: a tuned SARIMA per series, with prediction intervals.",
           logged_model="sarima-forecaster",
           rescorer="pipelines.sarima.rescore:score", docs="docs/sarima.md",
           entry_module="pipelines.sarima.train", command="train-sarima",
           n_trials=60, timeout=900, quick_trials=30),
    Family(name="segments", title="segments", primary_metric="silhouette", higher_is_better=True,
           help="segment customers with K-Means (k tuned by Optuna on silhouette) and log a servable model to MLflow",
           about="Who are our customers: K-Means segments of spending, purchase frequency and recency.",
           logged_model="segments-kmeans",
           rescorer="pipelines.segments.rescore:score", docs="docs/analytics.md",
           entry_module="pipelines.segments.train", command="train-segments", n_trials=12, timeout=300),
    Family(name="next_category", title="next category", primary_metric="auc_ovr", higher_is_better=True,
           help="tune a multinomial logistic regression for the next purchase's category with Optuna and log it "
                "to MLflow",
           about="Which category will a customer buy next: a multinomial logistic regression on their recent history.",
           logged_model="next-category-logreg",
           rescorer="pipelines.next_category.rescore:score", docs="docs/analytics.md",
           entry_module="pipelines.next_category.train", command="train-next-category", n_trials=15, timeout=300),
    Family(name="recommender", title="recommender", primary_metric="precision_at_10", higher_is_better=True,
           help="the better recommender family on the same test window",
           about="The shop's recommender: whichever of item-CF and SVD++ wins on the same test window.",
           logged_model="recommender",
           rescorer="pipelines.recommenders.rescore:score", docs="docs/recommenders.md", members=("itemcf", "svdpp")),
)}

# Experiments of steps that train nothing registrable, and what they hold.
STEP_EXPERIMENTS = {"data": PREFIX + "data", "analytics": PREFIX + "analytics"}
STEP_ABOUT = {"data": "Data generation and ingest runs: parameters, row counts, the tables as dataset inputs.",
              "analytics": "Shop analytics: revenue summary, engagement Bayes table and the seeds' figures."}

RECOMMENDER_SLOT = FAMILIES["recommender"]
MAIN_FAMILIES = tuple(f.name for f in FAMILIES.values() if f.in_main)


def get(name: str) -> Family:
    """The family called ``name``: its short name (``next_category`` or ``next-category``) or its registered name."""
    key = name.removeprefix(PREFIX).replace("-", "_")
    if key not in FAMILIES:
        raise ConfigurationError(f"unknown model family {name!r}; the families are {', '.join(FAMILIES)}")
    return FAMILIES[key]


def find(name: str) -> Family | None:
    """Like :func:`get`, or None when ``name`` is not a family."""
    try:
        return get(name)
    except ConfigurationError:
        return None


def experiment_name(key: str) -> str:
    """The MLflow experiment of a family or of a step (``data``, ``analytics``)."""
    return STEP_EXPERIMENTS.get(key) or get(key).experiment


def experiment_about(name: str) -> str:
    """The description of experiment ``name`` (empty for an experiment that is not the project's)."""
    for key, experiment in STEP_EXPERIMENTS.items():
        if experiment == name:
            return STEP_ABOUT[key]
    family = find(name)
    return family.about if family is not None and family.experiment == name else ""


def registered_name(model: str) -> str:
    """``--model`` as a registered model name: a family's short name means its model; anything else is as given."""
    family = find(model)
    return family.registered_model if family is not None and not model.startswith(PREFIX) else model


def shop_model_names() -> frozenset[str]:
    """Every registered name the shop's own models use (bring-your-own models never register over them)."""
    names = {f.registered_model for f in FAMILIES.values()}
    for family in FAMILIES.values():
        names.update(family.other_models)
    return frozenset(names)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "data"


def own_model_name(family: str, source: str | Path, given: str | None, option: str = "--registered-model") -> str:
    """The registered name of a model trained on a user's own file (``train-churn --table``, ``train-sarima
    --series``): ``given``, or ``storefront-<family>-<file stem>``; never one of :func:`shop_model_names`."""
    name = given or f"{get(family).registered_model}-{slug(Path(source).stem)}"
    if name in shop_model_names():
        raise ConfigurationError(f"{option} {name!r} is one of the shop's own models; a model of your own file "
                                 "needs another name")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", name):
        raise ConfigurationError(f"{option} {name!r}: use letters, digits, '-', '_' and '.'")
    return name
