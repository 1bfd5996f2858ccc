"""Print a customer's top-k recommendations from a registered or logged recommender (``storefront recommend``).

``--model`` takes a family (``itemcf``, ``svdpp``) or ``recommender`` (whichever family won), a registered
model name (``storefront-itemcf``), or a model URI (``models:/...``, ``runs:/...``, a local path). A name
resolves to ``models:/<registered name>@champion`` when that alias exists, else to the latest model
logged by a finished run of the family's experiment (``storefront-itemcf``/``storefront-svdpp``; both for
``recommender``). Reads the tracking store only; logs and registers nothing.
"""

from __future__ import annotations

import logging

from models.recommenders.contract import K
from pipelines.families import RECOMMENDER_SLOT

HELP = "print a customer's top-k recommendations from the champion or latest recommender"
DOCS = RECOMMENDER_SLOT.docs

logger = logging.getLogger(__name__)

FAMILIES = (*RECOMMENDER_SLOT.members, RECOMMENDER_SLOT.name)


def add_arguments(parser) -> None:
    from pipelines.options import within

    parser.add_argument("--model", default="recommender",
                        help="itemcf, svdpp, recommender (default), a registered model name or a model URI")
    parser.add_argument("--customer", required=True, action="append",
                        help="customer id (repeat the option for several customers)")
    parser.add_argument("-k", "--k", type=within(K, "-k"), default=5,
                        help=f"number of recommendations, {K.low}..{K.high} (default 5)")
    parser.add_argument("--include-purchased", action="store_true",
                        help="also recommend products the customer already bought")


def resolve_model_uri(model: str) -> str:
    """The model URI that ``--model`` names (see the module docstring)."""
    from pipelines.registry import champion_or_latest

    return champion_or_latest(model, FAMILIES)


def recommend(model: str, customers: list[str], k: int = 5, exclude_purchased: bool = True):
    """``(model_uri, recommendations frame)`` for the customers."""
    import pandas as pd

    from pipelines.errors import ConfigurationError
    from pipelines.registry import load_command_model, predict_for_command

    try:
        k = K.check(k, "-k")
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    uri, loaded = load_command_model(model, FAMILIES, "a recommender")
    frame = predict_for_command(loaded, uri, pd.DataFrame({"customer_id": [str(c) for c in customers]}),
                                {"k": k, "exclude_purchased": exclude_purchased})
    return uri, frame


def run(args) -> int:
    uri, frame = recommend(args.model, args.customer, args.k, not args.include_purchased)
    print(f"model: {uri}")
    for customer, rows in frame.groupby("customer_id", sort=False):
        cold = " (unknown customer: popular products)" if (rows["reason"] == "popular").all() else ""
        print(f"\ntop {len(rows)} for customer {customer}{cold}")
        print(rows[["rank", "product_id", "score", "reason"]].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0
