"""Tuning budgets that scale with the data, and the floor below which a study counts as thin (one place).

**The sample rule.** A study's trials must stay affordable as the shop grows, so families whose trial cost grows
with the number of customers tune on a random sample of customers once the shop is larger than the default
shop, and always refit the winner on every customer:

* :data:`TUNING_SAMPLES` holds, per family, ``full_up_to`` (shops with at most this many customers tune on every
  customer: the default shop of 5,000 is tuned exactly as before) and ``sample`` (the number of random customers
  the trials use above that size). The sample is a constant, not a fraction: a trial's cost is proportional to
  the customers it fits on, and the budget (seconds) is constant, so a constant sample keeps the number of trials
  per budget the same at 50k and at 200k customers.
* SVD++ (a trial fits Surprise's SVD++ on the sample's purchases: about 3.5 s per 1,000 customers on 2 busy
  cores, measured at 50k customers) tunes on 2,000 customers; churn (a trial fits the logistic regression on the
  tuning snapshot's rows) fits on 15,000 customers' rows and scores on the whole validation snapshot.
* ``--tuning-customers N`` overrides the rule (``0``: every customer; ``auto``: the rule).

**Agreement.** A sample may rank configurations differently from the whole shop. After a sampled study the
family re-scores configurations on every customer (churn: its top :data:`AGREEMENT_TRIALS`, fitted on every
customer and scored on the whole validation snapshot; SVD++: its best and the enqueued start, fitted on every
customer's validation history, and the better of the two becomes the refit winner) and logs :func:`agreement`:
Kendall's tau between the two rankings and whether the sample's best is the check's best (metrics
``tuning_agreement_kendall_tau``, ``tuning_agreement_best``).

**Thin tuning.** A study that completes fewer than :data:`MIN_COMPLETE_TRIALS` trials because its budget ran out
(the timeout, or ``--n-trials`` below the floor) has not really tuned: :mod:`pipelines.study` tags the run
``thin_tuning`` with :func:`thin_advice` (what stopped it and the budget that would fix it), and ``storefront
main`` repeats that in its summary.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Sequence

MIN_COMPLETE_TRIALS = 10
AGREEMENT_TRIALS = 3  # the top configurations of a sampled study re-scored on the check
AUTO = "auto"


@dataclass(frozen=True)
class SampleRule:
    full_up_to: int  # shops with at most this many customers tune on all of them
    sample: int  # above that, the trials use this many random customers


TUNING_SAMPLES: dict[str, SampleRule] = {
    "svdpp": SampleRule(full_up_to=6_000, sample=2_000),
    "churn": SampleRule(full_up_to=15_000, sample=15_000),
}


def tuning_option(text: str) -> int | None:
    """An ``argparse`` type for ``--tuning-customers``: ``auto`` (None: the rule) or a whole number >= 0."""
    from pipelines.options import whole_number

    if str(text).strip().lower() in (AUTO, ""):
        return None
    number = whole_number(text)
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected 'auto', 0 (every customer) or a positive integer, got {text!r}")
    return number


def add_tuning_option(parser: argparse.ArgumentParser, family: str) -> None:
    """``--tuning-customers`` of a family with a :data:`TUNING_SAMPLES` rule (its help states the rule)."""
    rule = TUNING_SAMPLES[family]
    parser.add_argument("--tuning-customers", type=tuning_option, default=None,
                        help=f"customers the tuning trials fit on: auto (default) = every customer up to "
                             f"{rule.full_up_to:,}, else {rule.sample:,} random ones (pipelines/budget.py); "
                             "0 = every customer; N = N random customers")


def tuning_customers(family: str, n_customers: int, requested: int | None = None) -> tuple[int, str]:
    """``(customers to tune on, why)`` for a shop of ``n_customers``: ``requested`` when given (0 = all), else the
    family's :data:`TUNING_SAMPLES` rule. The number never exceeds ``n_customers``."""
    if requested is not None:
        if requested == 0 or requested >= n_customers:
            return n_customers, f"every customer (--tuning-customers {requested})"
        return requested, f"--tuning-customers {requested}"
    rule = TUNING_SAMPLES[family]
    if n_customers <= rule.full_up_to or rule.sample >= n_customers:
        return n_customers, f"every customer (at most {rule.full_up_to:,} customers)"
    return rule.sample, f"{rule.sample:,} random customers (more than {rule.full_up_to:,} customers)"


def agreement(sample_scores: Sequence[float], check_scores: Sequence[float]) -> dict[str, float]:
    """How well a sampled study's ranking of configurations holds on the check.

    ``sample_scores[i]`` and ``check_scores[i]`` are configuration i's scores (higher is better) on the sample and
    on the check. Returns ``kendall_tau`` (-1..1; 1 = the same order; NaN for fewer than two configurations or
    ties everywhere), ``best`` (1.0 when the sample's best configuration is also the check's best, else 0.0) and
    ``n`` (the configurations compared).
    """
    from scipy.stats import kendalltau

    if len(sample_scores) != len(check_scores):
        raise ValueError(f"{len(sample_scores)} sample scores but {len(check_scores)} check scores")
    n = len(sample_scores)
    if n == 0:
        raise ValueError("agreement needs at least one configuration")
    tau = float("nan")
    if n >= 2:
        tau = float(kendalltau(sample_scores, check_scores).statistic)
    best = float(max(range(n), key=lambda i: sample_scores[i]) == max(range(n), key=lambda i: check_scores[i]))
    return {"kendall_tau": tau, "best": best, "n": float(n)}


def stop_reason(n_trials: int | None, n_run: int, stopped_early: bool) -> str:
    """Why a study ended: ``n_trials`` (its trial budget ran), ``search finished`` (the objective stopped the study,
    e.g. a stepwise search with nothing left to try) or ``timeout``."""
    if n_trials is not None and n_run >= n_trials:
        return "n_trials"
    if stopped_early:
        return "search finished"
    return "timeout"


def thin_advice(n_complete: int, reason: str, n_trials: int | None, timeout: float | None,
                mean_trial_seconds: float) -> tuple[str, str] | None:
    """``(what happened, the options that fix it)`` when a study completed fewer than :data:`MIN_COMPLETE_TRIALS`
    trials because its budget ran out; None when it is not thin (enough trials, or a search that finished on its
    own). The fix is the budget that would reach the floor: ``--n-trials 10``, or a ``--timeout`` of the floor times
    the mean trial's seconds (plus a fifth, rounded up to 10 s)."""
    if n_complete >= MIN_COMPLETE_TRIALS or reason == "search finished":
        return None
    if reason == "n_trials":
        return (f"only {n_complete} trials completed (--n-trials {n_trials} is below the minimum of "
                f"{MIN_COMPLETE_TRIALS})", f"--n-trials {MIN_COMPLETE_TRIALS}")
    needed = math.ceil(1.2 * MIN_COMPLETE_TRIALS * max(mean_trial_seconds, 0.1) / 10) * 10
    return (f"only {n_complete} trials completed in the {timeout:g} s timeout (about {mean_trial_seconds:.0f} s per "
            f"trial; the minimum is {MIN_COMPLETE_TRIALS})", f"--timeout {needed}")
