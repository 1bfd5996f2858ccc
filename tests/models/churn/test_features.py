from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.churn.features import FeatureInputError, active_customers, build_features
from models.churn.labels import build_labels, window_days_for

T = pd.Timestamp("2024-07-01")


def day(offset: float) -> pd.Timestamp:
    """T + offset days."""
    return T + pd.Timedelta(days=offset)


def hand_tables() -> dict[str, pd.DataFrame]:
    """A: three purchases before T (and one after); B: only a purchase long before the lookback;
    C: one purchase 60 days before T, two carts; D: only after T."""
    tx = pd.DataFrame(
        [
            ("T1", "A", "P1", "Books", 1, 10.0, day(-10)),
            ("T2", "A", "P2", "Books", 1, 30.0, day(-20)),
            ("T3", "A", "P3", "Beauty", 2, 20.0, day(-90)),
            ("T4", "A", "P1", "Books", 1, 999.0, day(4)),
            ("T5", "B", "P1", "Books", 1, 15.0, day(-400)),
            ("T6", "C", "P1", "Clothing", 1, 50.0, day(-60)),
            ("T7", "D", "P2", "Books", 1, 5.0, day(1)),
        ],
        columns=["transaction_id", "customer_id", "product_id", "category", "quantity", "amount", "purchase_date"],
    )
    events = pd.DataFrame(
        [
            ("C", "P2", "add_to_cart", day(-30)),
            ("C", "P1", "add_to_cart", day(-62)),
            ("C", "P1", "product_view", day(-400)),  # before the lookback: not counted
            ("A", "P1", "page_view", day(3)),  # after T: not counted
        ],
        columns=["customer_id", "product_id", "event_type", "event_date"],
    )
    customers = pd.DataFrame({
        "customer_id": ["A", "B", "C", "D"],
        "signup_date": pd.to_datetime(["2024-01-01", "2022-01-01", None, "2024-08-01"]),
        "gender": ["F", "M", " ", "F"],
        "age": [30, 41, np.nan, 22],
        "location": ["Berlin", "Paris", "Rome", "Oslo"],
    })
    return {"transactions": tx, "events": events, "customers": customers}


def test_features_of_a_hand_built_shop():
    f = build_features(hand_tables(), T, lookback_days=365).set_index("customer_id")
    assert list(f.index) == ["A", "C"]  # B is outside the lookback, D only buys after T
    a, c = f.loc["A"], f.loc["C"]
    assert (a.recency_days, a.frequency, a.monetary, a.avg_order_value) == (10, 3, 60, 20)
    assert a.tenure_days == 182  # the signup (2024-01-01) is before the first purchase (90 days)
    assert (a.gap_mean_days, a.gap_std_days, a.recency_gap_ratio) == (40, 30, 0.25)  # gaps 70 and 10 days
    assert (a.purchase_trend, a.spend_trend) == (1.0, 1.0)  # two purchases in the last 30 days, none before
    assert a.category_diversity == 2
    assert (a.events_page_view, a.days_since_last_event, a.cart_abandonment_rate) == (0, 365, 0)
    assert (c.recency_days, c.frequency, c.tenure_days) == (60, 1, 60)
    assert (c.gap_mean_days, c.gap_std_days) == (365, 0)  # one purchase day: no gap
    assert c.purchase_trend == -1.0  # the purchase is 60 days back: the "30 days before" bucket
    assert (c.events_add_to_cart, c.events_add_to_cart_trend, c.events_product_view) == (2, 1.0, 0)
    assert c.cart_abandonment_rate == 0.5  # P1 carted then bought, P2 carted and not bought
    assert c.days_since_last_event == 30
    assert (a.gender, a.location, a.age) == ("F", "Berlin", 30)
    assert c.gender == "missing" and np.isnan(c.age)


def test_active_customers_matches_the_feature_rows():
    tables = hand_tables()
    assert list(active_customers(tables["transactions"], T, 365)) == ["A", "C"]
    assert list(active_customers(tables["transactions"], T, 30)) == ["A"]


def test_no_future_leakage_changing_every_row_after_the_cutoff_changes_nothing():
    from pipelines.data.synthetic import generate_shop

    tables, _ = generate_shop(customers=150, products=20, years=2, seed=5)
    cutoff = pd.Timestamp("2024-06-15")
    before = build_features(tables, cutoff, lookback_days=365)
    assert len(before) > 50

    changed = {name: df.copy() for name, df in tables.items()}
    tx = changed["transactions"]
    after = tx["purchase_date"] >= cutoff
    assert after.any()
    tx.loc[after, "amount"] = tx.loc[after, "amount"] * 7 + 1
    tx.loc[after, "product_id"] = tx.loc[after, "product_id"].to_numpy()[::-1]
    tx.loc[after, "category"] = "Books"
    tx.loc[after, "purchase_date"] = tx.loc[after, "purchase_date"] + pd.Timedelta(days=3)
    extra = tx[after].head(50).assign(customer_id="NEW", transaction_id=lambda d: "X" + d["transaction_id"])
    changed["transactions"] = pd.concat([tx, extra], ignore_index=True)
    ev = changed["events"]
    ev_after = ev["event_date"] >= cutoff
    ev.loc[ev_after, "event_type"] = "add_to_cart"
    ev.loc[ev_after, "event_date"] = ev.loc[ev_after, "event_date"] + pd.Timedelta(days=1)
    ev.loc[ev_after, "product_id"] = ev.loc[ev_after, "product_id"].to_numpy()[::-1]
    pd.testing.assert_frame_equal(build_features(changed, cutoff, lookback_days=365), before)

    # The property is not vacuous: one changed amount before the cutoff shows up.
    tx2 = tables["transactions"].copy()
    row = tx2.index[(tx2["purchase_date"] < cutoff) & (tx2["purchase_date"] >= cutoff - pd.Timedelta(days=30))][0]
    tx2.loc[row, "amount"] += 100.0
    altered = build_features({**tables, "transactions": tx2}, cutoff, lookback_days=365)
    assert not altered["monetary"].equals(before["monetary"])


def test_churn_labels_use_the_half_open_window_after_the_cutoff():
    tx = pd.DataFrame({
        "customer_id": ["A", "B", "C", "E"],
        "purchase_date": [T, day(90), T - pd.Timedelta(seconds=1), day(89.99)],
    })
    ids = ["A", "B", "C", "E", "nobody"]
    churn = build_labels(tx, ids, T, 90, "churn")
    # A buys at T (inside), B exactly at T + 90 days (outside), C just before T, E at the window's end.
    assert churn.tolist() == [0, 1, 1, 0, 1]
    assert build_labels(tx, ids, T, 90, "purchase").tolist() == [1, 0, 0, 1, 0]
    assert build_labels(tx, ids, T, 7, "purchase").tolist() == [1, 0, 0, 0, 0]


def test_purchase_target_defaults_to_a_seven_day_window():
    assert window_days_for("purchase", None) == 7
    assert window_days_for("churn", None) == 90
    assert window_days_for("purchase", 14) == 14
    with pytest.raises(ValueError, match="target"):
        window_days_for("upsell", None)
    with pytest.raises(ValueError, match="window_days"):
        window_days_for("churn", 0)


def test_bad_inputs_name_the_problem():
    tables = hand_tables()
    with pytest.raises(FeatureInputError, match="lookback_days"):
        build_features(tables, T, lookback_days=30)
    with pytest.raises(FeatureInputError, match="amount"):
        build_features({**tables, "transactions": tables["transactions"].drop(columns="amount")}, T)


def test_no_active_customer_gives_an_empty_frame_with_the_columns():
    f = build_features(hand_tables(), pd.Timestamp("2020-01-01"), lookback_days=365)
    assert f.empty and {"customer_id", "recency_days", "cart_abandonment_rate", "gender"} <= set(f.columns)
