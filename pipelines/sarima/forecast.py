"""Print sales forecasts with their intervals from the registered or latest SARIMA model (``storefront forecast``).

``storefront forecast --horizon 1`` answers "next period's amount per category, with a 95% interval": one
row per category and period (``category, period, forecast, lower, upper``). ``--model`` takes a registered
model name (default ``storefront-sarima``) or a model URI (``models:/...``, ``runs:/...``, a path). A name
resolves to ``models:/<name>@champion`` when that alias exists; for ``storefront-sarima`` without a
champion, to the latest model logged by a finished run of the experiment ``storefront-sarima``.
``--category`` (repeatable) limits the table; ``--confidence`` sets the interval. Reads the tracking store
only; logs and registers nothing.
"""

from __future__ import annotations

import logging

from models.sarima.contract import CONFIDENCE, HORIZON
from pipelines.families import get

HELP = "print next periods' sales forecast per category with intervals from the champion or latest SARIMA"

logger = logging.getLogger(__name__)

FAMILY = get("sarima")
DOCS = FAMILY.docs
SHOP_MODEL = FAMILY.registered_model


def add_arguments(parser) -> None:
    from pipelines.options import whole_number

    parser.add_argument("--horizon", type=whole_number, default=1,
                        help=f"periods ahead, {HORIZON.low}..{HORIZON.high} (default 1)")
    parser.add_argument("--model", default=SHOP_MODEL,
                        help=f"registered model name (default {SHOP_MODEL}) or a model URI")
    parser.add_argument("--category", action="append", default=None,
                        help="category to forecast (repeat for several; default: all the model knows)")
    parser.add_argument("--confidence", type=float, default=CONFIDENCE.default,
                        help=f"interval coverage, in (0, 1) (default {CONFIDENCE.default})")


def resolve_model_uri(model: str) -> str:
    """The model URI that ``--model`` names (see the module docstring)."""
    from pipelines.registry import champion_or_latest

    return champion_or_latest(model, (FAMILY.name,))


def forecast(model: str = SHOP_MODEL, horizon: int = 1, categories: list[str] | None = None,
             confidence: float = CONFIDENCE.default):
    """``(model_uri, frame)``: the forecasts of ``horizon`` periods for the categories (all by default)."""
    import pandas as pd

    from pipelines.errors import ConfigurationError
    from pipelines.registry import load_command_model, predict_for_command

    if isinstance(horizon, bool) or not isinstance(horizon, int) or not HORIZON.low <= horizon <= HORIZON.high:
        raise ConfigurationError(f"--horizon must be an integer from {HORIZON.low} to {HORIZON.high}, got {horizon!r}")
    try:
        confidence = CONFIDENCE.check(confidence, "--confidence")
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    uri, loaded = load_command_model(model, (FAMILY.name,), "a SARIMA forecaster")
    known = getattr(loaded.unwrap_python_model(), "categories", None)
    if known is None:
        raise ConfigurationError(f"--model {model!r}: {uri} is not a SARIMA forecaster (it lists no categories)")
    wanted = categories or list(known)
    frame = predict_for_command(loaded, uri, pd.DataFrame({"category": wanted, "horizon": [horizon] * len(wanted)}),
                                {"confidence": confidence})
    return uri, frame


def run(args) -> int:
    uri, frame = forecast(args.model, args.horizon, args.category, args.confidence)
    print(f"model: {uri}  ({args.confidence:.0%} intervals)")
    table = frame[["category", "period", "forecast", "lower", "upper"]]
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
    return 0
