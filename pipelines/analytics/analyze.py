"""Shop analytics as one tracked MLflow run (``analyze``).

Reads the four canonical tables from ``--data-dir`` (default ``data/generated``). Computes
(``pipelines/analytics/shop.py``) the seeds' figures: total revenue, average revenue per unit, the top
category by revenue, the best-selling product by quantity, the most profitable product by revenue per unit
(among products with at least ``--min-units`` units), revenue by category and subcategory, monthly revenue
per category, and the engagement Bayes table: per category, P(purchase | more than ``--min-interactions``
interactions in the past ``--window-days`` days), counted per customer, directly and through Bayes' rule,
with counts, lift and a Wilson interval. ``--customer ID`` adds that customer's spending profile.

Logs one run in the experiment ``storefront-analytics``: the data input, params (the names: top category,
best-selling and most profitable product, the reference date), metrics (``total_revenue``,
``avg_revenue_per_unit``, ..., ``p_purchase_given_engaged_<category>``), tables (``tables/*.json`` as MLflow
tables, same content as ``tables/*.csv``) and figures (``plots/product_profitability.png``,
``plots/category_revenue_share.png``, ``plots/top_subcategories.png``, ``plots/monthly_revenue_by_category.png``,
``plots/engagement_bayes.png``). Registers nothing. Prints the headline figures.
"""

from __future__ import annotations

import argparse
import logging

HELP = "log the shop's revenue summary, the engagement Bayes table and the seeds' figures to MLflow"
DOCS = "docs/analytics.md"

logger = logging.getLogger(__name__)

FAMILY = "analytics"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pipelines.analytics import shop as sa
    from pipelines.options import whole_number

    parser.add_argument("--data-dir", default=None,
                        help="folder with the canonical tables (default: <project>/data/generated)")
    parser.add_argument("--customer", default=None, help="also log this customer's spending profile")
    parser.add_argument("--reference-date", default=None,
                        help="end of the engagement window (default: the day after the last transaction or event)")
    parser.add_argument("--window-days", type=whole_number, default=sa.DEFAULT_WINDOW_DAYS,
                        help=f"engagement window in days before the reference date (default {sa.DEFAULT_WINDOW_DAYS})")
    parser.add_argument("--min-interactions", type=whole_number, default=sa.DEFAULT_MIN_INTERACTIONS,
                        help="a customer is engaged with a category with MORE than this many events on its "
                             f"products in the window (default {sa.DEFAULT_MIN_INTERACTIONS})")
    parser.add_argument("--min-units", type=whole_number, default=sa.DEFAULT_MIN_UNITS,
                        help="units a product must have sold to compete for the most profitable product "
                             f"(default {sa.DEFAULT_MIN_UNITS})")
    parser.add_argument("--confidence", type=float, default=sa.DEFAULT_CONFIDENCE,
                        help=f"level of the Wilson intervals (default {sa.DEFAULT_CONFIDENCE})")


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in str(text).lower()).strip("_")


def table_for_mlflow(df):
    """``df`` with text columns as plain objects (MLflow's table logger selects them by the ``object`` dtype)."""
    import pandas as pd

    text = [c for c in df.columns if pd.api.types.is_string_dtype(df[c]) and df[c].dtype != object]
    return df.reset_index(drop=True).astype({c: object for c in text})


def _log_table(df, name: str) -> None:
    import mlflow

    mlflow.log_table(table_for_mlflow(df), artifact_file=f"tables/{name}.json")
    mlflow.log_text(df.to_csv(index=False), f"tables/{name}.csv")


def analyze(data_dir=None, *, customer: str | None = None, reference_date=None, window_days: int = 30,
            min_interactions: int = 3, min_units: int = 10, confidence: float = 0.95) -> dict:
    """Run the whole entry point; returns ``{"run_id", "summary", "bayes", "reference_date", "profile"}``."""
    from pathlib import Path

    import mlflow

    from pipelines.analytics import figures as figs
    from pipelines.analytics import shop as sa
    from pipelines.mlflow_logging import family_run, log_figure, log_tables_input
    from pipelines.data.tables import dataset_digest, load_tables
    from pipelines.tracking import default_data_dir

    data_dir = Path(data_dir) if data_dir else default_data_dir()
    tables = load_tables(data_dir)
    # everything that can fail on the user's input is computed before the run opens
    summary = sa.shop_summary(tables, min_units=min_units)
    bayes, reference = sa.engagement_bayes(tables, reference_date, window_days, min_interactions, confidence)
    profile = sa.customer_profile(tables, customer) if customer is not None else None
    digest = dataset_digest(tables)

    params = {"data_dir": str(data_dir), "reference_date": reference.isoformat(), "window_days": window_days,
              "min_interactions": min_interactions, "min_units": min_units, "confidence": confidence,
              "customer": customer}
    with family_run(FAMILY, "analyze", params=params) as run:
        log_tables_input(tables, data_dir, digest, names=("transactions", "events", "products"))
        head = summary.headline()
        names = {k: v for k, v in head.items() if isinstance(v, str)}
        mlflow.log_params(names)
        mlflow.log_metrics({k: float(v) for k, v in head.items() if not isinstance(v, str)})
        mlflow.log_metrics({f"revenue_share_{_slug(c)}": float(s)
                            for c, s in zip(summary.by_category["category"], summary.by_category["revenue_share"])})
        mlflow.log_metrics({f"p_purchase_given_engaged_{_slug(c)}": float(p)
                            for c, p in zip(bayes["category"], bayes["p_purchase_given_engaged"]) if p == p})
        _log_table(summary.by_category, "revenue_by_category")
        _log_table(summary.by_subcategory, "revenue_by_subcategory")
        _log_table(summary.by_product, "products")
        _log_table(summary.monthly.assign(month=summary.monthly["month"].dt.strftime("%Y-%m")), "monthly_revenue")
        _log_table(bayes, "engagement_bayes")
        mlflow.log_text(sa.engagement_bayes.__doc__ or "", "tables/engagement_bayes_definition.txt")
        log_figure(figs.product_profitability(summary.by_product), "plots/product_profitability.png")
        log_figure(figs.category_share_donut(summary.by_category), "plots/category_revenue_share.png")
        log_figure(figs.top_subcategories(summary.by_subcategory), "plots/top_subcategories.png")
        log_figure(figs.monthly_revenue(summary.monthly), "plots/monthly_revenue_by_category.png")
        log_figure(figs.engagement_bayes(bayes, min_interactions, window_days), "plots/engagement_bayes.png")
        if profile is not None:
            figures, spend = profile
            mlflow.log_dict(figures, f"customers/{_slug(customer)}/profile.json")
            _log_table(spend, f"customer_{_slug(customer)}_spend_by_category")
            mlflow.log_metrics({f"customer_{k}": float(v) for k, v in figures.items()
                                if isinstance(v, (int, float)) and not isinstance(v, bool)})
    return {"run_id": run.info.run_id, "summary": summary, "bayes": bayes, "reference_date": reference,
            "profile": profile}


def run(args: argparse.Namespace) -> int:
    out = analyze(args.data_dir, customer=args.customer, reference_date=args.reference_date,
                  window_days=args.window_days, min_interactions=args.min_interactions, min_units=args.min_units,
                  confidence=args.confidence)
    s = out["summary"]
    print(f"total revenue {s.total_revenue:,.2f} from {s.total_units:,} units ({s.avg_revenue_per_unit:,.2f} per unit); "
          f"top category {s.top_category}; best-selling product {s.best_selling_product} ({s.best_selling_units} units); "
          f"most profitable product {s.most_profitable_product} ({s.most_profitable_revenue_per_unit:,.2f} per unit)")
    bayes = out["bayes"]
    print(f"P(purchase | > {args.min_interactions} interactions in the {args.window_days} days before "
          f"{out['reference_date'].date()}), per customer:")
    for row in bayes.itertuples():
        print(f"  {row.category:<15} {row.p_purchase_given_engaged:.3f} "
              f"[{row.wilson_low:.3f}, {row.wilson_high:.3f}]  ({row.n_engaged_and_purchased}/{row.n_engaged} engaged "
              f"customers bought; P(purchase) {row.p_purchase:.3f})")
    if out["profile"] is not None:
        figures, _ = out["profile"]
        print(f"customer {figures['customer_id']}: spent {figures['total_spent']:,.2f} in {figures['n_transactions']} "
              f"purchases on {figures['distinct_purchase_days']} days; favourite category {figures['favourite_category']}")
    print(f"run {out['run_id']}")
    return 0
