"""Next-category features (no future leakage), labels, the classifier's export and the pyfunc's answers and 400s."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, ErrorCode

from models.next_category.model import (NextCategoryClassifier, build_features, category_slug, feature_columns,
                                  history_baseline, next_category_labels, probability_columns)

MODELS_DIR = Path(__file__).resolve().parents[3] / "models"
CUTOFF = pd.Timestamp("2024-06-01")


@pytest.fixture(scope="module")
def shop():
    from pipelines.data.synthetic import generate_shop

    tables, _ = generate_shop(customers=300, products=40, years=2, seed=8, start="2023-01-01")
    return tables


@pytest.fixture(scope="module")
def categories(shop):
    return sorted(shop["products"]["category"].unique())


def test_slugs_and_columns():
    assert category_slug("Home & Living") == "home_living"
    cols = feature_columns(["Books", "Home & Living"])
    assert cols[:2] == ["n_purchases", "days_since_last_purchase"]
    assert "share_home_living" in cols and "last_is_books" in cols and len(cols) == 2 + 5 * 2
    assert probability_columns(["Books", "Home & Living"]) == ["prob_books", "prob_home_living"]
    with pytest.raises(ValueError, match="clashing"):
        feature_columns(["Home & Living", "home-living"])


def test_features_ignore_everything_on_or_after_the_cutoff(shop, categories):
    """Change every transaction and event dated on or after T (and add new ones): same features."""
    before = build_features(shop, CUTOFF, categories)
    changed = {k: v.copy() for k, v in shop.items()}
    tx, ev = changed["transactions"], changed["events"]
    late_tx = tx["purchase_date"] >= CUTOFF
    tx.loc[late_tx, "category"] = categories[0]
    tx.loc[late_tx, "amount"] = 1.0
    tx.loc[late_tx, "customer_id"] = tx["customer_id"].iloc[0]
    late_ev = ev["event_date"] >= CUTOFF
    ev.loc[late_ev, "product_id"] = ev["product_id"].iloc[0]
    ev.loc[late_ev, "customer_id"] = ev["customer_id"].iloc[-1]
    extra = tx[late_tx].head(50).assign(purchase_date=CUTOFF, transaction_id=lambda d: "X" + d["transaction_id"])
    changed["transactions"] = pd.concat([tx, extra], ignore_index=True)
    assert late_tx.sum() > 100 and late_ev.sum() > 100
    pd.testing.assert_frame_equal(before, build_features(changed, CUTOFF, categories))
    # and the features do depend on the history (sanity: an earlier row matters)
    earlier = {**shop, "transactions": shop["transactions"][shop["transactions"]["purchase_date"] < CUTOFF - pd.Timedelta(days=10)]}
    assert not build_features(earlier, CUTOFF, categories).equals(before)


def test_features_by_hand():
    products = pd.DataFrame({"product_id": ["P1", "P2"], "category": ["Books", "Beauty"]})
    tx = pd.DataFrame({"transaction_id": ["T1", "T2", "T3", "T4"], "customer_id": ["A", "A", "A", "B"],
                       "product_id": ["P1", "P1", "P2", "P2"], "category": ["Books", "Books", "Beauty", "Beauty"],
                       "purchase_date": pd.to_datetime(["2024-01-01", "2024-05-01", "2024-05-21", "2024-06-03"])})
    events = pd.DataFrame({"customer_id": ["A", "A", "A"], "product_id": ["P2", "P2", "P1"],
                           "event_type": ["product_view"] * 3,
                           "event_date": pd.to_datetime(["2024-05-20", "2024-05-25", "2024-03-01"])})
    f = build_features({"transactions": tx, "events": events, "products": products}, CUTOFF, ["Beauty", "Books"])
    assert f["customer_id"].tolist() == ["A"]  # B buys only after the cutoff
    a = f.iloc[0]
    assert a["n_purchases"] == 3 and a["days_since_last_purchase"] == pytest.approx(11)
    assert a["share_books"] == pytest.approx(2 / 3) and a["recent_share_books"] == pytest.approx(0.5)
    assert a["days_since_books"] == pytest.approx(31) and a["days_since_beauty"] == pytest.approx(11)
    assert a["events_beauty"] == 2 and a["events_books"] == 0  # the March view is older than 30 days
    assert a["last_is_beauty"] == 1 and a["last_is_books"] == 0
    labels = next_category_labels(tx, pd.Timestamp("2024-05-02"), 30)
    assert labels.to_dict() == {"A": "Beauty"}
    assert next_category_labels(tx, CUTOFF, 30).to_dict() == {"B": "Beauty"}


def test_history_baseline_picks_the_most_frequent_category(shop, categories):
    f = build_features(shop, CUTOFF, categories)
    p = history_baseline(f, categories, np.ones(len(categories)) / len(categories))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    shares = f[[f"share_{category_slug(c)}" for c in categories]].to_numpy()
    assert (shares[np.arange(len(p)), p.argmax(axis=1)] == shares.max(axis=1)).all()


@pytest.fixture(scope="module")
def fitted(shop, categories):
    X = build_features(shop, CUTOFF, categories)
    y = next_category_labels(shop["transactions"], CUTOFF, 60, categories)
    frame = X.merge(y.rename_axis("customer_id").reset_index(), on="customer_id")
    model = NextCategoryClassifier(categories=categories, C=0.5).fit(frame, frame["category"])
    return model, frame


def test_classifier_export_round_trip_and_probabilities(fitted):
    model, frame = fitted
    p = model.predict_proba(frame)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    back = NextCategoryClassifier.from_dict(model.to_dict())
    np.testing.assert_allclose(back.predict_proba(frame), p, rtol=0, atol=1e-12)
    assert len(model.design_columns) == model.coef_.shape[1]


def test_two_classes_and_an_unseen_category_get_probability_zero(fitted):
    _, frame = fitted
    cats = ["Beauty", "Books", "Clothing", "Electronics", "Home & Living"]
    y = np.where(frame["share_books"] > frame["share_books"].median(), "Books", "Beauty")
    model = NextCategoryClassifier(categories=cats, C=1.0, feature_set="shares_events").fit(frame, y)
    p = model.predict_proba(frame)
    assert (p[:, 2:] == 0).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert np.corrcoef(p[:, 1], frame["share_books"])[0, 1] > 0.5
    with pytest.raises(ValueError, match="not among the categories"):
        NextCategoryClassifier(categories=cats).fit(frame, np.array(["Garden"] * len(frame)))


@pytest.fixture(scope="module")
def loaded(fitted, tmp_path_factory):
    import mlflow

    model, frame = fitted
    folder = tmp_path_factory.mktemp("next-category-model")
    path = model.save(folder / "classifier.json")
    requests = frame[["customer_id", *model.input_columns]]
    mlflow.pyfunc.save_model(folder / "model", python_model=str(MODELS_DIR / "next_category" / "pyfunc.py"),
                             artifacts={"classifier": str(path)}, code_paths=[str(MODELS_DIR)],
                             input_example=requests.head(2), pip_requirements=["mlflow", "numpy", "pandas"])
    return mlflow.pyfunc.load_model(str(folder / "model")), model, requests


def test_pyfunc_answers_probabilities_and_the_top_category(loaded):
    served, model, requests = loaded
    out = served.predict(requests)
    cols = probability_columns(model.categories)
    assert list(out.columns) == ["customer_id", "top_category", "top_probability", *cols]
    np.testing.assert_allclose(out[cols].to_numpy(), model.predict_proba(requests), rtol=0, atol=1e-12)
    top = np.asarray(model.categories, dtype=object)[out[cols].to_numpy().argmax(axis=1)]
    assert (out["top_category"].to_numpy() == top).all()
    np.testing.assert_allclose(out["top_probability"], out[cols].max(axis=1))
    assert out["customer_id"].tolist() == requests["customer_id"].tolist()


def test_pyfunc_bad_requests_are_400s(loaded):
    from models.next_category.pyfunc import NextCategoryModel

    python_model = NextCategoryModel()
    python_model.classifier = loaded[1]
    requests = loaded[2].head(3).reset_index(drop=True)
    cases = [(requests.drop(columns=["share_books"]), "missing required column(s) 'share_books'"),
             (requests.assign(events_books=[0.0, -2.0, 1.0]), "column 'events_books' in row 1 must hold a number >= 0: got -2.0 (below 0)"),
             (requests.assign(n_purchases=["3", "lots", "1"]), "column 'n_purchases' in row 0 must hold a number >= 0: got '3' (text, not a number)")]
    for frame, message in cases:
        with pytest.raises(MlflowException) as info:
            python_model.predict(None, frame)
        assert message in info.value.message
        assert info.value.error_code == ErrorCode.Name(INVALID_PARAMETER_VALUE)
