"""Shop analytics as pure functions of the canonical tables (no MLflow): the seeds' summary figures and the
engagement Bayes table. ``pipelines/analytics/analyze.py`` logs what these return; ``pipelines/analytics/figures.py``
draws them.

* :func:`shop_summary`: total revenue, average revenue per unit, top category by revenue, best-selling
  product by quantity, most profitable product by revenue per unit (among products with at least
  ``min_units`` units sold, so that one expensive sale does not win), revenue by category and subcategory,
  revenue per product and monthly revenue per category.
* :func:`customer_profile`: one customer's spending profile (totals, dates, spend per category).
* :func:`engagement_bayes`: ``P(purchase | more than 3 interactions in the past 30 days)`` per category,
  directly and through Bayes' rule, with counts and a Wilson interval (see its docstring for the
  definition and for the seed's mistake).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from pipelines.errors import ConfigurationError, DataValidationError

logger = logging.getLogger(__name__)

DEFAULT_MIN_UNITS = 10
DEFAULT_WINDOW_DAYS = 30
DEFAULT_MIN_INTERACTIONS = 3
DEFAULT_CONFIDENCE = 0.95


@dataclass
class ShopSummary:
    total_revenue: float
    total_units: int
    n_transactions: int
    n_customers: int  # customers with at least one purchase
    avg_revenue_per_unit: float
    top_category: str
    top_category_revenue: float
    best_selling_product: str
    best_selling_units: int
    most_profitable_product: str
    most_profitable_revenue_per_unit: float
    by_category: pd.DataFrame  # category, revenue, units, n_transactions, revenue_share, revenue_per_unit
    by_subcategory: pd.DataFrame  # category, subcategory, revenue, units, revenue_share
    by_product: pd.DataFrame  # product_id, product_name, category, units, revenue, revenue_per_unit
    monthly: pd.DataFrame  # month (first day), category, revenue

    def headline(self) -> dict:
        """The scalar figures, keyed as logged (numbers as metrics, names as params)."""
        return {
            "total_revenue": self.total_revenue, "total_units": self.total_units,
            "n_transactions": self.n_transactions, "n_buying_customers": self.n_customers,
            "avg_revenue_per_unit": self.avg_revenue_per_unit, "top_category": self.top_category,
            "top_category_revenue": self.top_category_revenue, "best_selling_product": self.best_selling_product,
            "best_selling_units": self.best_selling_units, "most_profitable_product": self.most_profitable_product,
            "most_profitable_revenue_per_unit": self.most_profitable_revenue_per_unit,
        }


def _transactions_with_products(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    tx = tables["transactions"]
    if tx.empty:
        raise DataValidationError("transactions: the table has no rows, nothing to analyse")
    products = tables["products"]
    extra = [c for c in ("product_name", "subcategory") if c in products.columns]
    merged = tx.merge(products[["product_id", *extra]], on="product_id", how="left")
    for col in ("product_name", "subcategory"):
        if col not in merged.columns:
            merged[col] = merged["product_id"] if col == "product_name" else "(none)"
        merged[col] = merged[col].fillna("(unknown)").astype(str)
    return merged


def shop_summary(tables: Mapping[str, pd.DataFrame], min_units: int = DEFAULT_MIN_UNITS) -> ShopSummary:
    """The seeds' revenue figures (module docstring). Ties are broken by id/name order, so it is deterministic."""
    if min_units < 1:
        raise ConfigurationError(f"min_units must be at least 1, got {min_units}")
    tx = _transactions_with_products(tables)
    total_revenue = float(tx["amount"].sum())
    total_units = int(tx["quantity"].sum())
    if total_units <= 0:
        raise DataValidationError("transactions: column 'quantity' sums to zero or less, no revenue per unit")

    by_category = (tx.groupby("category", sort=True)
                   .agg(revenue=("amount", "sum"), units=("quantity", "sum"), n_transactions=("amount", "size"))
                   .reset_index())
    by_category["revenue_share"] = by_category["revenue"] / total_revenue
    by_category["revenue_per_unit"] = by_category["revenue"] / by_category["units"]
    by_category = by_category.sort_values(["revenue", "category"], ascending=[False, True]).reset_index(drop=True)

    by_sub = (tx.groupby(["category", "subcategory"], sort=True)
              .agg(revenue=("amount", "sum"), units=("quantity", "sum")).reset_index())
    by_sub["revenue_share"] = by_sub["revenue"] / total_revenue
    by_sub = by_sub.sort_values(["revenue", "category", "subcategory"], ascending=[False, True, True])
    by_sub = by_sub.reset_index(drop=True)

    by_product = (tx.groupby(["product_id", "product_name", "category"], sort=True)
                  .agg(units=("quantity", "sum"), revenue=("amount", "sum")).reset_index())
    by_product["revenue_per_unit"] = by_product["revenue"] / by_product["units"]

    best = by_product.sort_values(["units", "product_id"], ascending=[False, True]).iloc[0]
    eligible = by_product[by_product["units"] >= min_units]
    if eligible.empty:
        logger.info("no product sold %d units: the most profitable product is chosen among all", min_units)
        eligible = by_product
    profitable = eligible.sort_values(["revenue_per_unit", "product_id"], ascending=[False, True]).iloc[0]

    month = tx["purchase_date"].dt.to_period("M").dt.to_timestamp()
    monthly = (tx.assign(month=month).groupby(["month", "category"], sort=True)["amount"].sum()
               .rename("revenue").reset_index())

    return ShopSummary(
        total_revenue=total_revenue, total_units=total_units, n_transactions=len(tx),
        n_customers=int(tx["customer_id"].nunique()), avg_revenue_per_unit=total_revenue / total_units,
        top_category=str(by_category["category"].iloc[0]), top_category_revenue=float(by_category["revenue"].iloc[0]),
        best_selling_product=str(best["product_id"]), best_selling_units=int(best["units"]),
        most_profitable_product=str(profitable["product_id"]),
        most_profitable_revenue_per_unit=float(profitable["revenue_per_unit"]),
        by_category=by_category, by_subcategory=by_sub, by_product=by_product, monthly=monthly,
    )


def customer_profile(tables: Mapping[str, pd.DataFrame], customer_id: str) -> tuple[dict, pd.DataFrame]:
    """One customer's spending profile: ``(figures, spend per category)``.

    Raises :class:`DataValidationError` naming the id when the customer is in neither the customers nor the
    transactions table. A known customer without purchases gets zeros.
    """
    customer_id = str(customer_id)
    tx = tables["transactions"]
    mine = tx[tx["customer_id"] == customer_id]
    known = customer_id in set(tables["customers"]["customer_id"]) or not mine.empty
    if not known:
        raise DataValidationError(f"customer {customer_id!r} is not in the customers or transactions table")
    spend = (mine.groupby("category", sort=True).agg(revenue=("amount", "sum"), units=("quantity", "sum"),
                                                     n_transactions=("amount", "size")).reset_index())
    total = float(mine["amount"].sum())
    spend["share"] = spend["revenue"] / total if total > 0 else 0.0
    spend = spend.sort_values(["revenue", "category"], ascending=[False, True]).reset_index(drop=True)
    units = int(mine["quantity"].sum())
    events = tables.get("events")
    figures = {
        "customer_id": customer_id,
        "total_spent": total,
        "n_transactions": len(mine),
        "units": units,
        "avg_spend_per_unit": total / units if units else 0.0,
        "distinct_purchase_days": int(mine["purchase_date"].dt.normalize().nunique()),
        "first_purchase": None if mine.empty else mine["purchase_date"].min().isoformat(),
        "last_purchase": None if mine.empty else mine["purchase_date"].max().isoformat(),
        "favourite_category": None if spend.empty else str(spend["category"].iloc[0]),
        "n_events": 0 if events is None else int((events["customer_id"] == customer_id).sum()),
    }
    return figures, spend


# ------------------------------------------------------------------------------------------ Bayes table


def wilson_interval(successes, trials, confidence: float = DEFAULT_CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion, element-wise; NaN where ``trials`` is 0.

    ``(p + z²/2n ± z √(p(1-p)/n + z²/4n²)) / (1 + z²/n)``: unlike the normal approximation it stays inside
    [0, 1] and is wide for small ``n``, so a category with three engaged customers is not over-read.
    """
    from scipy.stats import norm

    if not 0 < confidence < 1:
        raise ConfigurationError(f"confidence must be strictly between 0 and 1, got {confidence}")
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    if np.any(k < 0) or np.any(k > n):
        raise ValueError("successes must lie between 0 and trials")
    z = float(norm.ppf(0.5 + confidence / 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lower = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
    upper = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    return lower, upper


def engagement_flags(tables: Mapping[str, pd.DataFrame], reference_date=None,
                     window_days: int = DEFAULT_WINDOW_DAYS,
                     min_interactions: int = DEFAULT_MIN_INTERACTIONS) -> tuple[pd.DataFrame, pd.Timestamp]:
    """One row per (customer, category): ``interactions``, ``engaged`` (> min_interactions), ``purchased``.

    Customers are everyone in the customers table (plus any id seen in transactions or events); categories
    are the products table's. The window is ``[reference_date - window_days, reference_date)``; the default
    reference date is the day after the last transaction or event.
    """
    if window_days < 1:
        raise ConfigurationError(f"window_days must be at least 1, got {window_days}")
    if min_interactions < 0:
        raise ConfigurationError(f"min_interactions must be at least 0, got {min_interactions}")
    tx, events, products = tables["transactions"], tables["events"], tables["products"]
    if reference_date is None:
        last = max(tx["purchase_date"].max(), events["event_date"].max() if len(events) else tx["purchase_date"].max())
        reference = pd.Timestamp(last).normalize() + pd.Timedelta(days=1)
    else:
        try:
            reference = pd.Timestamp(reference_date)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"reference date {reference_date!r} is not a date: {exc}") from None
    start = reference - pd.Timedelta(days=window_days)

    customers = pd.Index(sorted(set(tables["customers"]["customer_id"]) | set(tx["customer_id"])
                                | set(events["customer_id"])), name="customer_id")
    categories = pd.Index(sorted(products["category"].unique()), name="category")

    ev = events[(events["event_date"] >= start) & (events["event_date"] < reference)]
    ev = ev.merge(products[["product_id", "category"]], on="product_id", how="inner")
    counts = ev.groupby(["customer_id", "category"]).size()
    bought = tx[(tx["purchase_date"] >= start) & (tx["purchase_date"] < reference)]
    bought = bought.groupby(["customer_id", "category"]).size()

    grid = pd.MultiIndex.from_product([customers, categories])
    frame = pd.DataFrame(index=grid)
    frame["interactions"] = counts.reindex(grid, fill_value=0).astype(int)
    frame["engaged"] = frame["interactions"] > min_interactions
    frame["purchased"] = bought.reindex(grid, fill_value=0) > 0
    return frame.reset_index(), reference


def engagement_bayes(tables: Mapping[str, pd.DataFrame], reference_date=None, window_days: int = DEFAULT_WINDOW_DAYS,
                     min_interactions: int = DEFAULT_MIN_INTERACTIONS,
                     confidence: float = DEFAULT_CONFIDENCE) -> tuple[pd.DataFrame, pd.Timestamp]:
    """Per category, ``P(purchase | more than 3 interactions in the past 30 days)``, two ways, with counts.

    The unit is the **customer**: for each customer and category, E = "more than ``min_interactions``
    events (views, add-to-carts, searches, page views) on the category's products in the window" and
    P = "bought the category in the same window" (the window is ``window_days`` before the reference date,
    see :func:`engagement_flags`). With N customers, ``n_E``, ``n_P`` and ``n_PE`` customers:

    * directly: ``P(P | E) = n_PE / n_E``;
    * by Bayes' rule: ``P(E | P) · P(P) / P(E) = (n_PE / n_P) · (n_P / N) / (n_E / N)``, which must agree
      (it is the same ratio of customer counts, so a disagreement means the counting is broken);
    * ``wilson_low``/``wilson_high``: the Wilson interval of ``n_PE / n_E``; ``lift`` = P(P | E) / P(P).

    The seed's SQL got this wrong: it divided the number of purchases by the number of *interaction rows*
    (events), not by the number of *customers* with more than 3 interactions. That mixes units: a customer
    with 40 product views counts 40 times in the denominator and once in the numerator, so the "probability"
    shrinks with browsing intensity, is not a probability of anything, and Bayes' rule cannot reproduce it.
    Counting customers (each once per category) makes both sides the same event space.

    It is an association within one window (purchases are usually preceded by views of the same product),
    not a forecast. Returns ``(table, reference_date)``; probabilities are NaN where a count is 0.
    """
    flags, reference = engagement_flags(tables, reference_date, window_days, min_interactions)
    flags["both"] = flags["engaged"] & flags["purchased"]
    g = flags.groupby("category", sort=True)
    table = pd.DataFrame({
        "n_customers": g.size(),
        "n_engaged": g["engaged"].sum(),
        "n_purchased": g["purchased"].sum(),
        "n_engaged_and_purchased": g["both"].sum(),
    }).astype(int).reset_index()
    n, n_e, n_p, n_pe = (table[c].to_numpy(float) for c in
                         ("n_customers", "n_engaged", "n_purchased", "n_engaged_and_purchased"))
    with np.errstate(divide="ignore", invalid="ignore"):
        table["p_purchase"] = np.where(n > 0, n_p / n, np.nan)
        table["p_engaged"] = np.where(n > 0, n_e / n, np.nan)
        table["p_engaged_given_purchase"] = np.where(n_p > 0, n_pe / n_p, np.nan)
        table["p_purchase_given_engaged"] = np.where(n_e > 0, n_pe / n_e, np.nan)
        table["p_purchase_given_engaged_bayes"] = np.where(
            n_e > 0, table["p_engaged_given_purchase"] * table["p_purchase"] / table["p_engaged"], np.nan)
        # n_P = 0 leaves P(E|P) undefined, but then n_PE = 0 and the direct value is 0: Bayes agrees in the limit
        table.loc[(n_p == 0) & (n_e > 0), "p_purchase_given_engaged_bayes"] = 0.0
        table["lift"] = table["p_purchase_given_engaged"] / table["p_purchase"]
    table["wilson_low"], table["wilson_high"] = wilson_interval(n_pe, n_e, confidence)
    logger.info("engagement Bayes table: %d categories, %d customers, window %d days before %s",
                len(table), int(n.max()) if len(n) else 0, window_days, reference.date())
    return table, reference
