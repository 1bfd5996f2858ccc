from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from models.recommenders.interactions import InteractionLog, build_interactions, decay_factors

REF = pd.Timestamp("2024-03-01")


def tx(rows):
    return pd.DataFrame(rows, columns=["customer_id", "product_id", "amount", "purchase_date"]).assign(
        purchase_date=lambda d: pd.to_datetime(d["purchase_date"]))


def ev(rows):
    return pd.DataFrame(rows, columns=["customer_id", "product_id", "event_type", "event_date"]).assign(
        event_date=lambda d: pd.to_datetime(d["event_date"]))


TRANSACTIONS = tx([
    ("C1", "P1", 10.0, "2024-02-01"),
    ("C1", "P1", 20.0, "2024-02-10"),
    ("C2", "P2", 5.0, "2024-02-20"),
    ("C2", "P3", 7.0, "2024-03-05"),  # on/after the reference date: ignored
])
EVENTS = ev([
    ("C1", "P2", "product_view", "2024-02-11"),
    ("C1", "P2", "product_view", "2024-02-12"),
    ("C1", "P2", "product_view", "2024-02-13"),
    ("C1", "P2", "add_to_cart", "2024-02-13"),
    ("C1", "P3", "page_view", "2024-02-13"),  # never weighted
    ("C3", "P3", "product_view", "2024-02-25"),  # a customer who only browsed
])


def dense(matrix):
    return matrix.toarray()


def test_purchases_are_log1p_of_the_amount_spent_per_pair():
    matrix, customers, products = build_interactions(TRANSACTIONS, reference_date=REF)
    assert isinstance(matrix, sparse.csr_matrix)
    assert customers.tolist() == ["C1", "C2"]
    assert products.tolist() == ["P1", "P2"]  # P3 was bought only on the reference date
    np.testing.assert_allclose(dense(matrix), [[np.log1p(30.0), 0.0], [0.0, np.log1p(5.0)]])


def test_event_weights_add_log1p_counts_per_type():
    matrix, customers, products = build_interactions(
        TRANSACTIONS, EVENTS, reference_date=REF, event_weights={"product_view": 0.5, "add_to_cart": 1.0})
    assert customers.tolist() == ["C1", "C2", "C3"]
    assert products.tolist() == ["P1", "P2", "P3"]
    expected = np.zeros((3, 3))
    expected[0, 0] = np.log1p(30.0)
    expected[0, 1] = 0.5 * np.log1p(3) + 1.0 * np.log1p(1)
    expected[1, 1] = np.log1p(5.0)
    expected[2, 2] = 0.5 * np.log1p(1)
    np.testing.assert_allclose(dense(matrix), expected)


def test_events_without_weights_leave_rows_empty_but_indexed():
    log = InteractionLog.from_frames(TRANSACTIONS, EVENTS, reference_date=REF)
    matrix = log.matrix()
    assert log.customer_ids.tolist() == ["C1", "C2", "C3"]
    assert matrix.nnz == 2
    assert matrix[2].nnz == 0
    assert matrix.data.min() > 0  # no explicit zeros


def test_recency_half_life_halves_an_amount_per_half_life():
    rows = tx([("C1", "P1", 100.0, "2024-02-20"), ("C1", "P2", 100.0, "2024-02-29")])
    matrix, _, _ = build_interactions(rows, reference_date=REF, half_life_days=10)
    np.testing.assert_allclose(dense(matrix), [[np.log1p(50.0), np.log1p(100.0 * 0.5 ** 0.1)]])
    assert decay_factors(np.array([0.0, 10.0, 20.0]), 10).tolist() == [1.0, 0.5, 0.25]
    np.testing.assert_array_equal(decay_factors(np.array([3.0]), None), [1.0])


def test_given_catalogue_fixes_columns_and_drops_unknown_products():
    catalogue = ["P0", "P1", "P2"]
    log = InteractionLog.from_frames(
        pd.concat([TRANSACTIONS, tx([("C1", "P9", 50.0, "2024-02-02")])]), reference_date=REF,
        product_ids=catalogue)
    assert log.product_ids.tolist() == catalogue
    np.testing.assert_allclose(dense(log.matrix()), [[0.0, np.log1p(30.0), 0.0], [0.0, 0.0, np.log1p(5.0)]])


def test_returns_netting_to_nothing_leave_no_interaction():
    rows = tx([("C1", "P1", 40.0, "2024-02-01"), ("C1", "P1", -40.0, "2024-02-03"), ("C1", "P2", 9.0, "2024-02-04")])
    log = InteractionLog.from_frames(rows, reference_date=REF)
    np.testing.assert_allclose(dense(log.matrix()), [[0.0, np.log1p(9.0)]])
    np.testing.assert_array_equal(dense(log.purchased()), [[True, True]])  # still bought (for exclusion)


def test_purchased_marks_bought_pairs_only():
    log = InteractionLog.from_frames(TRANSACTIONS, EVENTS, reference_date=REF)
    purchased = log.purchased()
    assert purchased.dtype == bool
    np.testing.assert_array_equal(dense(purchased), [[True, False, False], [False, True, False], [False, False, False]])


def test_reference_date_defaults_to_the_day_after_the_last_row():
    log = InteractionLog.from_frames(TRANSACTIONS)
    assert log.reference_date == pd.Timestamp("2024-03-06")
    assert log.product_ids.tolist() == ["P1", "P2", "P3"]


@pytest.mark.parametrize("weights, message", [
    ({"page_view": 1.0}, "only product_view, add_to_cart"),
    ({"product_view": -1.0}, "non-negative"),
])
def test_bad_event_weights_are_named(weights, message):
    log = InteractionLog.from_frames(TRANSACTIONS, EVENTS, reference_date=REF)
    with pytest.raises(ValueError, match=message):
        log.matrix(event_weights=weights)


def test_bad_half_life_and_missing_columns_are_named():
    with pytest.raises(ValueError, match="half_life_days must be positive"):
        InteractionLog.from_frames(TRANSACTIONS, reference_date=REF).matrix(half_life_days=0)
    with pytest.raises(ValueError, match="transactions lack column 'amount'"):
        InteractionLog.from_frames(TRANSACTIONS.drop(columns="amount"))
    with pytest.raises(ValueError, match="events lack column 'event_type'"):
        InteractionLog.from_frames(TRANSACTIONS, EVENTS.drop(columns="event_type"))


def test_the_log_keeps_compact_codes_not_strings():
    log = InteractionLog.from_frames(TRANSACTIONS, EVENTS, reference_date=REF)
    assert log.tx_user.dtype == np.int32 and log.tx_item.dtype == np.int32
    assert log.ev_user.dtype == np.int32 and log.ev_item.dtype == np.int32
    assert log.ev_type.dtype == np.int8
    assert log.ev_type.tolist() == [0, 0, 0, 1, 0]  # product_view, add_to_cart; page_view rows are not kept
    only_carts = log.matrix(event_weights={"add_to_cart": 2.0}).toarray()
    assert only_carts[0, 1] == pytest.approx(2.0 * np.log1p(1)) and only_carts[2].sum() == 0.0


def test_a_log_at_an_earlier_date_equals_the_log_built_at_that_date():
    later = InteractionLog.from_frames(TRANSACTIONS, EVENTS, reference_date=REF, product_ids=["P1", "P2", "P3"])
    for earlier in ("2024-02-12", "2024-02-13", "2024-02-21", "2024-01-01"):
        derived = later.before(earlier)
        direct = InteractionLog.from_frames(TRANSACTIONS, EVENTS, reference_date=earlier, product_ids=["P1", "P2", "P3"])
        assert derived.customer_ids.tolist() == direct.customer_ids.tolist(), earlier
        assert derived.reference_date == direct.reference_date
        for weights in (None, {"product_view": 0.5, "add_to_cart": 1.0}):
            for half_life in (None, 10.0):
                np.testing.assert_allclose(derived.matrix(half_life, weights).toarray(),
                                           direct.matrix(half_life, weights).toarray(), rtol=1e-12)
        assert (derived.purchased() != direct.purchased()).nnz == 0
    with pytest.raises(ValueError, match="after the log's"):
        later.before("2024-04-01")
