from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from models.recommenders.interactions import InteractionLog
from models.recommenders.itemcf import ItemCF, ItemCFScorer, item_neighbours, neighbour_lists, neighbour_matrix, similarity_matrix
from models.recommenders.popularity import PopularityRecommender, PopularityScorer, popularity_scores
from models.recommenders.engine import Recommender, rank_top_k

# 5 customers x 4 products, weighted interactions.
X = np.array([
    [1.0, 2.0, 0.0, 0.0],
    [0.0, 1.0, 1.0, 0.0],
    [3.0, 0.0, 1.0, 1.0],
    [1.0, 1.0, 1.0, 0.0],
    [0.0, 0.0, 0.0, 2.0],
])


def dense_similarity(x: np.ndarray, similarity: str, alpha: float = 0.5, shrinkage: float = 0.0) -> np.ndarray:
    """The full similarity matrix straight from the formulas, for comparison."""
    dots = x.T @ x
    sq = (x ** 2).sum(axis=0)
    if similarity == "asymmetric":
        sim = dots / np.outer(sq ** alpha, sq ** (1 - alpha))
    else:
        sim = dots / np.sqrt(np.outer(sq, sq))
    if similarity == "shrunk":
        common = (x > 0).T.astype(float) @ (x > 0).astype(float)
        sim = sim * common / (common + shrinkage)
    np.fill_diagonal(sim, 0.0)
    return sim


@pytest.mark.parametrize("similarity, alpha, shrinkage", [
    ("cosine", 0.5, 0.0), ("asymmetric", 0.8, 0.0), ("asymmetric", 0.2, 0.0), ("shrunk", 0.5, 2.0)])
def test_neighbour_lists_hold_the_formula_similarities_best_first(similarity, alpha, shrinkage):
    index, sim = item_neighbours(sparse.csr_matrix(X), similarity=similarity, alpha=alpha, shrinkage=shrinkage,
                                 n_neighbours=3)
    expected = dense_similarity(X, similarity, alpha, shrinkage)
    assert index.shape == sim.shape == (4, 3)
    for item in range(4):
        valid = index[item] < 4
        assert item not in index[item][valid]  # never its own neighbour
        np.testing.assert_allclose(sim[item][valid], expected[item, index[item][valid]])
        assert (np.diff(sim[item][valid]) <= 0).all()
        # every positive similarity is kept (3 = all other products here)
        assert set(index[item][valid].tolist()) == set(np.flatnonzero(expected[item] > 0).tolist())


def test_asymmetric_cosine_with_half_alpha_is_the_cosine():
    a = item_neighbours(sparse.csr_matrix(X), similarity="asymmetric", alpha=0.5, n_neighbours=3)
    c = item_neighbours(sparse.csr_matrix(X), similarity="cosine", n_neighbours=3)
    np.testing.assert_array_equal(a[0], c[0])
    np.testing.assert_allclose(a[1], c[1])


def test_neighbourhood_keeps_the_top_n_and_pads():
    index, sim = item_neighbours(sparse.csr_matrix(X), n_neighbours=1)
    expected = dense_similarity(X, "cosine")
    np.testing.assert_array_equal(index[:, 0], expected.argmax(axis=1))
    # product 3 is similar to product 0 and 2 only; with 3 neighbours the last slot is padding
    index, sim = item_neighbours(sparse.csr_matrix(X), n_neighbours=3)
    assert index[3].tolist()[-1] == 4 and sim[3, -1] == 0.0
    matrix = neighbour_matrix(index, sim)
    np.testing.assert_allclose(matrix.toarray(), np.where(expected > 0, expected, 0.0))


@pytest.mark.parametrize("kwargs, message", [
    ({"similarity": "jaccard"}, "similarity must be one of"),
    ({"alpha": 1.5}, "alpha must be in"),
    ({"shrinkage": -1.0}, "shrinkage must be non-negative"),
    ({"n_neighbours": 0}, "n_neighbours must be a positive"),
])
def test_bad_parameters_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        item_neighbours(sparse.csr_matrix(X), **kwargs)


def make_recommender(purchased=None, popularity=(5.0, 1.0, 3.0, 2.0), n_neighbours=3) -> Recommender:
    user_items = sparse.csr_matrix(X)
    index, sim = item_neighbours(user_items, n_neighbours=n_neighbours)
    purchased = sparse.csr_matrix(X > 0 if purchased is None else purchased)
    products = np.array(["P0", "P1", "P2", "P3"])
    scorer = ItemCFScorer(user_items, neighbour_matrix(index, sim), products, purchased)
    return Recommender(scorer, [f"C{i}" for i in range(5)], products, purchased, np.array(popularity))


def test_scores_are_history_times_similarity_for_one_and_for_all_customers():
    rec = make_recommender()
    expected = X @ dense_similarity(X, "cosine")
    batch = rec.scorer.score_users(np.arange(5))
    np.testing.assert_allclose(batch, expected)
    for user in range(5):
        np.testing.assert_allclose(rec.scorer.scores(user), expected[user])


def test_purchased_products_are_excluded_by_default():
    rec = make_recommender()
    frame = rec.recommend("C0", k=4)
    assert frame["product_id"].tolist() == ["P2", "P3"]  # P0 and P1 were bought; only two remain
    scores = X[0] @ dense_similarity(X, "cosine")
    np.testing.assert_allclose(frame["score"], [scores[2], scores[3]])
    everything = rec.recommend("C0", k=4, exclude_purchased=False)
    assert set(everything["product_id"]) == {"P0", "P1", "P2", "P3"}
    assert everything["score"].is_monotonic_decreasing
    idx, _ = rec.top_k_indices(np.arange(5), k=4)
    for user in range(5):
        assert not set(idx[user][idx[user] >= 0]) & set(np.flatnonzero(X[user] > 0))


def test_all_customer_path_equals_the_single_customer_path():
    rec = make_recommender()
    idx, vals = rec.top_k_indices(np.arange(5), k=3)
    for user in range(5):
        items, scores, _ = rec.recommend_items(f"C{user}", 3)
        kept = idx[user][idx[user] >= 0]
        np.testing.assert_array_equal(items, kept)
        np.testing.assert_allclose(scores, vals[user][: len(kept)])


def test_reason_is_the_bought_product_contributing_most():
    # C3 bought P0 and P1 only; P2 is known to C3 through a view (weight in the history, not bought)
    purchased = X > 0
    purchased[3, 2] = False
    rec = make_recommender(purchased=purchased)
    frame = rec.recommend("C3", k=4)
    assert frame["product_id"].tolist()[0] in {"P2", "P3"}
    sim = dense_similarity(X, "cosine")
    for row in frame.itertuples():
        j = int(row.product_id[1:])
        contributions = X[3] * sim[:, j]
        source = int(np.argmax(contributions))
        verb = "bought" if purchased[3, source] else "viewed"
        assert row.reason == f"because you {verb} P{source}"
    assert frame["product_id"].tolist() == ["P2", "P3"]
    assert frame["reason"].tolist() == ["because you bought P0", "because you bought P0"]
    # C1 has P1 (bought) and P2 (only viewed): P3 is linked to P2 alone
    purchased[1, 2] = False
    rec = make_recommender(purchased=purchased)
    frame = rec.recommend("C1", k=4)
    assert frame.set_index("product_id").loc["P3", "reason"] == "because you viewed P2"


def test_unknown_customer_gets_popular_products():
    rec = make_recommender()
    frame = rec.recommend("nobody", k=3)
    assert frame["product_id"].tolist() == ["P0", "P2", "P3"]
    assert frame["reason"].tolist() == ["popular"] * 3
    assert frame["rank"].tolist() == [1, 2, 3]
    assert frame["score"].tolist() == [5.0, 3.0, 2.0]


def test_products_without_evidence_fall_back_to_popularity_with_reason_popular():
    # C4 only has P3, whose neighbours are P0 and P2; P1 has no link to C4's history
    rec = make_recommender()
    frame = rec.recommend("C4", k=3)
    assert frame["product_id"].tolist()[-1] == "P1"
    assert frame["reason"].tolist()[-1] == "popular"
    assert frame["score"].tolist()[-1] == 0.0


def test_rank_top_k_breaks_ties_by_popularity_and_skips_excluded():
    scores = np.array([[1.0, 2.0, 2.0, -np.inf, 0.5], [-np.inf] * 5])
    tie_rank = np.array([0, 3, 1, 2, 4])  # product 2 is more popular than product 1
    idx, vals = rank_top_k(scores, 4, tie_rank)
    assert idx[0].tolist() == [2, 1, 0, 4]
    assert vals[0].tolist() == [2.0, 2.0, 1.0, 0.5]
    assert idx[1].tolist() == [-1, -1, -1, -1]
    idx, _ = rank_top_k(scores[:1], 10, tie_rank)  # k larger than the catalogue
    assert idx[0].tolist() == [2, 1, 0, 4, -1]


def test_save_and_load_give_the_same_recommendations(tmp_path):
    rec = make_recommender()
    loaded = Recommender.load(rec.save(tmp_path / "rec.npz"))
    assert loaded.kind == "itemcf"
    for customer in ["C0", "C2", "C4", "nobody"]:
        pd.testing.assert_frame_equal(loaded.recommend(customer, 4), rec.recommend(customer, 4))
    with np.load(tmp_path / "rec.npz", allow_pickle=False) as data:  # no pickles anywhere
        assert {"itemcf_neighbour_index", "purchased_indptr", "popularity"} <= set(data.files)


def test_itemcf_estimator_fits_from_an_interaction_log():
    dates = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(12), unit="D")
    transactions = pd.DataFrame({
        "customer_id": ["A", "A", "B", "B", "C", "C", "D", "D", "E", "E", "F", "F"],
        "product_id": ["x", "y", "x", "y", "x", "y", "z", "w", "z", "w", "x", "z"],
        "amount": 10.0, "purchase_date": dates,
    })
    log = InteractionLog.from_frames(transactions)
    model = ItemCF(n_neighbours=2)
    assert not hasattr(model, "similarity_")
    model.fit(log)
    assert model.user_items_.shape == (6, 4)
    rec = model.recommender(popularity_scores(transactions, log.product_ids))
    # G is unknown, F bought x and z: y (with x) and w (with z) come next
    assert set(rec.recommend("F", 2)["product_id"]) == {"w", "y"}
    top = rec.recommend("A", 1)
    assert top["product_id"].tolist() == ["z"]  # linked to x through F; w is linked to nothing A bought
    assert top["reason"].tolist() == ["because you bought x"]
    assert model.get_params()["n_neighbours"] == 2


def test_popularity_counts_distinct_recent_buyers():
    transactions = pd.DataFrame({
        "customer_id": ["A", "A", "B", "C", "C", "D"],
        "product_id": ["x", "x", "x", "y", "y", "z"],
        "amount": 1.0,
        "purchase_date": pd.to_datetime(["2024-01-30", "2024-01-31", "2024-01-31", "2024-01-31", "2024-01-31",
                                         "2023-06-01"]),
    })
    scores = popularity_scores(transactions, ["x", "y", "z", "never"], reference_date="2024-02-01")
    # x: 2 buyers, 3 purchases; y: 1 buyer, 2 purchases; z: 1 buyer, 1 purchase
    np.testing.assert_allclose(scores, [2 + 3 / 4, 1 + 2 / 4, 1 + 1 / 4, 0.0])
    recent = popularity_scores(transactions, ["x", "y", "z"], reference_date="2024-02-01", window_days=30)
    assert recent[2] == 0.0
    model = PopularityRecommender(window_days=30).fit(transactions, ["x", "y", "z"], reference_date="2024-02-01")
    scorer = model.scorer(n_users=2)
    assert isinstance(scorer, PopularityScorer)
    np.testing.assert_allclose(scorer.score_users(np.array([0, 1])), [recent, recent])


def test_one_row_and_many_row_ranking_agree_on_ties_and_exclusions():
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 4, size=(30, 12)).astype(float)  # many ties
    scores[rng.random(scores.shape) < 0.2] = -np.inf
    tie_rank = rng.permutation(12)
    many_idx, many_val = rank_top_k(scores, 5, tie_rank)
    for row in range(30):
        one_idx, one_val = rank_top_k(scores[row:row + 1], 5, tie_rank)
        np.testing.assert_array_equal(one_idx[0], many_idx[row])
        np.testing.assert_array_equal(one_val[0], many_val[row])
        expected = sorted((i for i in range(12) if np.isfinite(scores[row, i])),
                          key=lambda i: (-scores[row, i], tie_rank[i]))[:5]
        assert [i for i in many_idx[row] if i >= 0] == expected


def test_recency_half_life_weighs_histories_not_similarities():
    transactions = pd.DataFrame({
        "customer_id": ["A", "A", "B", "B", "C"],
        "product_id": ["x", "y", "x", "z", "y"],
        "amount": [10.0, 10.0, 10.0, 10.0, 10.0],
        "purchase_date": pd.to_datetime(["2024-01-01", "2024-01-21", "2024-01-11", "2024-01-21", "2024-01-01"]),
    })
    log = InteractionLog.from_frames(transactions, reference_date="2024-01-31")
    plain = ItemCF(n_neighbours=2).fit(log)
    recent = ItemCF(n_neighbours=2, half_life_days=10).fit(log)
    np.testing.assert_array_equal(plain.similarity_, recent.similarity_)  # 2 of 3 products: held dense
    # A bought x 30 days and y 10 days before the reference date: amounts decay to 1/8 and 1/2
    np.testing.assert_allclose(recent.user_items_[0].toarray(), [[np.log1p(10 / 8), np.log1p(10 / 2), 0.0]])
    np.testing.assert_allclose(plain.user_items_[0].toarray(), [[np.log1p(10), np.log1p(10), 0.0]])


def test_chunked_scoring_gives_the_same_lists():
    rec = make_recommender()
    whole = rec.top_k_indices(np.arange(5), k=3)
    chunked = rec.top_k_indices(np.arange(5), k=3, chunk_size=2)
    np.testing.assert_array_equal(whole[0], chunked[0])
    np.testing.assert_allclose(whole[1], chunked[1])
    lists = rec.recommend_all(["C0", "nobody", "C4"], k=2)
    assert lists["nobody"] == ["P0", "P2"]
    assert lists["C0"] == rec.recommend("C0", 2)["product_id"].tolist()


def brute_force_top(similarity: np.ndarray, width: int) -> np.ndarray:
    """Keep each row's ``width`` largest positive entries; ties at the cut to the lower column."""
    kept = np.zeros_like(similarity)
    for row in range(similarity.shape[0]):
        order = sorted(np.flatnonzero(similarity[row] > 0), key=lambda j: (-similarity[row, j], j))[:width]
        kept[row, order] = similarity[row, order]
    return kept


@pytest.mark.parametrize("n_neighbours", [1, 3, 7, 40])
def test_truncation_keeps_the_top_n_with_ties_to_the_lower_index(n_neighbours):
    rng = np.random.default_rng(3)
    binary = (rng.random((60, 25)) < 0.3).astype(float)  # 0/1 data: many equal similarities
    matrix = similarity_matrix(sparse.csr_matrix(binary), n_neighbours=n_neighbours)
    expected = brute_force_top(dense_similarity(binary, "cosine"), n_neighbours)
    np.testing.assert_allclose(matrix.toarray(), expected, rtol=1e-12, atol=0)
    as_array = similarity_matrix(sparse.csr_matrix(binary), n_neighbours=n_neighbours, dense=True)
    np.testing.assert_array_equal(as_array, matrix.toarray())
    index, sim = neighbour_lists(matrix)
    np.testing.assert_allclose(neighbour_matrix(index, sim).toarray(), expected, rtol=1e-12, atol=0)


def test_dense_and_sparse_scorers_agree_on_scores_and_reasons():
    rng = np.random.default_rng(8)
    weights = sparse.random(50, 30, density=0.15, random_state=rng, format="csr") * 4
    purchased = sparse.csr_matrix(weights > 1)  # the rest counts as viewed
    products = np.array([f"P{j}" for j in range(30)])
    matrix = similarity_matrix(weights, similarity="asymmetric", alpha=0.3, n_neighbours=12)
    dense = ItemCFScorer(weights, matrix.toarray(), products, purchased, dense=True)
    lean = ItemCFScorer(weights, matrix, products, purchased, dense=False)
    assert dense._dense is not None and lean._dense is None
    expected = weights.toarray() @ matrix.toarray()
    np.testing.assert_allclose(dense.score_users(np.arange(50)), expected, atol=1e-12)
    np.testing.assert_allclose(lean.score_users(np.arange(50)), expected, atol=1e-12)
    for user in range(50):
        np.testing.assert_allclose(dense.scores(user), expected[user], atol=1e-12)
        np.testing.assert_allclose(lean.scores(user), expected[user], atol=1e-12)
        items = np.argsort(-expected[user], kind="stable")[:6]
        assert dense.reasons(user, items) == lean.reasons(user, items)
    # the automatic choice: dense only when a third of the matrix is filled
    assert ItemCFScorer(weights, similarity_matrix(weights, n_neighbours=2), products, purchased)._dense is None
    assert ItemCFScorer(weights, similarity_matrix(weights, n_neighbours=29), products,
                        purchased)._dense is not None
