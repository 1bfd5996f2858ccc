"""The sample rule, the agreement measure and the thin-tuning advice of pipelines/budget.py."""

import argparse
import math

import pytest

from pipelines import budget


def test_the_default_shop_tunes_on_everyone_and_larger_shops_on_a_constant_sample():
    for family, rule in budget.TUNING_SAMPLES.items():
        assert budget.tuning_customers(family, 5_000)[0] == 5_000  # the default shop: as before
        assert budget.tuning_customers(family, rule.full_up_to)[0] == rule.full_up_to
        assert budget.tuning_customers(family, 50_000) == (
            rule.sample, f"{rule.sample:,} random customers (more than {rule.full_up_to:,} customers)")
        assert budget.tuning_customers(family, 200_000)[0] == rule.sample
    assert budget.tuning_customers("svdpp", 50_000, requested=0) == (50_000, "every customer (--tuning-customers 0)")
    assert budget.tuning_customers("svdpp", 50_000, requested=700) == (700, "--tuning-customers 700")
    assert budget.tuning_customers("svdpp", 500, requested=700)[0] == 500


def test_the_option_reads_auto_or_a_whole_number():
    assert budget.tuning_option("auto") is None and budget.tuning_option("AUTO") is None
    assert budget.tuning_option("0") == 0 and budget.tuning_option("2000.0") == 2000
    for bad in ("-1", "1.5", "many"):
        with pytest.raises(argparse.ArgumentTypeError):
            budget.tuning_option(bad)


def test_agreement_of_two_rankings():
    same = budget.agreement([0.1, 0.3, 0.2], [1.0, 3.0, 2.0])
    assert same == {"kendall_tau": pytest.approx(1.0), "best": 1.0, "n": 3.0}
    reversed_ = budget.agreement([0.1, 0.2, 0.3], [0.3, 0.2, 0.1])
    assert reversed_["kendall_tau"] == pytest.approx(-1.0) and reversed_["best"] == 0.0
    # one swap out of three pairs: (2 concordant - 1 discordant) / 3
    assert budget.agreement([0.3, 0.2, 0.1], [0.3, 0.1, 0.2])["kendall_tau"] == pytest.approx(1 / 3)
    assert math.isnan(budget.agreement([0.5], [0.4])["kendall_tau"])
    with pytest.raises(ValueError):
        budget.agreement([0.1, 0.2], [0.1])


def test_stop_reason_and_thin_advice():
    assert budget.stop_reason(n_trials=30, n_run=30, stopped_early=False) == "n_trials"
    assert budget.stop_reason(n_trials=30, n_run=12, stopped_early=False) == "timeout"
    assert budget.stop_reason(n_trials=60, n_run=7, stopped_early=True) == "search finished"
    assert budget.thin_advice(10, "timeout", 25, 100, 30.0) is None
    assert budget.thin_advice(4, "search finished", 60, 100, 1.0) is None
    what, fix = budget.thin_advice(1, "timeout", 25, 100, 202.0)
    assert what == "only 1 trials completed in the 100 s timeout (about 202 s per trial; the minimum is 10)"
    assert fix == "--timeout 2430"  # 1.2 x 10 x 202 s, rounded up to 10 s
    assert budget.thin_advice(3, "n_trials", 3, None, 1.0) == (
        "only 3 trials completed (--n-trials 3 is below the minimum of 10)", "--n-trials 10")
