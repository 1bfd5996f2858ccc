"""Shop analytics on hand-built tables: the revenue summary, a customer profile and the engagement Bayes table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.analytics import shop as sa
from pipelines.errors import DataValidationError

REFERENCE = pd.Timestamp("2024-02-01")  # window: [2024-01-02, 2024-02-01)


def _events(customer: str, product: str, n: int, day: str) -> list[dict]:
    return [{"customer_id": customer, "product_id": product, "event_type": "product_view",
             "event_date": pd.Timestamp(day) + pd.Timedelta(minutes=i)} for i in range(n)]


@pytest.fixture
def tables() -> dict[str, pd.DataFrame]:
    """Five customers, books and a laptop.

    Books: C1 engaged (5 events) and bought; C2 engaged (4) without buying (and 9 older events that do not
    count); C3 bought with only 3 events (not "more than 3"); C5 bought before the window. Electronics: C4
    engaged (10 events) and bought.
    """
    products = pd.DataFrame({"product_id": ["P1", "P2", "P3"], "category": ["Books", "Books", "Electronics"],
                             "subcategory": ["Fiction", "Comics", "Laptops"],
                             "product_name": ["Novel", "Comic", "Laptop"]})
    customers = pd.DataFrame({"customer_id": ["C1", "C2", "C3", "C4", "C5"]})
    tx = pd.DataFrame({
        "transaction_id": ["T1", "T2", "T3", "T4", "T5"],
        "customer_id": ["C1", "C3", "C4", "C5", "C1"],
        "product_id": ["P1", "P1", "P3", "P2", "P2"],
        "quantity": [2, 1, 1, 4, 1],
        "amount": [20.0, 10.0, 900.0, 20.0, 6.0],
        "purchase_date": pd.to_datetime(["2024-01-20", "2024-01-25", "2024-01-15", "2023-12-01", "2023-11-01"]),
    })
    tx["category"] = tx["product_id"].map(products.set_index("product_id")["category"])
    events = pd.DataFrame(_events("C1", "P1", 5, "2024-01-19") + _events("C2", "P2", 4, "2024-01-10")
                          + _events("C2", "P1", 9, "2023-12-15") + _events("C3", "P1", 3, "2024-01-24")
                          + _events("C4", "P3", 10, "2024-01-14"))
    return {"customers": customers, "products": products, "transactions": tx, "events": events}


def test_bayes_table_counts_customers_and_both_routes_agree(tables):
    table, reference = sa.engagement_bayes(tables, REFERENCE, window_days=30, min_interactions=3)
    assert reference == REFERENCE
    books = table.set_index("category").loc["Books"]
    assert (books["n_customers"], books["n_engaged"], books["n_purchased"], books["n_engaged_and_purchased"]) == (5, 2, 2, 1)
    assert books["p_purchase"] == pytest.approx(0.4) and books["p_engaged"] == pytest.approx(0.4)
    assert books["p_engaged_given_purchase"] == pytest.approx(0.5)
    assert books["p_purchase_given_engaged"] == pytest.approx(0.5)  # 1 of the 2 engaged customers bought
    assert books["p_purchase_given_engaged_bayes"] == pytest.approx(0.5 * 0.4 / 0.4)
    assert books["lift"] == pytest.approx(0.5 / 0.4)
    electronics = table.set_index("category").loc["Electronics"]
    assert electronics["p_purchase_given_engaged"] == pytest.approx(1.0)
    assert electronics["p_purchase_given_engaged_bayes"] == pytest.approx(1.0)
    # the seed's ratio (purchases over interaction rows in the window) would say 2 / 12 for Books
    assert books["p_purchase_given_engaged"] != pytest.approx(2 / 12)


def test_more_browsing_by_one_customer_does_not_change_the_probability(tables):
    """Counted per customer: 40 more views by C2 leave P(purchase | engaged) alone (the seed's ratio would drop)."""
    before, _ = sa.engagement_bayes(tables, REFERENCE)
    more = dict(tables)
    more["events"] = pd.concat([tables["events"], pd.DataFrame(_events("C2", "P2", 40, "2024-01-11"))],
                               ignore_index=True)
    after, _ = sa.engagement_bayes(more, REFERENCE)
    pd.testing.assert_frame_equal(before, after)


def test_wilson_interval_matches_statsmodels_and_is_nan_without_trials():
    from statsmodels.stats.proportion import proportion_confint

    low, high = sa.wilson_interval([1, 0, 7, 0], [2, 5, 7, 0], confidence=0.95)
    for k, n, lo, hi in zip([1, 0, 7], [2, 5, 7], low, high):
        ref_lo, ref_hi = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert (lo, hi) == (pytest.approx(ref_lo, abs=1e-12), pytest.approx(ref_hi, abs=1e-12))
    assert low[0] == pytest.approx(0.094531, abs=1e-6)  # hand-computed for 1 of 2
    assert np.isnan(low[3]) and np.isnan(high[3])
    with pytest.raises(Exception, match="confidence"):
        sa.wilson_interval([1], [2], confidence=1.5)


def test_bayes_identity_holds_on_generated_data():
    from pipelines.data.synthetic import generate_shop

    tables, _ = generate_shop(customers=300, products=40, years=1, seed=4)
    table, _ = sa.engagement_bayes(tables)
    assert table["n_engaged"].sum() > 0
    defined = table["n_engaged"] > 0
    np.testing.assert_allclose(table.loc[defined, "p_purchase_given_engaged"],
                               table.loc[defined, "p_purchase_given_engaged_bayes"], rtol=1e-12)
    assert ((table["wilson_low"] <= table["p_purchase_given_engaged"])
            & (table["p_purchase_given_engaged"] <= table["wilson_high"]))[defined].all()


def test_summary_figures_by_hand(tables):
    s = sa.shop_summary(tables, min_units=2)
    assert s.total_revenue == pytest.approx(956.0) and s.total_units == 9
    assert s.avg_revenue_per_unit == pytest.approx(956.0 / 9)
    assert (s.top_category, s.top_category_revenue) == ("Electronics", pytest.approx(900.0))
    assert (s.best_selling_product, s.best_selling_units) == ("P2", 5)
    # P3 earns 900 per unit but sold one unit; among products with >= 2 units P1 earns 10 per unit, P2 5.2
    assert (s.most_profitable_product, s.most_profitable_revenue_per_unit) == ("P1", pytest.approx(10.0))
    assert sa.shop_summary(tables, min_units=1).most_profitable_product == "P3"
    sub = s.by_subcategory.set_index("subcategory")
    assert sub.loc["Laptops", "revenue"] == pytest.approx(900.0) and sub.loc["Comics", "revenue"] == pytest.approx(26.0)
    assert s.by_category["revenue_share"].sum() == pytest.approx(1.0)
    assert s.monthly["revenue"].sum() == pytest.approx(956.0)


def test_customer_profile_and_unknown_customer(tables):
    figures, spend = sa.customer_profile(tables, "C1")
    assert figures["total_spent"] == pytest.approx(26.0) and figures["units"] == 3
    assert figures["favourite_category"] == "Books" and figures["n_events"] == 5
    assert spend["revenue"].sum() == pytest.approx(26.0)
    quiet, _ = sa.customer_profile(tables, "C2")  # known, never bought
    assert quiet["total_spent"] == 0 and quiet["favourite_category"] is None
    with pytest.raises(DataValidationError, match="'C99'"):
        sa.customer_profile(tables, "C99")
