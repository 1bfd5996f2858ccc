from __future__ import annotations

import numpy as np
import pytest

from models.recommenders.engine import Recommender
from models.recommenders.svdpp import FactorScorer, SVDppRecommender, in_sorted, sample_negatives, surprise_trainset


@pytest.fixture(scope="module")
def triples():
    """60 users x 40 items with a rank-3 taste structure; user 7 and item 39 have no ratings."""
    rng = np.random.default_rng(0)
    n_users, n_items = 60, 40
    taste, traits = rng.normal(size=(n_users, 3)), rng.normal(size=(n_items, 3))
    pairs = np.unique(np.c_[rng.integers(0, n_users, 900), rng.integers(0, n_items - 1, 900)], axis=0)
    pairs = pairs[pairs[:, 0] != 7]
    ratings = 3 + (taste[pairs[:, 0]] * traits[pairs[:, 1]]).sum(axis=1) + rng.normal(0, 0.3, len(pairs))
    return pairs[:, 0], pairs[:, 1], ratings, n_users, n_items


@pytest.mark.parametrize("objective", ["rmse", "precision"])
def test_factor_scorer_reproduces_surprise_estimates(triples, objective):
    users, items, ratings, n_users, n_items = triples
    model = SVDppRecommender(n_factors=6, n_epochs=8, objective=objective, neg_ratio=1.5, random_state=3)
    model.fit(users, items, ratings, n_users=n_users, n_items=n_items)
    # known pairs, an unknown user (7), an unknown item (39), an unrated but known combination
    query_users = np.array([0, 1, 7, 12, 33, 59, 7])
    query_items = np.array([2, 39, 5, 0, 17, 38, 39])
    surprise = np.array([model.algo_.predict(int(u), int(i), clip=False).est
                         for u, i in zip(query_users, query_items)])
    ours = model.predict(query_users, query_items, clip=False)
    np.testing.assert_allclose(ours, surprise, rtol=0, atol=1e-9)
    full = model.scorer_.scores(12)
    assert full.shape == (n_items,)
    assert full[0] == pytest.approx(surprise[3], abs=1e-9)
    np.testing.assert_allclose(model.scorer_.score_users(np.array([12, 0])), np.vstack([full, model.scorer_.scores(0)]))
    low, high = model.rating_range_
    clipped = model.predict(query_users, query_items)
    np.testing.assert_allclose(clipped, np.clip(surprise, low, high))
    surprise_clipped = [model.algo_.predict(int(u), int(i)).est for u, i in zip(query_users, query_items)]
    np.testing.assert_allclose(clipped, surprise_clipped, atol=1e-9)


def test_rmse_training_learns_the_ratings(triples):
    users, items, ratings, n_users, n_items = triples
    model = SVDppRecommender(n_factors=6, n_epochs=40, lr_all=0.01, reg_all=0.05, random_state=0)
    model.fit(users, items, ratings, n_users=n_users, n_items=n_items)
    train_rmse = float(np.sqrt(np.mean((model.predict(users, items) - ratings) ** 2)))
    assert model.n_negatives_ == 0
    assert train_rmse < 0.6 * float(np.std(ratings))


def test_precision_objective_adds_only_unobserved_negatives(triples):
    users, items, ratings, n_users, n_items = triples
    model = SVDppRecommender(n_factors=4, n_epochs=2, objective="precision", neg_ratio=2.0, positive="binary",
                             random_state=5).fit(users, items, ratings, n_users=n_users, n_items=n_items)
    trainset = model.algo_.trainset
    observed = set(zip(users.tolist(), items.tolist()))
    negatives = [(trainset.to_raw_uid(u), trainset.to_raw_iid(i)) for u, i, r in trainset.all_ratings() if r == 0.0]
    positives = [(trainset.to_raw_uid(u), trainset.to_raw_iid(i)) for u, i, r in trainset.all_ratings() if r == 1.0]
    assert len(negatives) == model.n_negatives_ > 0
    assert not observed & set(negatives)
    assert set(positives) == observed
    assert trainset.n_ratings == len(observed) + model.n_negatives_


def test_sample_negatives_are_unobserved_distinct_and_sized_per_user():
    rng = np.random.default_rng(1)
    n_items = 12
    users = np.array([0, 0, 0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 4])
    items = np.array([0, 1, 2, 5, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11])
    neg_users, neg_items = sample_negatives(users, items, n_items, 2.0, rng)
    observed = set(zip(users.tolist(), items.tolist()))
    drawn = list(zip(neg_users.tolist(), neg_items.tolist()))
    assert not observed & set(drawn)
    assert len(set(drawn)) == len(drawn)
    # user 0: 3 observed -> 6; user 1: 2; user 2 has 10 of 12 items -> only 2 left; user 3: none; user 4: 2
    assert np.bincount(neg_users, minlength=5).tolist() == [6, 2, 2, 0, 2]
    assert sorted(i for u, i in drawn if u == 2) == [10, 11]


def test_sample_negatives_follow_item_weights():
    rng = np.random.default_rng(2)
    users = np.repeat(np.arange(400), 2)
    items = np.tile([0, 1], 400)
    weights = np.array([1.0, 1.0, 0.0, 1.0, 3.0, 0.0])
    neg_users, neg_items = sample_negatives(users, items, 6, 0.5, rng, item_weights=weights)
    counts = np.bincount(neg_items, minlength=6)
    assert counts[[0, 1, 2, 5]].tolist() == [0, 0, 0, 0]  # observed or zero weight
    assert counts.sum() == 400  # one per user
    assert 2.2 < counts[4] / counts[3] < 4.0  # item 4 is drawn three times as often as item 3
    neg_users, neg_items = sample_negatives(users, items, 6, 5.0, rng, item_weights=weights)
    assert np.bincount(neg_items, minlength=6).tolist() == [0, 0, 0, 400, 400, 0]  # capped at what is drawable
    with pytest.raises(ValueError, match="neg_ratio"):
        sample_negatives(users, items, 6, -1.0, rng)


def test_scorer_arrays_round_trip_through_the_recommender_npz(triples, tmp_path):
    users, items, ratings, n_users, n_items = triples
    labels = np.array(["Books", "Beauty"] * (n_items // 2))
    model = SVDppRecommender(n_factors=5, n_epochs=5, random_state=0).fit(
        users, items, ratings, n_users=n_users, n_items=n_items, item_labels=labels)
    purchased = np.zeros((n_users, n_items), dtype=bool)
    purchased[users, items] = True
    engine = Recommender(model.scorer_, [f"c{u}" for u in range(n_users)], [f"p{i}" for i in range(n_items)],
                         purchased, np.bincount(items, minlength=n_items).astype(float))
    loaded = Recommender.load(engine.save(tmp_path / "svdpp.npz"))
    assert isinstance(loaded.scorer, FactorScorer)
    np.testing.assert_array_equal(loaded.scorer.scores(3), model.scorer_.scores(3))
    top = loaded.recommend("c3", 5)
    assert top["product_id"].tolist() == engine.recommend("c3", 5)["product_id"].tolist()
    bought = {f"p{i}" for i in items[users == 3]}
    assert not bought & set(top["product_id"])
    # the loaded scorer reads the engine's purchase history: "taste" only for categories already bought
    bought_labels = {labels[i] for i in items[users == 3]}
    expected = [f"matches your taste in {label}" if label in bought_labels
                else f"customers with similar taste buy this ({label})"
                for label in (labels[int(p[1:])] for p in top["product_id"])]
    assert top["reason"].tolist() == expected
    np.testing.assert_allclose(top["score"], np.sort(model.scorer_.scores(3)[[int(p[1:]) for p in top["product_id"]]])[::-1])


def test_reasons_name_the_category_and_whether_the_customer_bought_from_it():
    scorer = FactorScorer(0.0, np.zeros(2), np.zeros(3), np.zeros((3, 1)), np.zeros((2, 1)),
                          item_labels=["Books", "Beauty", "Books"])
    assert scorer.reasons(0, np.array([1, 2])) == ["matches your taste in Beauty", "matches your taste in Books"]
    history = np.array([[True, False, False], [False, False, False]])
    with_history = scorer.with_history(history)
    assert with_history.reasons(0, np.array([1, 2])) == ["customers with similar taste buy this (Beauty)",
                                                         "matches your taste in Books"]
    assert with_history.reasons(1, np.array([0])) == ["customers with similar taste buy this (Books)"]
    with pytest.raises(ValueError, match=r"history has shape \(1, 3\), expected \(2, 3\)"):
        scorer.with_history(history[:1])


def test_reasons_without_labels_give_the_predicted_score(triples):
    users, items, ratings, n_users, n_items = triples
    model = SVDppRecommender(n_factors=3, n_epochs=3, random_state=0).fit(users, items, ratings)
    scores = model.scorer_.scores(4)
    assert model.scorer_.reasons(4, np.array([1, 2])) == [f"predicted score {scores[1]:.2f}",
                                                          f"predicted score {scores[2]:.2f}"]


@pytest.mark.parametrize("kwargs, message", [
    ({"objective": "ndcg"}, "objective must be one of rmse, precision"),
    ({"n_factors": 0}, "n_factors must be a positive integer"),
    ({"lr_all": float("nan")}, "lr_all must be a non-negative number"),
    ({"positive": "yes"}, "positive must be one of rating, binary"),
])
def test_bad_parameters_are_named(triples, kwargs, message):
    users, items, ratings, *_ = triples
    with pytest.raises(ValueError, match=message):
        SVDppRecommender(**kwargs).fit(users, items, ratings)


def test_bad_triples_are_named():
    with pytest.raises(ValueError, match=r"pair \(user 1, item 2\) is given more than once"):
        SVDppRecommender().fit(np.array([1, 1]), np.array([2, 2]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="item index 5 is outside n_items=3"):
        SVDppRecommender().fit(np.array([0]), np.array([5]), np.array([1.0]), n_items=3)
    with pytest.raises(ValueError, match="users must be integer indices"):
        SVDppRecommender().fit(np.array(["a"]), np.array([0]), np.array([1.0]))


def test_reg_yj_reaches_surprise_and_shrinks_the_implicit_factors(triples):
    users, items, ratings, n_users, n_items = triples
    common = dict(n_factors=4, n_epochs=15, objective="precision", neg_ratio=1.0, random_state=2)
    loose = SVDppRecommender(**common).fit(users, items, ratings, n_users=n_users, n_items=n_items)
    tight = SVDppRecommender(**common, reg_yj=5.0).fit(users, items, ratings, n_users=n_users, n_items=n_items)
    assert loose.algo_.reg_yj == loose.algo_.reg_pu == 0.02
    assert tight.algo_.reg_yj == 5.0 and tight.algo_.reg_pu == 0.02
    assert np.abs(tight.algo_.yj).mean() < 0.5 * np.abs(loose.algo_.yj).mean()
    np.testing.assert_allclose(tight.predict([0, 3], [1, 2], clip=False),
                               [tight.algo_.predict(0, 1, clip=False).est, tight.algo_.predict(3, 2, clip=False).est],
                               atol=1e-9)


def test_surprise_trainset_is_the_one_surprise_builds_from_a_frame(triples):
    import pandas as pd
    from surprise import Dataset, Reader, SVDpp

    users, items, ratings, _, _ = triples
    order = np.random.default_rng(5).permutation(len(users))  # first appearance decides the inner ids
    users, items, ratings = users[order], items[order], ratings[order]
    scale = (float(ratings.min()), float(ratings.max()))
    theirs = Dataset.load_from_df(pd.DataFrame({"u": users, "i": items, "r": ratings}),
                                  Reader(rating_scale=scale)).build_full_trainset()
    ours = surprise_trainset(users, items, ratings, scale)
    assert dict(ours.ur) == dict(theirs.ur) and dict(ours.ir) == dict(theirs.ir)
    assert ours._raw2inner_id_users == theirs._raw2inner_id_users
    assert ours._raw2inner_id_items == theirs._raw2inner_id_items
    assert (ours.n_users, ours.n_items, ours.n_ratings, ours.rating_scale) == \
        (theirs.n_users, theirs.n_items, theirs.n_ratings, theirs.rating_scale)
    assert ours.global_mean == theirs.global_mean
    fitted = [SVDpp(n_factors=4, n_epochs=3, random_state=2).fit(t) for t in (ours, theirs)]
    for name in ("bu", "bi", "pu", "qi", "yj"):
        assert np.array_equal(getattr(fitted[0], name), getattr(fitted[1], name)), name


def test_in_sorted_is_isin_for_sorted_values():
    rng = np.random.default_rng(4)
    values = rng.integers(-5, 60, 500)
    for pool in (np.unique(rng.integers(0, 50, 30)), np.array([7]), np.array([], dtype=np.int64)):
        assert np.array_equal(in_sorted(values, pool), np.isin(values, pool))
    assert in_sorted(np.array([], dtype=np.int64), np.array([1, 2])).shape == (0,)
