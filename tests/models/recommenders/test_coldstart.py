"""Demographic cold start: value rules, segment popularity with hierarchical smoothing, and the engine's use of it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from scipy import sparse

from models.recommenders.coldstart import (DemographicEncoder, SegmentPopularity, SegmentScorer, SegmentTable,
                                           age_labels, age_value, request_demographics, table_demographics,
                                           text_value)
from models.recommenders.engine import Recommender
from models.recommenders.popularity import PopularityScorer

PRODUCTS = np.array(["P0", "P1", "P2", "P3"])
DAY = pd.Timestamp("2024-06-01")


def shop():
    """Women buy P0 and P1, men P2; one young woman also P3; a customer outside the table buys P1."""
    customers = pd.DataFrame({"customer_id": ["w1", "w2", "w3", "m1", "m2", "x1"],
                              "gender": ["Female", "female ", "Female", "Male", "Male", None],
                              "age": [22.0, 40.0, 41.0, 30.0, np.nan, 50.0]})
    bought = [("w1", "P0"), ("w1", "P3"), ("w2", "P0"), ("w2", "P1"), ("w3", "P1"), ("w3", "P0"),
              ("m1", "P2"), ("m2", "P2"), ("m2", "P1"), ("x1", "P2"), ("stranger", "P1")]
    transactions = pd.DataFrame({"customer_id": [c for c, _ in bought], "product_id": [p for _, p in bought],
                                 "purchase_date": DAY - pd.Timedelta(days=3)})
    return customers, transactions


def fitted(attributes=("gender", "age"), strength=1.0, **kwargs) -> SegmentPopularity:
    customers, transactions = shop()
    return SegmentPopularity(attributes, strength).fit(customers, transactions, PRODUCTS, reference_date=DAY,
                                                       **kwargs)


def row_of(table: SegmentTable, **values) -> int:
    rows, _ = table.lookup({k: [v] for k, v in values.items()}, 1)
    return int(rows[0])


# --- values ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [(34, 34), (34.0, 34), (np.int64(13), 13), (110, 110), (12, None),
                                             (111, None), (500, None), (34.5, None), ("34", None), ("old", None),
                                             (True, None), (None, None), (float("nan"), None), (pd.NA, None)])
def test_age_value_is_a_whole_number_within_the_contract(value, expected):
    assert age_value(value) == expected


def test_text_value_strips_reads_integers_and_leaves_the_rest_unknown():
    assert text_value("  Female ") == "Female"
    assert text_value(94110) == "94110"
    assert text_value("   ") is None and text_value(None) is None and text_value(True) is None
    assert text_value(2.5) is None


def test_age_bands_and_labels():
    assert age_labels() == ["13-24", "25-34", "35-44", "45-54", "55+"]
    encoder = DemographicEncoder(("age",), {})
    codes = encoder.encode({"age": [13, 24, 25, 34, 35, 54, 55, 110, 12, None]}, 10)[:, 0]
    assert codes.tolist() == [1, 1, 2, 2, 3, 4, 5, 5, 0, 0]


def test_request_demographics_accepts_valid_and_missing_values():
    frame = pd.DataFrame({"customer_id": ["a", "b", "c"], "age": [34, None, 41.0],
                          "gender": ["Female", None, 7], "location": [np.nan, "Boston", "Nowhere"]})
    values = request_demographics(frame)
    assert values == {"age": [34, None, 41], "gender": ["Female", None, "7"], "location": [None, "Boston", "Nowhere"]}
    assert request_demographics(pd.DataFrame({"customer_id": ["a"]})) is None


@pytest.mark.parametrize("column, value", [("age", "old"), ("age", 500), ("age", 12), ("age", 34.5),
                                           ("age", True), ("age", "34"), ("gender", True), ("profession", 3.5),
                                           ("location", ["Boston"])])
def test_a_malformed_demographic_value_is_a_bad_request_naming_the_column(column, value):
    frame = pd.DataFrame({"customer_id": ["a", "b"], column: pd.Series([None, value], dtype=object)})
    with pytest.raises(MlflowException) as info:
        request_demographics(frame)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert f"column {column!r} in row 1" in info.value.message


def test_encoder_matches_text_without_case_or_spaces_and_unseen_values_are_unknown():
    encoder = DemographicEncoder.fit(("gender", "age"), {"gender": ["Female", "Female", "female ", "FEMALE", "Male", None]})
    assert encoder.vocab["gender"] == ["Female", "Male"]  # the most frequent spelling
    codes = encoder.encode({"gender": [" FEMALE", "Robot", None], "age": [30, 200, None]}, 3)
    assert codes.tolist() == [[1, 2], [0, 0], [0, 0]]
    assert encoder.label(codes[0]) == "Female, 25-34"
    assert encoder.label([0, 2]) == "25-34" and encoder.label([0, 0]) == ""
    assert encoder.encode({}, 2).tolist() == [[0, 0], [0, 0]]


def test_table_demographics_follows_the_requested_ids():
    customers, _ = shop()
    values = table_demographics(customers, ["m1", "nobody", "w2"])
    assert values["gender"] == ["Male", None, "female "] and values["age"] == [30.0, None, 40.0]


# --- segment popularity --------------------------------------------------------------------------------


def test_segment_rows_are_smoothed_towards_their_parents_by_hand():
    model = fitted(strength=2.0)
    table = model.table_
    # 11 distinct pairs in all: P0 3, P1 4, P2 3, P3 1
    np.testing.assert_allclose(table.table[0], [3 / 11, 4 / 11, 3 / 11, 1 / 11], rtol=1e-6)
    # Female (w1, w2, w3; "female " is the same value): P0 3, P1 2, P3 1 -> (n + 2 * global) / (6 + 2)
    female = row_of(table, gender="Female")
    expected_female = (np.array([3, 2, 0, 1]) + 2 * table.table[0]) / 8
    np.testing.assert_allclose(table.table[female], expected_female, rtol=1e-6)
    # Female, 35-44 (w2, w3): P0 2, P1 2 -> towards Female, not towards the global row
    row = row_of(table, gender="Female", age=40)
    np.testing.assert_allclose(table.table[row], (np.array([2, 2, 0, 0]) + 2 * expected_female) / 6, rtol=1e-6)
    # age known, gender unknown: 35-44 alone -> towards the global row
    row = row_of(table, age=40)
    np.testing.assert_allclose(table.table[row], (np.array([2, 2, 0, 0]) + 2 * table.table[0]) / 6, rtol=1e-6)
    # an empty segment (Male, 13-24) is its parent (Male)
    assert np.allclose(table.table[row_of(table, gender="Male", age=20)], table.table[row_of(table, gender="Male")])
    np.testing.assert_allclose(table.table.sum(axis=1), 1.0, rtol=1e-5)


def test_strength_moves_a_segment_from_its_own_shares_to_global_popularity():
    model = fitted()
    female = row_of(model.table_, gender="Female")
    own = np.array([3, 2, 0, 1]) / 6
    np.testing.assert_allclose(model.smoothed(1e-6).table[female], own, atol=1e-5)
    np.testing.assert_allclose(model.smoothed(1e9).table[female], model.table_.table[0], atol=1e-5)
    with pytest.raises(ValueError, match="strength"):
        model.smoothed(0)


def test_cut_customers_take_no_part():
    full, cut = fitted(), fitted(exclude_customers=["w1"])
    assert full.counts_[0].sum() == 11 and cut.counts_[0].sum() == 9  # w1's two pairs are gone
    assert cut.counts_[0][3] == 0


def test_table_round_trips_through_arrays():
    table = fitted(("gender", "age", "profession")).table_
    again = SegmentTable.from_arrays(table.to_arrays())
    assert again.attributes == ("gender", "age", "profession")
    np.testing.assert_array_equal(again.table, table.table)
    values = {"gender": ["male"], "age": [61], "profession": ["Teacher"]}
    assert again.lookup(values, 1)[0].tolist() == table.lookup(values, 1)[0].tolist()
    assert again.lookup(values, 1)[1] == ["Male, 55+"]  # no profession in the table's vocabulary
    assert SegmentTable.from_arrays({"kind": np.array("itemcf")}) is None


# --- the engine ------------------------------------------------------------------------------------


def engine(segments: SegmentTable | None) -> Recommender:
    customers = np.array(["w1", "m1"])
    purchased = sparse.csr_matrix(np.array([[1, 0, 0, 1], [0, 0, 1, 0]], dtype=bool))
    popularity = np.array([3.0, 4.0, 3.0, 1.0])
    scorer = PopularityScorer(popularity, 2)
    return Recommender(scorer, customers, PRODUCTS, purchased, popularity, segments=segments)


def test_unknown_customers_get_their_segment_and_known_ones_ignore_demographics(tmp_path):
    table = fitted(strength=2.0).table_
    rec = Recommender.load(engine(table).save(tmp_path / "rec.npz"))  # through the .npz
    ids = ["new-woman", "new-nobody", "w1", "new-unseen"]
    values = {"gender": ["Female", None, "Male", "Robot"], "age": [22, None, 70, None]}
    frame = rec.recommend_frame(ids, 2, demographics=values)
    woman = frame[frame["customer_id"] == "new-woman"]
    expected = np.argsort(-table.table[row_of(table, gender="Female", age=22)].astype(float), kind="stable")[:2]
    assert woman["product_id"].tolist() == PRODUCTS[expected].tolist()
    assert woman["score"].tolist() == pytest.approx(table.table[row_of(table, gender="Female", age=22)][expected])
    assert set(woman["reason"]) == {"popular with customers like you (Female, 13-24)"}
    plain = rec.recommend_frame(ids, 2)
    for customer in ("new-nobody", "new-unseen", "w1"):  # no known attribute, or a known customer: as before
        pd.testing.assert_frame_equal(frame[frame["customer_id"] == customer].reset_index(drop=True),
                                      plain[plain["customer_id"] == customer].reset_index(drop=True))
    assert set(plain.loc[plain["customer_id"] == "new-woman", "reason"]) == {"popular"}
    # the vectorised path (training's) agrees
    lists = rec.recommend_all(ids, 2, demographics=values)
    assert lists["new-woman"] == woman["product_id"].tolist() and lists["w1"] == rec.recommend_all(["w1"], 2)["w1"]


def test_a_model_without_a_segment_table_answers_popular_whatever_is_sent():
    rec = engine(None)
    frame = rec.recommend_frame(["new"], 3, demographics={"gender": ["Female"], "age": [30]})
    assert frame["reason"].tolist() == ["popular"] * 3
    assert frame["product_id"].tolist() == PRODUCTS[rec.popular(3)].tolist()
    assert not any(key.startswith("demo_") for key in rec.to_arrays())


def test_segment_scorer_is_the_segment_baseline_for_known_customers():
    table = fitted().table_
    scorer = SegmentScorer.for_customers(table, {"gender": ["Female", "Male"], "age": [22, 30]}, 2)
    np.testing.assert_allclose(scorer.score_users(np.array([0, 1])),
                               table.table[[row_of(table, gender="Female", age=22), row_of(table, gender="Male", age=30)]])
    assert scorer.reasons(1, np.array([0])) == ["popular with customers like you (Male, 25-34)"]
