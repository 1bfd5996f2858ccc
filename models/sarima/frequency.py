"""The frequencies a series can have: the one table of them, and the labels of the periods that follow a period.

Each :class:`Frequency` says what a period is (``code``: the option value and the pandas period alias, ``Y`` yearly,
``Q`` quarterly, ``M`` monthly, ``W`` weeks Monday to Sunday, ``D`` daily), the seasonal period that goes with it
(1, 4, 12, 52, 7), the gap in days between the starts of two consecutive periods (what frequency inference looks
for in a user's dates, :mod:`pipelines.sarima.series`) and how many periods the job holds out as the test by default.
A period is labelled by the ISO date of its first day (a quarter by ``2025-04-01``, a week by its Monday).

This module never imports ``pipelines`` or ``evaluation``: it travels with the served model.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Frequency:
    code: str
    name: str  # "monthly"
    unit: str  # "month"
    season: int  # the seasonal period: periods per year (7 for daily data: the week)
    gap_days: tuple[int, int]  # shortest and longest gap between the starts of consecutive periods
    test_periods: int  # periods held out as the test by default

    def period(self, date) -> pd.Period:
        return pd.Period(pd.Timestamp(date), freq=self.code)


FREQUENCIES: dict[str, Frequency] = {f.code: f for f in (
    Frequency("Y", "yearly", "year", 1, (365, 366), 4),
    Frequency("Q", "quarterly", "quarter", 4, (90, 92), 4),
    Frequency("M", "monthly", "month", 12, (28, 31), 6),
    Frequency("W", "weekly", "week", 52, (7, 7), 8),
    Frequency("D", "daily", "day", 7, (1, 1), 14),
)}


def frequency(code: str) -> Frequency:
    """The :class:`Frequency` of ``code``; a ``ValueError`` naming the known codes otherwise."""
    try:
        return FREQUENCIES[code]
    except KeyError:
        known = ", ".join(f"{f.code} ({f.name})" for f in FREQUENCIES.values())
        raise ValueError(f"unknown frequency {code!r}; known: {known}") from None


def period_start(date, code: str) -> str:
    """ISO date of the first day of the period (of frequency ``code``) that contains ``date``."""
    return frequency(code).period(date).start_time.date().isoformat()


def next_periods(last_period: str, code: str, steps: int) -> list[str]:
    """ISO start dates of the ``steps`` periods after the period containing ``last_period``."""
    start = frequency(code).period(last_period)
    return [(start + k).start_time.date().isoformat() for k in range(1, steps + 1)]
