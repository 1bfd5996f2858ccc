"""Sales series for forecasting: the shop's amount per category per period, or the user's own series.

* :func:`category_series` sums the transaction ``amount`` per category per period (``M`` monthly, ``W``
  weeks Monday to Sunday, ``D`` daily; seasonal periods 12, 52 and 7) and adds the shop total ``All``.
  Every series covers the same periods from the first to the last purchase; a period without sales is 0.
  A first or last period that the data cover only in part (from the first to the last purchase date, less
  than 90% of its days) is dropped, so a half month at the end of an export never looks like a collapse.
* :func:`read_series_csv` reads a CSV of one or more series (``--series`` with ``--date-column``,
  ``--value-column`` and optionally ``--id-column``). Dates label periods; values in the same period of
  a series are summed; a period missing inside a series' span is 0 (counted and logged). Without an id
  column the file holds one series named after the file (``AirPassengers.csv`` -> ``AirPassengers``).
  Bad input stops with a :class:`~pipelines.errors.DataValidationError` naming the file, the column and
  the first offending row (line numbers count the header as line 1).

Series are ``pd.Series`` of floats indexed by the periods' start dates, oldest first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from models.sarima.model import SEASONAL_PERIODS
from pipelines.errors import ConfigurationError, DataValidationError

logger = logging.getLogger(__name__)

TOTAL = "All"
FREQ_NAMES = {"M": "monthly", "W": "weekly", "D": "daily"}
DEFAULT_TEST_PERIODS = {"M": 6, "W": 8, "D": 14}
MIN_EDGE_COVERAGE = 0.9  # a first or last period with data on fewer of its days is dropped


@dataclass
class SeriesSet:
    """Named series of one frequency, with what was done to them on the way."""

    series: dict[str, pd.Series]
    freq: str
    source: str
    notes: dict[str, str] = field(default_factory=dict)
    categories: tuple[str, ...] = ()  # the shop's category series (the total excluded); all series for a CSV

    @property
    def season(self) -> int:
        return SEASONAL_PERIODS[self.freq]

    def frame(self) -> pd.DataFrame:
        """Long format ``series, period, value`` (period as a date)."""
        parts = [pd.DataFrame({"series": name, "period": s.index, "value": s.to_numpy()})
                 for name, s in self.series.items()]
        return pd.concat(parts, ignore_index=True)


def check_freq(freq: str) -> str:
    if freq not in SEASONAL_PERIODS:
        raise ConfigurationError(f"--freq must be one of {', '.join(SEASONAL_PERIODS)} (monthly, weekly, daily), "
                                 f"got {freq!r}")
    return freq


def _period_starts(index: pd.PeriodIndex) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(index.start_time.normalize(), name="period")


def _days(period: pd.Period) -> int:
    return (period.end_time.normalize() - period.start_time.normalize()).days + 1


def _covered_days(period: pd.Period, first: pd.Timestamp | None, last: pd.Timestamp | None) -> int:
    """Days of ``period`` between the first and the last day with data (inclusive)."""
    start = max(period.start_time.normalize(), first) if first is not None else period.start_time.normalize()
    end = min(period.end_time.normalize(), last) if last is not None else period.end_time.normalize()
    return (end - start).days + 1


def category_series(transactions: pd.DataFrame, freq: str = "M", total: bool = True,
                    source: str = "transactions") -> SeriesSet:
    """Amount per category per period (zero-filled) plus the total ``All``; see the module docstring."""
    check_freq(freq)
    missing = [c for c in ("category", "amount", "purchase_date") if c not in transactions.columns]
    if missing:
        raise DataValidationError(f"{source}: missing column(s) {', '.join(missing)} needed for the sales series")
    if transactions.empty:
        raise DataValidationError(f"{source}: no transactions to build sales series from")
    categories = sorted(transactions["category"].astype(str).unique())
    if total and TOTAL in categories:
        raise DataValidationError(f"{source}: a category is named {TOTAL!r}, the name of the shop total; rename it")
    dates = pd.to_datetime(transactions["purchase_date"])
    periods = dates.dt.to_period(freq)
    full = pd.period_range(periods.min(), periods.max(), freq=freq)
    notes = {}
    first, last = dates.min().normalize(), dates.max().normalize()
    if _covered_days(full[0], first, None) < MIN_EDGE_COVERAGE * _days(full[0]):
        notes["dropped_first_period"] = f"{full[0]} (data start on {first.date()})"
        full = full[1:]
    if len(full) and _covered_days(full[-1], None, last) < MIN_EDGE_COVERAGE * _days(full[-1]):
        notes["dropped_last_period"] = f"{full[-1]} (data end on {last.date()})"
        full = full[:-1]
    if len(full) == 0:
        raise DataValidationError(f"{source}: the purchases from {first.date()} to {last.date()} cover no whole "
                                  f"{FREQ_NAMES[freq]} period")
    for key, text in notes.items():
        logger.info("sales series: %s %s", key.replace("_", " "), text)
    sums = (transactions.assign(_period=periods, category=transactions["category"].astype(str))
            .groupby(["_period", "category"], observed=True)["amount"].sum()
            .unstack("category").reindex(index=full, columns=categories).fillna(0.0).astype(float))
    sums.index = _period_starts(sums.index)
    series = {name: sums[name].rename(name) for name in categories}
    if total:
        series[TOTAL] = sums.sum(axis=1).rename(TOTAL)
    return SeriesSet(series, freq, source, notes, categories=tuple(categories))


def _line(position: int) -> int:
    """File line of the data row at ``position`` (the header is line 1)."""
    return position + 2


def read_series_csv(path: str | Path, date_column: str, value_column: str, id_column: str | None = None,
                    freq: str = "M") -> SeriesSet:
    """Read the user's series from a CSV file; see the module docstring."""
    check_freq(freq)
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(f"{path}: no such file (--series)")
    if not date_column or not value_column:
        raise ConfigurationError("--series needs --date-column and --value-column")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"{path}: not a readable CSV file: {exc}") from exc
    wanted = [("--date-column", date_column), ("--value-column", value_column)]
    if id_column:
        wanted.append(("--id-column", id_column))
    for option, column in wanted:
        if column not in raw.columns:
            raise DataValidationError(f"{path}: no column {column!r} ({option}); the file has "
                                      f"{', '.join(map(repr, raw.columns))}")
    if raw.empty:
        raise DataValidationError(f"{path}: the file has a header but no rows")

    dates = pd.to_datetime(raw[date_column], errors="coerce", format="mixed")
    bad = dates.isna()
    if bad.any():
        i = int(bad.to_numpy().argmax())
        raise DataValidationError(f"{path}: column {date_column!r} has {int(bad.sum())} value(s) that are not dates; "
                                  f"first at line {_line(i)}: {raw[date_column].iloc[i]!r}")
    values = pd.to_numeric(raw[value_column], errors="coerce")
    bad = values.isna() | ~values.abs().lt(float("inf"))
    if bad.any():
        i = int(bad.to_numpy().argmax())
        raise DataValidationError(f"{path}: column {value_column!r} has {int(bad.sum())} missing or non-numeric "
                                  f"value(s); first at line {_line(i)}: {raw[value_column].iloc[i]!r}")
    if id_column:
        ids = raw[id_column]
        bad = ids.isna()
        if bad.any():
            i = int(bad.to_numpy().argmax())
            raise DataValidationError(f"{path}: column {id_column!r} has {int(bad.sum())} missing id(s); "
                                      f"first at line {_line(i)}")
        ids = ids.astype(str).str.strip()
    else:
        ids = pd.Series(path.stem, index=raw.index)

    frame = pd.DataFrame({"id": ids, "period": dates.dt.to_period(freq), "value": values.astype(float)})
    series, notes = {}, {}
    for name, part in frame.groupby("id", sort=True):
        sums = part.groupby("period")["value"].sum()
        full = pd.period_range(sums.index.min(), sums.index.max(), freq=freq)
        filled = len(full) - len(sums)
        summed = len(part) - len(sums)
        if filled:
            notes[f"zero_filled_periods.{name}"] = str(filled)
            logger.warning("series %s: %d missing %s period(s) filled with 0", name, filled, FREQ_NAMES[freq])
        if summed:
            notes[f"summed_rows.{name}"] = str(summed)
            logger.info("series %s: %d row(s) summed into periods that already had a value", name, summed)
        s = sums.reindex(full, fill_value=0.0).astype(float)
        s.index = _period_starts(s.index)
        series[str(name)] = s.rename(str(name))
    return SeriesSet(series, freq, str(path), notes, categories=tuple(series))
