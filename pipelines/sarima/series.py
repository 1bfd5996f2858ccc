"""Sales series for forecasting: the shop's amount per category per period, or the user's own series.

* :func:`category_series` sums the transaction ``amount`` per category per period (``--freq``, default ``M``;
  any of :data:`models.sarima.frequency.FREQUENCIES`: ``Y``, ``Q``, ``M``, ``W`` weeks Monday to Sunday, ``D``) and
  adds the shop total ``All``. Every series covers the same periods from the first to the last purchase; a period
  without sales is 0 (no transactions means no sales: the one place where a missing period is a zero). A first or
  last period that the data cover only in part (from the first to the last purchase date, less than 90% of its
  days) is dropped, so a half month at the end of an export never looks like a collapse.
* :func:`read_series_csv` reads a CSV of one or more series (``--series`` with ``--date-column``,
  ``--value-column`` and optionally ``--id-column``). Without an id column the file holds one series named after
  the file (``AirPassengers.csv`` -> ``AirPassengers``).

  - The frequency is inferred from the dates (:func:`infer_frequency`: the median gap between consecutive dates),
    unless ``--freq`` names it. Inferred, the dates must be regular: one per period, each at the same place in its
    period (all month starts, all month ends, all Mondays, ...); the first date that is not stops the run with an
    error naming it (never a silent reindex). With ``--freq`` the values of each period are summed (counted and
    logged), which also turns daily rows into months.
  - Missing values stay missing. Blank cells and the markers of ``--na-values`` (default ``?``, ``NA``, ``N/A``,
    ``null``, ``-``: :data:`pipelines.options.NA_VALUES`, compared case-insensitively) read as missing; any other text that is not a
    number is an error. A period without a row inside a series' span is missing too. Missing periods at the start
    and the end of a series are trimmed, with a message; the others stay NaN (SARIMAX's Kalman filter skips
    them). The counts are kept per series (:attr:`SeriesSet.counts`) and logged on the series' run.
  - Bad input stops with a :class:`~pipelines.errors.DataValidationError` naming the file, the column and the
    first offending row (line numbers count the header as line 1).

Series are ``pd.Series`` of floats indexed by the periods' start dates, oldest first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from models.sarima.frequency import FREQUENCIES, Frequency
from pipelines.errors import ConfigurationError, DataValidationError
from pipelines.options import NA_VALUES

logger = logging.getLogger(__name__)

TOTAL = "All"
MIN_EDGE_COVERAGE = 0.9  # a first or last period with data on fewer of its days is dropped
GAP_TOLERANCE_DAYS = 1  # a median gap this close to a frequency's band counts as that frequency


@dataclass
class SeriesSet:
    """Named series of one frequency, with what was done to them on the way."""

    series: dict[str, pd.Series]
    freq: str
    source: str
    notes: dict[str, str] = field(default_factory=dict)
    categories: tuple[str, ...] = ()  # the shop's category series (the total excluded); all series for a CSV
    season_override: int | None = None
    freq_inferred: bool = False
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # per series: missing values, trimmed periods

    @property
    def frequency(self) -> Frequency:
        return FREQUENCIES[self.freq]

    @property
    def season(self) -> int:
        return self.season_override or self.frequency.season

    def frame(self) -> pd.DataFrame:
        """Long format ``series, period, value`` (period as a date)."""
        parts = [pd.DataFrame({"series": name, "period": s.index, "value": s.to_numpy()})
                 for name, s in self.series.items()]
        return pd.concat(parts, ignore_index=True)


def check_freq(freq: str | None) -> str | None:
    if freq is not None and freq not in FREQUENCIES:
        known = ", ".join(f"{f.code} ({f.name})" for f in FREQUENCIES.values())
        raise ConfigurationError(f"--freq must be one of {known}, got {freq!r}")
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
    name = FREQUENCIES[freq].name
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
                                  f"{name} period")
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


def infer_frequency(dates: pd.DatetimeIndex) -> tuple[str | None, float]:
    """``(code, median gap in days)``: the frequency that most gaps between consecutive distinct dates match (a
    gap of one period, within ``GAP_TOLERANCE_DAYS``), when at least half of them do; None otherwise (or with
    fewer than two distinct dates). Missing periods and a stray date do not change it; the regularity check
    (:func:`irregular_date`) then names the stray date."""
    distinct = pd.DatetimeIndex(dates).normalize().unique().sort_values()
    if distinct.size < 2:
        return None, float("nan")
    gaps = np.asarray((distinct[1:] - distinct[:-1]) / pd.Timedelta(days=1), dtype=float)
    matches = {f.code: int(((gaps >= f.gap_days[0] - GAP_TOLERANCE_DAYS) &
                            (gaps <= f.gap_days[1] + GAP_TOLERANCE_DAYS)).sum()) for f in FREQUENCIES.values()}
    code = max(matches, key=matches.get)
    return (code if 2 * matches[code] >= gaps.size else None), float(np.median(gaps))


def _places(dates: pd.DatetimeIndex, code: str) -> tuple[np.ndarray, np.ndarray]:
    """Where each date lies in its period, counted from the period's start and from its end (in a month-based
    period: the month within the period and the day counted from the month's start or end)."""
    day, to_end = dates.day.to_numpy(), (dates.days_in_month - dates.day).to_numpy()
    month = dates.month.to_numpy()
    if code == "D":
        zero = np.zeros(len(dates), dtype=int)
        return zero, zero
    if code == "W":
        weekday = dates.weekday.to_numpy()
        return weekday, weekday
    within = {"M": 0, "Q": (month - 1) % 3, "Y": month}[code]
    return within * 100 + day, within * 100 + to_end


def irregular_date(dates: pd.DatetimeIndex, code: str) -> tuple[int, str] | None:
    """The first date (its position) that breaks a regular series of frequency ``code`` and what is wrong with it:
    a second date in one period, or a date at another place in its period than the others; None when regular."""
    f = FREQUENCIES[code]
    order = np.argsort(dates.to_numpy(), kind="stable")
    periods = dates.to_period(code)
    for previous, current in zip(order[:-1], order[1:]):
        if periods[current] == periods[previous]:
            return int(current), (f"falls in the same {f.unit} as {dates[previous].date()} (line "
                                  f"{_line(int(previous))})")
    best = None
    for places, how in zip(_places(dates, code), ("from the start", "from the end")):
        values, counts = np.unique(places, return_counts=True)
        if values.size == 1:
            return None
        common = values[np.argmax(counts)]
        odd = np.flatnonzero(places[order] != common)
        first = int(order[odd[0]])
        example = int(order[np.flatnonzero(places[order] == common)[0]])
        if best is None or counts.max() > best[0]:
            best = (counts.max(), first, f"is not at the same place in its {f.unit} as the others (counted {how}; "
                                         f"e.g. {dates[example].date()})")
    return best[1], best[2]


def read_series_csv(path: str | Path, date_column: str, value_column: str, id_column: str | None = None,
                    freq: str | None = None, na_values: tuple[str, ...] = NA_VALUES) -> SeriesSet:
    """Read the user's series from a CSV file; see the module docstring."""
    check_freq(freq)
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(f"{path}: no such file (--series)")
    if not date_column or not value_column:
        raise ConfigurationError("--series needs --date-column and --value-column")
    markers = frozenset({"", *(str(v).strip().casefold() for v in na_values)})
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[])
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

    dates = pd.to_datetime(raw[date_column].str.strip(), errors="coerce", format="mixed")
    bad = dates.isna()
    if bad.any():
        i = int(bad.to_numpy().argmax())
        raise DataValidationError(f"{path}: column {date_column!r} has {int(bad.sum())} value(s) that are not dates; "
                                  f"first at line {_line(i)}: {raw[date_column].iloc[i]!r}")
    text = raw[value_column].str.strip()
    missing = text.str.casefold().isin(markers)
    values = pd.to_numeric(text.where(~missing), errors="coerce")
    bad = ~missing & ~values.abs().lt(float("inf"))
    if bad.any():
        i = int(bad.to_numpy().argmax())
        shown = ", ".join(repr(m) for m in ("", *na_values))
        raise DataValidationError(f"{path}: column {value_column!r} has {int(bad.sum())} non-numeric value(s) that "
                                  f"are not missing-value markers ({shown}; --na-values); first at line {_line(i)}: "
                                  f"{raw[value_column].iloc[i]!r}")
    if id_column:
        ids = raw[id_column].str.strip()
        bad = ids.isin(("",))
        if bad.any():
            i = int(bad.to_numpy().argmax())
            raise DataValidationError(f"{path}: column {id_column!r} has {int(bad.sum())} missing id(s); "
                                      f"first at line {_line(i)}")
    else:
        ids = pd.Series(path.stem, index=raw.index)

    frame = pd.DataFrame({"id": ids.astype(str), "date": dates.dt.normalize(), "value": values.astype(float)})
    groups = {str(name): part for name, part in frame.groupby("id", sort=True)}
    inferred = freq is None
    if inferred:
        freq = _file_frequency(path, groups)
    f = FREQUENCIES[freq]
    series, notes, counts = {}, {}, {}
    for name, part in groups.items():
        if inferred:
            odd = irregular_date(pd.DatetimeIndex(part["date"]), freq)
            if odd is not None:
                position, problem = odd
                row = int(part.index[position])
                raise DataValidationError(
                    f"{path}: series {name!r}: irregular dates for a {f.name} series: {part['date'].iloc[position].date()} "
                    f"(line {_line(row)}) {problem}. Fix the date, or pass --freq {freq} to sum the values of each "
                    f"{f.unit}")
        periods = part["date"].dt.to_period(freq)
        sums = part.groupby(periods)["value"].sum(min_count=1)
        full = pd.period_range(sums.index.min(), sums.index.max(), freq=freq)
        s = sums.reindex(full).astype(float)
        n_summed = len(part) - len(sums)
        observed = np.flatnonzero(s.notna().to_numpy())
        if observed.size == 0:
            raise DataValidationError(f"{path}: series {name!r} has no values: all {len(part)} are missing")
        lead, trail = int(observed[0]), int(len(s) - 1 - observed[-1])
        s = s.iloc[lead: len(s) - trail]
        info = {"n_rows": len(part), "n_missing_values": int(part["value"].isna().sum()),
                "n_missing_dates": len(full) - len(sums), "n_summed_rows": n_summed, "n_trimmed_start": lead,
                "n_trimmed_end": trail, "n_missing": int(s.isna().sum())}
        counts[name] = info
        if lead or trail:
            logger.info("series %s: %d missing %s period(s) at the start and %d at the end trimmed; it now runs from "
                        "%s to %s", name, lead, f.name, trail, s.index[0], s.index[-1])
            notes[f"trimmed_periods.{name}"] = f"{lead} at the start, {trail} at the end"
        if info["n_missing"]:
            logger.info("series %s: %d missing %s period(s) inside the series stay missing (%d missing value(s), %d "
                        "date(s) without a row)", name, info["n_missing"], f.name, info["n_missing_values"],
                        info["n_missing_dates"])
            notes[f"missing_periods.{name}"] = str(info["n_missing"])
        if n_summed:
            notes[f"summed_rows.{name}"] = str(n_summed)
            logger.info("series %s: %d row(s) summed into %s periods that already had a value", name, n_summed, f.name)
        s.index = _period_starts(s.index)
        series[name] = s.rename(name)
    return SeriesSet(series, freq, str(path), notes, categories=tuple(series), freq_inferred=inferred, counts=counts)


def _file_frequency(path: Path, groups: dict[str, pd.DataFrame]) -> str:
    """The one frequency inferred from every series' dates; an error naming the series when it cannot be."""
    found = {}
    for name, part in groups.items():
        code, median = infer_frequency(pd.DatetimeIndex(part["date"]))
        if code is None:
            bands = ", ".join(f"{f.name} {f.gap_days[0]}" + (f"-{f.gap_days[1]}" if f.gap_days[1] != f.gap_days[0] else "")
                              for f in FREQUENCIES.values())
            seen = ("fewer than two distinct dates" if np.isnan(median) else
                    f"the gaps between dates, median {median:g} days, match no frequency")
            raise DataValidationError(f"{path}: series {name!r}: cannot infer the frequency from its dates ({seen}; "
                                      f"days between periods: {bands}); pass --freq")
        found[name] = code
    if len(set(found.values())) > 1:
        listed = ", ".join(f"{n} {FREQUENCIES[c].name}" for n, c in found.items())
        raise DataValidationError(f"{path}: the series have different frequencies ({listed}); put them in separate "
                                  "files, or pass --freq to sum them into one")
    return next(iter(found.values()))
