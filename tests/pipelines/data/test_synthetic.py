"""The synthetic shop: data contract, determinism and the structure planted for the models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.errors import ConfigurationError
from pipelines.data.synthetic import CATEGORIES, SUBCATEGORIES, TRANSACTIONS_PER_CUSTOMER_YEAR, generate_shop
from pipelines.data.tables import EVENT_TYPES, REQUIRED_COLUMNS, TABLE_NAMES, dataset_digest, write_tables

SMALL = {"customers": 400, "products": 60, "years": 3, "seed": 7}

COLUMNS = {
    "customers": ["customer_id", "signup_date", "gender", "age", "location", "profession"],
    "products": ["product_id", "product_name", "category", "subcategory", "base_price"],
    "transactions": ["transaction_id", "customer_id", "product_id", "category", "quantity", "amount", "purchase_date"],
    "events": ["customer_id", "product_id", "event_type", "event_date"],
}
STRING_COLUMNS = {
    "customers": ["customer_id", "gender", "location", "profession"],
    "products": ["product_id", "product_name", "category", "subcategory"],
    "transactions": ["transaction_id", "customer_id", "product_id", "category"],
    "events": ["customer_id", "product_id", "event_type"],
}


@pytest.fixture(scope="module")
def shop():
    return generate_shop(**SMALL)


@pytest.fixture(scope="module")
def tables(shop):
    return shop[0]


@pytest.fixture(scope="module")
def truth(shop):
    return shop[1]


# ------------------------------------------------------------------------------------------ contract


def test_tables_have_the_contract_columns_and_dtypes(tables):
    assert list(tables) == list(TABLE_NAMES)
    for name, df in tables.items():
        assert list(df.columns) == COLUMNS[name], name
        assert set(REQUIRED_COLUMNS[name]) <= set(df.columns)
        assert not df.isna().any().any(), name
        for col in STRING_COLUMNS[name]:
            assert pd.api.types.is_string_dtype(df[col]), (name, col, df[col].dtype)
    assert tables["customers"]["signup_date"].dtype == "datetime64[ns]"
    assert tables["transactions"]["purchase_date"].dtype == "datetime64[ns]"
    assert tables["events"]["event_date"].dtype == "datetime64[ns]"
    assert tables["transactions"]["quantity"].dtype == np.int64
    assert tables["transactions"]["amount"].dtype == np.float64
    assert tables["products"]["base_price"].dtype == np.float64
    assert tables["customers"]["age"].dtype == np.int64


def test_ids_are_unique_formatted_and_referenced(tables):
    customers, products, tx, events = (tables[n] for n in TABLE_NAMES)
    assert customers["customer_id"].is_unique and products["product_id"].is_unique
    assert tx["transaction_id"].is_unique
    assert customers["customer_id"].iloc[0] == "C00001" and products["product_id"].iloc[0] == "P0001"
    assert len(customers) == SMALL["customers"] and len(products) == SMALL["products"]
    for df in (tx, events):
        assert df["customer_id"].isin(customers["customer_id"]).all()
        assert df["product_id"].isin(products["product_id"]).all()
    assert set(events["event_type"]) == set(EVENT_TYPES)


def test_products_have_categories_subcategories_and_price_ranges(tables, truth):
    products = tables["products"]
    assert set(products["category"]) == set(CATEGORIES)
    for category, group in products.groupby("category"):
        assert set(group["subcategory"]) <= set(SUBCATEGORIES[category])
    assert (products["base_price"] > 0).all()
    median = products.groupby("category")["base_price"].median()
    assert median["Electronics"] > median["Books"]
    popularity = truth.product_popularity.sort_values(ascending=False)
    assert popularity.sum() == pytest.approx(1.0)
    assert popularity.iloc[: len(popularity) // 10].sum() > 0.25  # long tail: top 10% hold a quarter or more


def test_transactions_carry_their_product_category(tables):
    tx, products = tables["transactions"], tables["products"]
    expected = tx["product_id"].map(products.set_index("product_id")["category"])
    assert (tx["category"] == expected).all()


def test_amount_is_quantity_times_a_unit_price_near_base_price(tables):
    tx, products = tables["transactions"], tables["products"]
    assert (tx["quantity"] >= 1).all()
    assert (tx["quantity"] <= 3).mean() > 0.95
    assert (tx["quantity"] == 1).mean() > 0.5
    unit = tx["amount"] / tx["quantity"]
    assert np.allclose(unit.round(2), unit, atol=1e-9)  # whole cents
    factor = unit / tx["product_id"].map(products.set_index("product_id")["base_price"])
    assert factor.between(0.85 - 1e-9, 1.15 + 1e-9).all()
    assert factor.min() < 0.87 and factor.max() > 1.13


def test_dates_lie_in_the_window_and_rows_are_sorted(tables, truth):
    tx, events = tables["transactions"], tables["events"]
    assert tx["purchase_date"].min() >= truth.start and tx["purchase_date"].max() < truth.end
    assert events["event_date"].max() < truth.end
    assert truth.end == truth.start + pd.DateOffset(years=SMALL["years"])
    assert tx["purchase_date"].is_monotonic_increasing and events["event_date"].is_monotonic_increasing
    assert (tx["purchase_date"].dt.hour.nunique()) > 12  # times of day, not midnights
    assert tables["customers"]["signup_date"].max() < truth.end


def test_volume_scales_with_customers_and_years(tables):
    expected = SMALL["customers"] * SMALL["years"] * TRANSACTIONS_PER_CUSTOMER_YEAR
    assert len(tables["transactions"]) == pytest.approx(expected, rel=0.15)
    assert len(tables["events"]) > 3 * len(tables["transactions"])


def test_segment_shares(truth, tables):
    spending = truth.spending_power.value_counts(normalize=True)
    assert spending.to_dict() == pytest.approx({"low": 0.2, "medium": 0.6, "high": 0.2}, abs=0.01)
    frequency = truth.purchase_frequency.value_counts(normalize=True)
    assert frequency.to_dict() == pytest.approx({"rare": 0.3, "regular": 0.5, "frequent": 0.2}, abs=0.01)
    per_customer = tables["transactions"].groupby("customer_id").size().reindex(truth.purchase_frequency.index)
    mean = per_customer.fillna(0).groupby(truth.purchase_frequency).mean()
    assert mean["rare"] < mean["regular"] < mean["frequent"]


def test_preferences_are_dirichlet_rows(truth):
    prefs = truth.preferences
    assert prefs.shape == (SMALL["customers"], len(CATEGORIES))
    assert list(prefs.columns) == list(CATEGORIES)
    assert np.allclose(prefs.sum(axis=1), 1.0) and (prefs.to_numpy() > 0).all()


def test_validation_names_the_parameter():
    for kwargs, name in (({"customers": 9}, "customers"), ({"products": 3}, "products"), ({"years": 0}, "years")):
        with pytest.raises(ConfigurationError, match=name):
            generate_shop(**kwargs)


# --------------------------------------------------------------------------------------- determinism


def test_same_seed_same_tables_and_truth(tables, truth):
    again, truth_again = generate_shop(**SMALL)
    for name in TABLE_NAMES:
        pd.testing.assert_frame_equal(tables[name], again[name])
    pd.testing.assert_series_equal(truth.churn_dates, truth_again.churn_dates)
    pd.testing.assert_frame_equal(truth.customer_factors, truth_again.customer_factors)


def test_different_seed_different_tables(tables):
    other, _ = generate_shop(**{**SMALL, "seed": SMALL["seed"] + 1})
    assert dataset_digest(other) != dataset_digest(tables)
    assert not tables["transactions"]["product_id"].equals(other["transactions"]["product_id"])


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_written_files_are_byte_identical(tmp_path, fmt):
    small = {"customers": 60, "products": 20, "years": 1, "seed": 3}
    for folder in ("a", "b"):
        write_tables(generate_shop(**small)[0], tmp_path / folder, fmt)
    for name in TABLE_NAMES:
        first, second = (tmp_path / folder / f"{name}.{fmt}" for folder in ("a", "b"))
        assert first.read_bytes() == second.read_bytes(), name


# ------------------------------------------------------------------------------------ planted structure


def test_purchases_concentrate_in_preferred_categories(tables, truth):
    tx = tables["transactions"]
    top = truth.preferences.idxmax(axis=1)
    share_top = (tx["category"].to_numpy() == top.loc[tx["customer_id"]].to_numpy()).mean()
    assert share_top > 0.4  # uniform would be 0.2
    # and per category, the customers who prefer it most buy it most
    bought = pd.crosstab(tx["customer_id"], tx["category"], normalize="index").reindex(columns=list(CATEGORIES))
    prefs = truth.preferences.loc[bought.index]
    for category in CATEGORIES:
        assert np.corrcoef(bought[category].fillna(0), prefs[category])[0, 1] > 0.4, category


def test_repeat_category_share(tables):
    tx = tables["transactions"].sort_values(["customer_id", "purchase_date"], kind="stable")
    later = tx.groupby("customer_id").cumcount() > 0  # not the customer's first purchase
    repeat = tx.groupby(["customer_id", "category"]).cumcount() > 0  # category bought before
    assert repeat[later].mean() >= 0.3


def test_bought_products_have_higher_latent_affinity(tables, truth):
    tx, products = tables["transactions"], tables["products"]
    assert truth.customer_factors.shape == (SMALL["customers"], truth.product_factors.shape[1])
    bought = truth.affinity(tx["customer_id"], tx["product_id"])
    # a random product from the same category, so that the category preference does not count
    rng = np.random.default_rng(0)
    by_category = products.groupby("category")["product_id"].apply(np.asarray)
    random_products = [rng.choice(by_category[c]) for c in tx["category"]]
    other = truth.affinity(tx["customer_id"], random_products)
    assert bought.mean() > other.mean() + 0.5


def test_seasonal_peaks_in_monthly_sales(tables, truth):
    assert {"Electronics": 12, "Books": 12, "Beauty": 12, "Clothing": 7}.items() <= truth.seasonal_categories.items()
    tx = tables["transactions"]
    monthly = tx.groupby([tx["purchase_date"].dt.to_period("M"), "category"])["amount"].sum().unstack(fill_value=0)
    for category, peak in truth.seasonal_categories.items():
        series = monthly[category]
        peak_mean = series[series.index.month == peak].mean()
        assert peak_mean > 1.15 * series.mean(), category
    december = monthly[monthly.index.month == 12].sum(axis=1).mean()
    assert december > monthly.sum(axis=1).mean()


def test_trend_is_per_category(truth):
    assert truth.trend["Electronics"] > 0 > truth.trend["Books"]
    assert truth.seasonality.shape == (len(CATEGORIES), 12)
    assert np.allclose(truth.seasonality.mean(axis=1), 1.0)


def test_churners_stop_at_their_churn_date(tables, truth):
    churn = truth.churn_dates
    assert churn.dtype == "datetime64[ns]"
    assert 0.15 < truth.churned.mean() < 0.6
    assert ((churn.dropna() >= truth.start) & (churn.dropna() < truth.end)).all()
    for name, col in (("transactions", "purchase_date"), ("events", "event_date")):
        df = tables[name]
        stop = churn.loc[df["customer_id"]].to_numpy()
        after = df[col].to_numpy() >= stop  # NaT compares False
        assert not after.any(), name


def test_churners_slow_down_before_churning():
    tables, truth = generate_shop(**{**SMALL, "customers": 2000})  # enough churners for a stable rate
    tx, customers = tables["transactions"], tables["customers"].set_index("customer_id")
    churn = truth.churn_dates.dropna()
    opened = customers["signup_date"].clip(lower=truth.start).loc[churn.index]
    churn = churn[churn - opened > pd.Timedelta(days=280)]  # customers for at least the 270 days compared
    churn_of_row = churn.reindex(tx["customer_id"]).to_numpy()
    days_before = (churn_of_row - tx["purchase_date"].to_numpy()) / np.timedelta64(1, "D")
    late = ((days_before >= 0) & (days_before < 90)).sum() / 90  # purchases per day, last 90 days
    early = ((days_before >= 90) & (days_before < 270)).sum() / 180  # the 180 days before those
    assert late < 0.8 * early
    # not trivially: some churners keep their pace until the end, churners are less satisfied on average
    assert 0.05 < (truth.decay_days[truth.churned] == 0).mean() < 0.5
    assert truth.satisfaction[truth.churned].mean() < truth.satisfaction[~truth.churned].mean()


def test_every_purchase_is_preceded_by_a_view_of_its_product(tables):
    tx, events = tables["transactions"], tables["events"]
    views = events.loc[events["event_type"] == "product_view", ["customer_id", "product_id", "event_date"]]
    pairs = tx[["transaction_id", "customer_id", "product_id", "purchase_date"]].merge(
        views, on=["customer_id", "product_id"]
    )
    lead = pairs["purchase_date"] - pairs["event_date"]
    before = pairs[(lead > pd.Timedelta(0)) & (lead <= pd.Timedelta(days=2))]
    assert set(before["transaction_id"]) == set(tx["transaction_id"])
    carts = events[events["event_type"] == "add_to_cart"]
    assert len(carts) > 0.5 * len(tx)


# ------------------------------------------------------------------------------- demographic strength


def test_default_demographic_strength_leaves_the_shop_as_it_was(tables):
    # the digest of SMALL before the option existed (and with demographic_strength=1 spelled out)
    assert dataset_digest(tables) == "c31d380e3f7bbbe1"
    same, _ = generate_shop(**SMALL, demographic_strength=1.0)
    assert dataset_digest(same) == "c31d380e3f7bbbe1"


def _beauty_gap(tables) -> float:
    """Share of Beauty in women's purchases minus the share in men's."""
    tx = tables["transactions"].merge(tables["customers"][["customer_id", "gender"]], on="customer_id")
    share = tx.assign(beauty=tx["category"] == "Beauty").groupby("gender")["beauty"].mean()
    return float(share["Female"] - share["Male"])


def test_demographic_strength_scales_the_planted_gender_and_age_tilts(tables):
    gaps = {s: _beauty_gap(generate_shop(**SMALL, demographic_strength=s)[0]) for s in (0.0, 3.0)}
    # 400 customers: about 0.04 of noise; the default tilt plants about 0.09, strength 3 about 0.3
    assert abs(gaps[0.0]) < 0.06 and gaps[0.0] < _beauty_gap(tables) < gaps[3.0]
    assert gaps[3.0] > 0.25
    for bad in (-1, 11, True, "3"):
        with pytest.raises(ConfigurationError, match="demographic_strength"):
            generate_shop(**SMALL, demographic_strength=bad)
