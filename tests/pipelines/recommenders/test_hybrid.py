"""The cold start and the content blend chosen on validation, and the test metrics by customer segment."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from evaluation.metrics import precision_at_k
from models.recommenders.itemcf import ItemCF
from pipelines.data.tables import dataset_digest
from pipelines.recommenders import hybrid
from pipelines.recommenders.training import RecommenderData, load_recommender_data, popularity_baseline

K = 10


@pytest.fixture(scope="module")
def shop(shop_folder):
    data = load_recommender_data(shop_folder(customers=600, products=60, years=3, seed=1))
    return data, popularity_baseline(data, K)


@pytest.fixture(scope="module")
def strong_shop(tmp_path_factory):
    """A shop whose customers' gender and age tell much more about what they buy (the generator's option)."""
    from pipelines.data.synthetic import generate_shop
    from pipelines.data.tables import write_tables

    tables, _ = generate_shop(customers=1500, products=60, years=2, seed=3, demographic_strength=4)
    folder = tmp_path_factory.mktemp("strong-shop")
    write_tables(tables, folder)
    data = load_recommender_data(folder)
    return data, popularity_baseline(data, K)


def with_tables(data, **tables) -> RecommenderData:
    """``data`` with some tables replaced: a new digest (the data's identity, hybrid.shared's key) and no cached logs."""
    changed = {**data.tables, **tables}
    return replace(data, tables=changed, digest=dataset_digest(changed), _logs={}, _relevant={})


def test_the_cold_start_choice_is_computed_once_per_data_and_k(shop, shop_folder, monkeypatch):
    data, baseline = shop
    first = hybrid.choose_cold_start(data, baseline, K)
    # the same shop loaded again (the main job's second recommender family): the earlier result, not a new choice
    again = load_recommender_data(shop_folder(customers=600, products=60, years=3, seed=1))
    monkeypatch.setattr(hybrid, "_choose_cold_start", lambda *args: pytest.fail("chosen again"))
    assert hybrid.choose_cold_start(again, popularity_baseline(again, K), K) is first
    # another k, or other data, is another choice
    with pytest.raises(pytest.fail.Exception, match="chosen again"):
        hybrid.choose_cold_start(data, baseline, 5)
    with pytest.raises(pytest.fail.Exception, match="chosen again"):
        hybrid.choose_cold_start(with_tables(data, customers=data.customers.iloc[1:]), baseline, K)


def test_shared_results_keep_only_the_most_recent_keys(monkeypatch):
    monkeypatch.setattr(hybrid, "_SHARED", {})
    calls = []
    for key in range(hybrid.SHARED_ENTRIES + 1):
        assert hybrid.shared(("t", key), lambda: calls.append(key) or key * 10) == key * 10
    assert hybrid.shared(("t", hybrid.SHARED_ENTRIES), lambda: pytest.fail("recomputed")) == hybrid.SHARED_ENTRIES * 10
    assert len(hybrid._SHARED) == hybrid.SHARED_ENTRIES and ("t", 0) not in hybrid._SHARED
    assert hybrid.shared(("t", 0), lambda: -1) == -1 and calls == list(range(hybrid.SHARED_ENTRIES + 1))


def validation_itemcf(data, baseline):
    return ItemCF(n_neighbours=20).fit(data.log("validation")).recommender(baseline.popularity("validation"))


def test_cold_start_grid_is_scored_on_cut_customers_of_the_validation_window(shop):
    data, baseline = shop
    choice = hybrid.choose_cold_start(data, baseline, K)
    assert len(choice.grid) == len(hybrid.COLD_START_ATTRIBUTES) * len(hybrid.COLD_START_STRENGTHS)
    assert choice.val_value == pytest.approx(choice.grid[f"val_coldsim_precision_at_{K}"].max())
    assert choice.attributes in hybrid.COLD_START_ATTRIBUTES and choice.strength in hybrid.COLD_START_STRENGTHS
    assert choice.window_days == baseline.window_days
    relevant, folds = hybrid.cut_to_zero(data, "validation")
    assert sorted(c for fold in folds for c in fold) == sorted(relevant)
    window = data.window_transactions("validation")
    assert relevant[next(iter(relevant))] == set(window.loc[window["customer_id"] == next(iter(relevant)),
                                                             "product_id"])


def test_the_cold_start_choice_never_sees_the_test_window(shop):
    data, baseline = shop
    tx = data.tables["transactions"]
    in_test = tx["purchase_date"] >= data.test_cutoff
    shuffled = tx.copy()
    shuffled.loc[in_test, "product_id"] = np.random.default_rng(0).permutation(tx.loc[in_test, "product_id"].to_numpy())
    other = with_tables(data, transactions=shuffled)
    assert isinstance(other, RecommenderData)
    a, b = hybrid.choose_cold_start(data, baseline, K), hybrid.choose_cold_start(other, baseline, K)
    pd.testing.assert_frame_equal(a.grid, b.grid)


def test_demographics_beat_global_popularity_where_the_shop_plants_them(strong_shop, shop):
    data, baseline = strong_shop
    choice = hybrid.choose_cold_start(data, baseline, K)
    assert "gender" in choice.attributes
    assert choice.val_value > 1.1 * choice.val_global
    weak = hybrid.choose_cold_start(*shop, K)
    assert weak.val_value / weak.val_global < choice.val_value / choice.val_global


def test_no_demographic_columns_means_no_cold_start(shop):
    data, baseline = shop
    bare = with_tables(data, customers=data.customers[["customer_id"]])
    assert hybrid.choose_cold_start(bare, baseline, K) is None
    extras = hybrid.Extras(None, hybrid.BlendChoice({"weight": 0.0}, 0.1, 0.1))
    attached = extras.attach(validation_itemcf(data, baseline), data, "validation")
    assert attached.segments is None and attached.blend is None


def test_blend_keeps_weight_zero_unless_a_blend_beats_the_family_on_validation(shop):
    data, baseline = shop
    plain = validation_itemcf(data, baseline)
    first_only = hybrid.tune_blend(data, plain, K, n_trials=1, seed=0)
    assert first_only.params == {"weight": 0.0} and first_only.val_value == first_only.val_unblended
    assert first_only.blend(data.tables["products"], plain.product_ids) is None
    tuned = hybrid.tune_blend(data, plain, K, n_trials=8, seed=0)
    assert len(tuned.trials) == 8 and tuned.trials["params_weight"].iloc[0] == 0.0
    assert tuned.val_value >= tuned.val_unblended
    # kept only when clearly better than the family alone: by more than two paired standard errors
    kept = tuned.best_gain > 0 and tuned.best_gain > hybrid.BLEND_MIN_GAIN_SE * tuned.best_gain_se
    assert (tuned.weight > 0) == kept
    if tuned.weight > 0:
        assert tuned.val_value > tuned.val_unblended
        blend = tuned.blend(data.tables["products"], plain.product_ids)
        assert blend.weight == tuned.weight and blend.normalisation == tuned.params["normalisation"]
    assert hybrid.tune_blend(data, plain, K, n_trials=0).params == {"weight": 0.0}
    # without blend trials the family's validation model is never fitted
    untuned = hybrid.tune_extras(data, baseline, K, lambda: pytest.fail("fitted"), blend_trials=0)
    assert untuned.blend.weight == 0.0 and untuned.blend.val_value is None and untuned.cold_start is not None


def test_segment_metrics_split_the_test_customers_and_score_each_system_on_them(shop):
    data, baseline = shop
    choice = hybrid.choose_cold_start(data, baseline, K)
    extras = hybrid.Extras(choice, hybrid.BlendChoice({"weight": 0.0}, 0.0, 0.0))
    model = extras.attach(ItemCF(n_neighbours=20).fit(data.log("test")).recommender(baseline.popularity("test")),
                          data, "test")
    relevant = data.relevant("test")
    ids = list(relevant)
    lists = {"model": model.recommend_all(ids, K, demographics=data.demographics(ids)),
             "popularity": baseline.recommenders["test"].recommend_all(ids, K)}
    metrics, table = hybrid.segment_metrics(data, model, baseline, extras, K, lists)
    warm = [c for c in ids if c in data.buyers_before("test")]
    cold = [c for c in ids if c not in data.buyers_before("test") and c in data.described_customers]
    assert metrics["test_warm_customers"] == len(warm) and metrics["test_cold_customers"] == len(cold)
    assert metrics[f"test_warm_precision_at_{K}"] == pytest.approx(
        precision_at_k({c: relevant[c] for c in warm}, lists["model"], K))
    assert metrics[f"baseline_test_cold_precision_at_{K}"] == pytest.approx(
        precision_at_k({c: relevant[c] for c in cold}, lists["popularity"], K))
    for prefix in ("test_", "baseline_test_", "segment_baseline_test_"):
        for population in ("warm", "cold"):
            assert 0 <= metrics[f"{prefix}{population}_precision_at_{K}"] <= 1
    cut, _ = hybrid.cut_to_zero(data, "test")
    assert metrics["test_coldsim_customers"] == len(cut) > len(cold)
    assert table.loc["all", "model"] == pytest.approx(precision_at_k(relevant, lists["model"], K))
    assert table.loc["coldsim", "model"] == metrics[f"test_coldsim_precision_at_{K}"]
    # the generated shop launches no product in the test window
    assert metrics["test_new_items"] == 0 and metrics["test_new_item_hit_share"] == 0.0


def test_new_products_of_the_test_window_are_counted(shop):
    data, baseline = shop
    tx = data.tables["transactions"]
    sold_before = set(tx.loc[tx["purchase_date"] < data.test_cutoff, "product_id"])
    late = tx.loc[tx["purchase_date"] >= data.test_cutoff, "product_id"].value_counts().index[:2]
    renamed = tx.copy()  # two products first sold in the test window: their earlier rows go to another id
    early = renamed["purchase_date"] < data.test_cutoff
    other = next(p for p in sorted(sold_before) if p not in set(late))
    renamed.loc[early & renamed["product_id"].isin(late), "product_id"] = other
    changed = with_tables(data, transactions=renamed)
    model = ItemCF(n_neighbours=20).fit(changed.log("test")).recommender(baseline.popularity("test"))
    ids = list(changed.relevant("test"))
    lists = {"model": model.recommend_all(ids, K), "popularity": baseline.recommenders["test"].recommend_all(ids, K)}
    metrics, _ = hybrid.segment_metrics(changed, model, baseline, None, K, lists)
    assert metrics["test_new_items"] == 2
    assert 0.0 <= metrics["test_new_item_hit_share"] <= 1.0
    assert f"test_new_item_recall_at_{K}" in metrics and "test_coldsim_customers" not in metrics
