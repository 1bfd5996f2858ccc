import pandas as pd
import pytest

from evaluation.splits import (
    default_cutoffs,
    last_n_periods,
    per_user_latest_fraction_split,
    rolling_origin_folds,
    temporal_split,
    validation_cutoff,
)


@pytest.fixture
def daily():
    # Two rows a day, 2024-01-01 00:00 and 12:00, through 2024-01-31 12:00.
    dates = pd.date_range("2024-01-01", "2024-01-31 12:00", freq="12h")
    return pd.DataFrame({"customer_id": [f"c{i % 3}" for i in range(len(dates))], "purchase_date": dates})


def test_temporal_split_never_leaks_the_test_window(daily):
    cutoff = pd.Timestamp("2024-01-20")
    history, test = temporal_split(daily, "purchase_date", cutoff)
    assert history["purchase_date"].max() < cutoff <= test["purchase_date"].min()
    assert len(history) + len(test) == len(daily)
    assert history.index.intersection(test.index).empty


def test_temporal_split_with_test_days(daily):
    history, test = temporal_split(daily, "purchase_date", "2024-01-20", test_days=3)
    # Test window [Jan 20, Jan 23): three days, two rows each; history Jan 1-19.
    assert len(test) == 6 and len(history) == 38
    assert test["purchase_date"].max() < pd.Timestamp("2024-01-23")


def test_temporal_split_errors(daily):
    with pytest.raises(ValueError, match="missing column"):
        temporal_split(daily, "order_date", "2024-01-20")
    with pytest.raises(ValueError, match="history is empty"):
        temporal_split(daily, "purchase_date", "2024-01-01")
    with pytest.raises(ValueError, match="test is empty"):
        temporal_split(daily, "purchase_date", "2024-02-01")
    with pytest.raises(ValueError, match="must be datetime"):
        temporal_split(daily.astype({"purchase_date": str}), "purchase_date", "2024-01-20")


def test_validation_cutoff_sits_inside_history(daily):
    assert validation_cutoff(daily["purchase_date"], "2024-01-20", 7) == pd.Timestamp("2024-01-13")
    with pytest.raises(ValueError, match="leaves no history: the first date is 2024-01-01"):
        validation_cutoff(daily["purchase_date"], "2024-01-20", 19)
    with pytest.raises(ValueError, match="dates is empty"):
        validation_cutoff(pd.Series([], dtype="datetime64[ns]"), "2024-01-20", 7)


def test_default_cutoffs(daily):
    # Last date Jan 31 12:00 -> midnight after it is Feb 1; minus 7 days -> Jan 25; minus 14 -> Jan 11.
    val_cutoff, test_cutoff = default_cutoffs(daily["purchase_date"], test_days=7, val_days=14)
    assert (val_cutoff, test_cutoff) == (pd.Timestamp("2024-01-11"), pd.Timestamp("2024-01-25"))
    _, test = temporal_split(daily, "purchase_date", test_cutoff)
    assert test["purchase_date"].dt.normalize().nunique() == 7
    with pytest.raises(ValueError, match="leaves no history"):
        default_cutoffs(daily["purchase_date"], test_days=20, val_days=14)


def test_per_user_latest_fraction_split():
    frame = pd.DataFrame(
        {
            # u1: 10 rows, u2: 3 rows, u3: 1 row
            "user": ["u1"] * 10 + ["u2"] * 3 + ["u3"],
            "t": list(range(10, 0, -1)) + [5, 7, 6] + [1],
        }
    )
    train, test = per_user_latest_fraction_split(frame, "user", "t", fraction=0.2)
    # u1: floor(0.2 * 10) = 2 latest (t = 10, 9); u2: floor(0.6) = 0 -> min_test 1 (t = 7); u3 stays in train.
    assert sorted(test["t"][test["user"] == "u1"]) == [9, 10]
    assert test["t"][test["user"] == "u2"].tolist() == [7]
    assert (train["user"] == "u3").sum() == 1 and "u3" not in set(test["user"])
    assert len(train) + len(test) == len(frame)
    assert train.index.is_monotonic_increasing and test.index.is_monotonic_increasing
    latest_train = train.groupby("user")["t"].max()
    earliest_test = test.groupby("user")["t"].min()
    assert (latest_train.loc[earliest_test.index] <= earliest_test).all()


def test_per_user_split_breaks_ties_by_row_order_and_keeps_one_training_row():
    frame = pd.DataFrame({"user": ["u"] * 4, "t": [1, 1, 1, 1]})
    train, test = per_user_latest_fraction_split(frame, "user", "t", fraction=0.5)
    assert test.index.tolist() == [2, 3]
    # min_test above the user's rows still leaves one training row.
    train, test = per_user_latest_fraction_split(frame, "user", "t", fraction=0.5, min_test=10)
    assert train.index.tolist() == [0]


def test_per_user_split_errors():
    frame = pd.DataFrame({"user": ["a", "b"], "t": [1, 2]})
    with pytest.raises(ValueError, match="no user in 'user' has more than one row"):
        per_user_latest_fraction_split(frame, "user", "t")
    with pytest.raises(ValueError, match="fraction must be in"):
        per_user_latest_fraction_split(frame, "user", "t", fraction=1.0)
    with pytest.raises(ValueError, match="missing column"):
        per_user_latest_fraction_split(frame, "customer_id", "t")


def test_last_n_periods():
    series = pd.Series(range(24), index=pd.period_range("2022-01", periods=24, freq="M"))
    train, test = last_n_periods(series, 6)
    assert len(train) == 18 and len(test) == 6
    assert train.index.max() < test.index.min()
    with pytest.raises(ValueError, match="n=24 test periods leave no training periods in a series of 24"):
        last_n_periods(series, 24)
    with pytest.raises(ValueError, match="increasing time order"):
        last_n_periods(series.iloc[::-1], 6)


def test_rolling_origin_folds_are_expanding_and_end_at_n_obs():
    folds = rolling_origin_folds(n_obs=30, n_folds=3, horizon=4, min_train=12)
    assert folds == [(18, 22), (22, 26), (26, 30)]
    train_ends = [train_end for train_end, _ in folds]
    assert train_ends == sorted(train_ends) and train_ends[0] >= 12
    assert all(test_end - train_end == 4 and test_end <= 30 for train_end, test_end in folds)
    assert folds[-1][1] == 30


def test_rolling_origin_folds_reject_what_does_not_fit():
    expected = r"min_train \(12\) \+ n_folds \(5\) \* horizon \(4\) = 32 exceeds n_obs \(30\)"
    with pytest.raises(ValueError, match=expected):
        rolling_origin_folds(n_obs=30, n_folds=5, horizon=4, min_train=12)
    with pytest.raises(ValueError, match="horizon must be a positive integer"):
        rolling_origin_folds(n_obs=30, n_folds=2, horizon=0, min_train=12)


def test_cold_start_groups_split_by_what_is_known_at_the_cutoff():
    from evaluation.splits import cold_start_groups

    groups = cold_start_groups(["d", "a", "b", "c"], bought_before={"a", "b", "x"}, with_demographics={"b", "c"})
    assert groups == {"warm": ["a", "b"], "cold": ["c"]}  # d: no purchase, no demographics: in neither


def test_new_products_were_never_sold_before_the_cutoff():
    from evaluation.splits import new_products

    assert new_products(["P1", "P2", "P2", "P9"], ["P1", "P3"]) == {"P2", "P9"}


def test_customer_folds_partition_the_customers_reproducibly():
    from evaluation.splits import SplitError, customer_folds

    ids = [f"C{i:02d}" for i in range(23)]
    folds = customer_folds(ids + ids[:5], n_folds=5, seed=0)
    assert sorted(c for fold in folds for c in fold) == ids  # every customer once, duplicates ignored
    assert sorted(len(fold) for fold in folds) == [4, 4, 5, 5, 5]
    assert all(fold == sorted(fold) for fold in folds)
    assert customer_folds(list(reversed(ids)), 5, 0) == customer_folds(ids, 5, 0)
    assert customer_folds(ids, 5, 1) != folds
    with pytest.raises(SplitError, match="3 customer"):
        customer_folds(["a", "b", "c"], n_folds=5)
