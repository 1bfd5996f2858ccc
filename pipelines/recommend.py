"""Print a customer's top-k recommendations from a registered or logged recommender (``storefront recommend``).

``--model`` takes a family (``itemcf``, ``svdpp``) or ``recommender`` (whichever family won), a registered
model name (``storefront-itemcf``), or a model URI (``models:/...``, ``runs:/...``, a local path). A name
resolves to ``models:/<registered name>@champion`` when that alias exists, else to the latest model
logged by a finished run of the family's experiment (``storefront-itemcf``/``storefront-svdpp``; both for
``recommender``). Reads the tracking store only; logs and registers nothing.
"""

from __future__ import annotations

import logging

HELP = "print a customer's top-k recommendations from the champion or latest recommender"

logger = logging.getLogger(__name__)

FAMILIES = {"itemcf": ("itemcf",), "svdpp": ("svdpp",), "recommender": ("itemcf", "svdpp")}


def add_arguments(parser) -> None:
    parser.add_argument("--model", default="recommender",
                        help="itemcf, svdpp, recommender (default), a registered model name or a model URI")
    parser.add_argument("--customer", required=True, action="append",
                        help="customer id (repeat the option for several customers)")
    parser.add_argument("-k", "--k", type=int, default=5, help="number of recommendations, 1..100 (default 5)")
    parser.add_argument("--include-purchased", action="store_true",
                        help="also recommend products the customer already bought")


def resolve_model_uri(model: str) -> str:
    """The model URI that ``--model`` names (see the module docstring)."""
    from pipelines.registry import champion_or_latest

    return champion_or_latest(model, FAMILIES)


def recommend(model: str, customers: list[str], k: int = 5, exclude_purchased: bool = True):
    """``(model_uri, recommendations frame)`` for the customers."""
    import mlflow
    import pandas as pd
    from mlflow.exceptions import MlflowException

    from pipelines.errors import ConfigurationError

    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 100:
        raise ConfigurationError(f"-k must be an integer from 1 to 100, got {k!r}")
    uri = resolve_model_uri(model)
    try:
        loaded = mlflow.pyfunc.load_model(uri)
    except (MlflowException, OSError) as exc:
        raise ConfigurationError(f"--model {model!r}: cannot load {uri}: {exc}") from exc
    try:
        frame = loaded.predict(pd.DataFrame({"customer_id": [str(c) for c in customers]}),
                               params={"k": k, "exclude_purchased": exclude_purchased})
    except MlflowException as exc:
        raise ConfigurationError(f"{uri}: {exc.message}") from exc
    return uri, frame


def run(args) -> int:
    uri, frame = recommend(args.model, args.customer, args.k, not args.include_purchased)
    print(f"model: {uri}")
    for customer, rows in frame.groupby("customer_id", sort=False):
        cold = " (unknown customer: popular products)" if (rows["reason"] == "popular").all() else ""
        print(f"\ntop {len(rows)} for customer {customer}{cold}")
        print(rows[["rank", "product_id", "score", "reason"]].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0
