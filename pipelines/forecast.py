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

HELP = "print next periods' sales forecast per category with intervals from the champion or latest SARIMA"

logger = logging.getLogger(__name__)

SHOP_MODEL = "storefront-sarima"


def add_arguments(parser) -> None:
    parser.add_argument("--horizon", type=int, default=1, help="periods ahead, 1..36 (default 1)")
    parser.add_argument("--model", default=SHOP_MODEL,
                        help=f"registered model name (default {SHOP_MODEL}) or a model URI")
    parser.add_argument("--category", action="append", default=None,
                        help="category to forecast (repeat for several; default: all the model knows)")
    parser.add_argument("--confidence", type=float, default=0.95, help="interval coverage, in (0, 1) (default 0.95)")


def resolve_model_uri(model: str) -> str:
    """The model URI that ``--model`` names (see the module docstring)."""
    from pipelines.registry import champion_or_latest

    return champion_or_latest(model, {"sarima": ("sarima",)})


def forecast(model: str = SHOP_MODEL, horizon: int = 1, categories: list[str] | None = None,
             confidence: float = 0.95):
    """``(model_uri, frame)``: the forecasts of ``horizon`` periods for the categories (all by default)."""
    import mlflow
    import pandas as pd
    from mlflow.exceptions import MlflowException

    from pipelines.errors import ConfigurationError

    if isinstance(horizon, bool) or not isinstance(horizon, int) or not 1 <= horizon <= 36:
        raise ConfigurationError(f"--horizon must be an integer from 1 to 36, got {horizon!r}")
    if not 0 < confidence < 1:
        raise ConfigurationError(f"--confidence must be strictly between 0 and 1, got {confidence!r}")
    uri = resolve_model_uri(model)
    try:
        loaded = mlflow.pyfunc.load_model(uri)
        known = list(loaded.unwrap_python_model().categories)
    except (MlflowException, OSError, AttributeError) as exc:
        raise ConfigurationError(f"--model {model!r}: cannot load a SARIMA forecaster from {uri}: {exc}") from exc
    wanted = categories or known
    try:
        frame = loaded.predict(pd.DataFrame({"category": wanted, "horizon": [horizon] * len(wanted)}),
                               params={"confidence": confidence})
    except MlflowException as exc:
        raise ConfigurationError(f"{uri}: {exc.message}") from exc
    return uri, frame


def run(args) -> int:
    uri, frame = forecast(args.model, args.horizon, args.category, args.confidence)
    print(f"model: {uri}  ({args.confidence:.0%} intervals)")
    table = frame[["category", "period", "forecast", "lower", "upper"]]
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
    return 0
