"""Content similarity of products and the content blend the engine applies to any family's scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from models.recommenders.content import (ContentBlend, content_similarity, normalise_rows, price_bands,
                                         product_features)
from models.recommenders.engine import Recommender
from models.recommenders.itemcf import ItemCFScorer, similarity_matrix
from models.recommenders.svdpp import FactorScorer

IDS = np.array(["P0", "P1", "P2", "P3", "P4"])
PRODUCTS = pd.DataFrame({
    "product_id": IDS,
    "category": ["Electronics", "Electronics", "Electronics", "Books", "Books"],
    "subcategory": ["Laptops", "Laptops", "Cameras", "Fiction", "Fiction"],
    "base_price": [1000.0, 900.0, 300.0, 10.0, 12.0],
    "product_name": ["Aurora Laptops A1", "Aurora Laptops B2", "Nimbus Cameras C3", "Atlas Fiction D4",
                     "Atlas Fiction E5"],
})


def dense(matrix) -> np.ndarray:
    return np.asarray(matrix.toarray() if sparse.issparse(matrix) else matrix)


def test_price_bands_are_quantiles_within_each_group():
    bands = price_bands(np.array([1, 2, 3, 4, 5, 100, 200, np.nan]), np.array(list("aaaaabbb")))
    assert bands.tolist() == [0, 1, 2, 3, 4, 2, 4, -1]


def test_same_category_subcategory_and_band_are_most_similar():
    features = product_features(PRODUCTS, IDS, w_subcategory=1.0, w_price=0.0)
    sim = dense(content_similarity(features, n_neighbours=4))
    assert sim[3, 4] == pytest.approx(1.0) and sim[0, 1] == pytest.approx(1.0)
    assert sim[0, 2] == pytest.approx(0.5)  # category shared, subcategory not: 1 / (sqrt 2 * sqrt 2)
    assert sim[0, 3] == 0.0 and np.all(np.diag(sim) == 0)
    np.testing.assert_allclose(np.sqrt(features.multiply(features).sum(axis=1)).A.ravel(), 1.0)


def test_name_tokens_shared_by_few_products_count_and_one_off_tokens_do_not():
    plain = dense(content_similarity(product_features(PRODUCTS, IDS, w_subcategory=0.0, w_price=0.0), 4))
    named = dense(content_similarity(product_features(PRODUCTS, IDS, w_subcategory=0.0, w_price=0.0,
                                                      w_name=1.0), 4))
    assert plain[0, 1] == pytest.approx(plain[0, 2])  # category only
    assert named[0, 1] > named[0, 2]  # "aurora" and "laptops" are shared by P0 and P1; "nimbus" by nobody else


def test_missing_columns_and_products_leave_zero_rows():
    features = product_features(PRODUCTS[["product_id", "category"]].iloc[:3], IDS)
    assert features.shape[0] == 5 and features[3:].nnz == 0
    assert dense(content_similarity(features, 2))[0, 1] == pytest.approx(1.0)


def test_normalisations_by_hand():
    scores = np.array([[2.0, 0.0, 1.0], [-1.0, 1.0, 3.0], [5.0, 5.0, 5.0]])
    np.testing.assert_allclose(normalise_rows(scores, "max"), [[1, 0, 0.5], [0, 0.5, 1], [1, 1, 1]])
    z = normalise_rows(scores, "z")
    np.testing.assert_allclose(z[0], (scores[0] - 1) / np.std(scores[0]))
    np.testing.assert_allclose(z[2], 0.0)
    with pytest.raises(ValueError, match="normalisation"):
        normalise_rows(scores, "rank")


def test_blend_by_hand_and_its_limits():
    similarity = content_similarity(product_features(PRODUCTS, IDS, w_subcategory=1.0, w_price=0.0), 4)
    blend = ContentBlend(similarity, 0.5, "max")
    base = np.array([[2.0, 0.0, 1.0, 0.0, 0.0]])
    bought_p3 = sparse.csr_matrix(np.array([[0, 0, 0, 1, 0]], dtype=bool))
    content = dense(similarity)[3]  # P4: 1, the rest 0
    expected = 0.5 * np.array([1, 0, 0.5, 0, 0]) + 0.5 * content / content.max()
    np.testing.assert_allclose(blend.apply(base, bought_p3), [expected])
    for weight in (0.0, 1.5):
        with pytest.raises(ValueError, match="weight"):
            ContentBlend(similarity, weight)
    again = ContentBlend.from_arrays(blend.to_arrays())
    np.testing.assert_allclose(dense(again.similarity), dense(similarity))
    assert (again.weight, again.normalisation) == (0.5, "max")


def itemcf_engine(blend: ContentBlend | None) -> Recommender:
    """Four customers; nobody bought P4 (a new product); customer C0 bought P3 and P0."""
    x = sparse.csr_matrix(np.array([[1, 0, 0, 2, 0], [1, 1, 0, 0, 0], [0, 1, 1, 0, 0], [0, 0, 1, 1, 0]], float))
    purchased = sparse.csr_matrix(x > 0)
    scorer = ItemCFScorer(x, similarity_matrix(x, n_neighbours=3), IDS, purchased)
    popularity = np.asarray(purchased.sum(axis=0)).ravel().astype(float)
    return Recommender(scorer, [f"C{i}" for i in range(4)], IDS, purchased, popularity, blend=blend)


def test_the_blend_recommends_a_new_product_with_a_content_reason(tmp_path):
    plain = itemcf_engine(None)
    assert "P4" not in plain.recommend_all(["C0"], 2)["C0"]  # no purchase, no CF score
    similarity = content_similarity(product_features(PRODUCTS, IDS, w_subcategory=1.0, w_price=0.0), 4)
    rec = Recommender.load(itemcf_engine(ContentBlend(similarity, 0.6, "max")).save(tmp_path / "rec.npz"))
    frame = rec.recommend_frame(["C0"], 2)
    assert frame["product_id"].tolist() == ["P1", "P4"]
    assert frame["reason"].tolist() == ["similar to P0 you bought", "similar to P3 you bought"]
    # max-normalised over the whole row before purchases are excluded: P0 (bought, 1.2649) is the maximum
    assert frame["score"].tolist() == pytest.approx([0.4 * 0.5 / 1.26491106 + 0.6, 0.6])
    light = itemcf_engine(ContentBlend(similarity, 0.3, "max")).recommend_frame(["C0"], 3).set_index("product_id")
    assert light.loc["P2", "reason"] == "because you bought P3"  # the family's reason where its term leads
    assert light.loc["P4", "reason"] == "similar to P3 you bought"
    # the vectorised path (training's) ranks as the single-customer path (serving's)
    for customer in rec.customer_ids:
        items, scores, _ = rec.recommend_items(customer, 3)
        (vector_items, vector_scores), = rec.top_k_all([customer], 3)
        assert vector_items.tolist() == items.tolist()
        np.testing.assert_allclose(vector_scores, scores)


def test_customers_without_purchases_keep_the_family_ranking():
    similarity = content_similarity(product_features(PRODUCTS, IDS), 4)
    x = sparse.csr_matrix(np.array([[1, 0, 0, 2, 0], [0, 0, 0, 0, 0]], float))
    factors = FactorScorer(0.0, np.zeros(2), np.array([0.3, -0.2, 0.1, 0.0, -0.5]), np.ones((5, 2)),
                           np.array([[0.1, 0.2], [0.3, -0.1]]))
    purchased = sparse.csr_matrix(x > 0)
    plain = Recommender(factors, ["C0", "C1"], IDS, purchased, np.ones(5))
    blended = plain.with_parts(blend=ContentBlend(similarity, 0.8, "z"))
    assert blended.recommend_all(["C1"], 5) == plain.recommend_all(["C1"], 5)
    assert blended.recommend_all(["C0"], 3) != plain.recommend_all(["C0"], 3)
    assert blended.with_parts(blend=None).recommend_all(["C0"], 3) == plain.recommend_all(["C0"], 3)
