"""Validate raw shop tables against the data contract and return them typed (DESIGN.md, "Data contract").

:func:`read_source` reads one CSV or Parquet file with its rows indexed by their position in the file
(CSV: the 1-based line number, the header being line 1; Parquet: the 1-based row number), so every
error can point at the offending rows. :func:`validate_table` checks one table and returns it typed:
string ids, ``datetime64[ns]`` dates, numeric quantity and amount, contract columns in contract order.
:func:`validate_tables` checks the four tables and their references and returns them with an
:class:`IngestReport`.

Every problem raises :class:`~pipelines.errors.DataValidationError` with a message of the form::

    <file>: column '<col>': <problem>; first offending rows: line 3 ('abc'), line 7 ('x')

Checks: required columns present, at least one row (``events`` may be empty), ids non-empty, dates
parse and lie in the range ``datetime64[ns]`` holds (1677-09-22 to 2262-04-11: a later date such as 9999-12-31
is "out of range", not "unparsable"), quantity and amount present, numbers finite and within
``tables.NUMBER_LIMITS`` (quantity, amount, prices not negative), ``event_type`` in the allowed set,
unique primary keys (customers, products, transactions), product and customer ids of transactions
and events known, and a CSV that was split with the wrong delimiter.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from pipelines.data import tables as T
from pipelines.errors import ConfigurationError, DataValidationError

DELIMITERS = (",", ";", "\t", "|")
MAX_SHOWN = 5
ALLOW_EMPTY = ("events",)
PRIMARY_KEYS = {"customers": "customer_id", "products": "product_id", "transactions": "transaction_id"}
INTEGER_COLUMNS = ("quantity", "age")  # int64 when all present and whole: CSV and Parquet type alike
# Earliest and latest dates datetime64[ns] can hold.
DATE_RANGE = (pd.Timestamp("1677-09-22"), pd.Timestamp("2262-04-11"))


@dataclass
class RawTable:
    """One table as read, before validation: canonical column names, index = line (or row) in ``path``."""

    path: Path
    df: pd.DataFrame
    source_columns: dict[str, str] = field(default_factory=dict)  # canonical -> source name, for messages
    date_format: str | None = None
    rows_read: int | None = None  # rows in the source file when rules dropped some (default: len(df))
    dropped: dict[str, int] = field(default_factory=dict)  # rule -> rows dropped before validation
    note: str = ""  # how the table came about, e.g. "products derived from it"; shown after the path
    ignored_columns: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return _where(self.path, self.note)


@dataclass
class TableReport:
    source: str
    rows_read: int
    rows_kept: int
    dropped: dict[str, int] = field(default_factory=dict)
    ignored_columns: tuple[str, ...] = ()


@dataclass
class IngestReport:
    """Rows read, kept and dropped (per rule) for each table."""

    tables: dict[str, TableReport] = field(default_factory=dict)

    def metrics(self) -> dict[str, int]:
        """Flat counts for MLflow: ``<table>_rows_read``, ``<table>_rows``, ``<table>_dropped_<rule>``."""
        out: dict[str, int] = {}
        for name, t in self.tables.items():
            out[f"{name}_rows_read"] = t.rows_read
            out[f"{name}_rows"] = t.rows_kept
            for rule, n in t.dropped.items():
                out[f"{name}_dropped_{rule}"] = n
        return out

    def render(self) -> str:
        lines = [f"{'table':<14}{'rows read':>10}{'dropped':>10}{'rows kept':>11}  source"]
        for name, t in self.tables.items():
            dropped = t.rows_read - t.rows_kept
            lines.append(f"{name:<14}{t.rows_read:>10}{dropped:>10}{t.rows_kept:>11}  {t.source}")
            for rule, n in t.dropped.items():
                lines.append(f"  dropped {rule:<24}{n:>8}")
            if t.ignored_columns:
                lines.append(f"  ignored columns: {', '.join(t.ignored_columns)}")
        return "\n".join(lines)

    __str__ = render


# --------------------------------------------------------------------------- reading


def check_delimiter(delimiter: str | None) -> str | None:
    """The delimiter the user asked for (``tab`` and ``\\t`` mean a tab), or a ConfigurationError."""
    if not delimiter:
        return None
    delimiter = {"tab": "\t", "\\t": "\t"}.get(delimiter, delimiter)
    if delimiter not in DELIMITERS:
        raise ConfigurationError(f"--delimiter must be one of , ; tab |, got {delimiter!r}")
    return delimiter


def _sniff(header: str, sample: str) -> str | None:
    """The most likely delimiter of a CSV sample, among :data:`DELIMITERS` only."""
    try:
        return csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        counts = {d: header.count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else None


def _check_csv_delimiter(path: Path, sample: str, sep: str) -> None:
    header = sample.splitlines()[0]
    if "\n" in sample.rstrip("\n"):  # sniff complete lines only
        sample = sample[: sample.rstrip("\n").rfind("\n")]
    sniffed = _sniff(header, sample)
    if sniffed and sniffed != sep and header.count(sniffed) > header.count(sep):
        raise DataValidationError(
            f"{path}: column {header[:60]!r}: the header looks like it is delimited by {sniffed!r}, "
            f"not {sep!r}; pass --delimiter {sniffed!r} (or set `delimiter` in the column map)"
        )


def _check_no_nul(path: Path) -> None:
    """Refuse a NUL byte: a binary or damaged file (or UTF-16), whatever it decodes to."""
    with open(path, "rb") as fh:
        offset = lines = 0
        for block in iter(lambda: fh.read(1 << 20), b""):
            at = block.find(b"\0")
            if at >= 0:
                line = lines + block.count(b"\n", 0, at) + 1
                raise DataValidationError(
                    f"{path}: line {line}: a NUL byte (\\x00) at byte {offset + at}: not a text table (a binary or "
                    "damaged file, or UTF-16: save it as UTF-8)")
            lines, offset = lines + block.count(b"\n"), offset + len(block)


def _check_csv_structure(path: Path, sep: str, encoding: str) -> None:
    """Refuse a column named twice in the header and a ragged row (more or fewer fields than the header: pandas
    would shift a longer first row into an index, and pad a shorter one)."""
    with open(path, encoding=encoding, newline="") as fh:
        reader = csv.reader(fh, delimiter=sep)
        header = next(reader, [])
        seen: set[str] = set()
        twice = [name for name in header if name in seen or seen.add(name)]
        if twice:
            raise DataValidationError(f"{path}: column {twice[0]!r}: named twice in the header (line 1); "
                                      "rename or remove one of them")
        for row in reader:
            if row and len(row) != len(header):  # an empty line is skipped, as pandas does
                raise DataValidationError(
                    f"{path}: line {reader.line_num}: {len(row)} fields where the header has {len(header)} "
                    f"(a ragged row: a stray {sep!r} or quote?)")


def read_source(path: str | Path, delimiter: str | None = None, encoding: str | None = None) -> pd.DataFrame:
    """Read one CSV (all columns as strings) or Parquet file, indexed by 1-based line (CSV) or row number.

    A CSV is read with ``delimiter`` (default ``,``); a file whose header looks delimited by another of
    ``, ; tab |`` is an error that names the delimiter to pass, and so are a NUL byte, a column named twice and
    a ragged row (:func:`_check_no_nul`, :func:`_check_csv_structure`).
    """
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(f"{path}: file not found")
    if path.suffix == ".parquet":
        try:
            df = T.read_raw(path)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise DataValidationError(f"{path}: not a readable Parquet file ({exc})") from exc
        df.index = pd.RangeIndex(1, len(df) + 1)
        return df
    sep = check_delimiter(delimiter) or ","
    encoding = encoding or "utf-8-sig"
    _check_no_nul(path)
    try:
        with open(path, encoding=encoding, newline="") as fh:
            sample = fh.read(16384)
        if not sample.strip():
            raise DataValidationError(f"{path}: empty file (no header, no rows)")
        _check_csv_delimiter(path, sample, sep)
        _check_csv_structure(path, sep, encoding)
        df = T.read_raw(path, sep=sep, encoding=encoding)
    except LookupError as exc:
        raise ConfigurationError(f"column map: unknown encoding {encoding!r}") from exc
    except UnicodeDecodeError as exc:
        raise DataValidationError(
            f"{path}: not {encoding} text ({exc.reason} at byte {exc.start}); "
            "set `encoding` in the column map (for example latin-1)"
        ) from exc
    except pd.errors.ParserError as exc:
        raise DataValidationError(f"{path}: cannot be read as CSV delimited by {sep!r}: {exc}") from exc
    df.index = pd.RangeIndex(2, len(df) + 2)
    return df


# --------------------------------------------------------------------------- one table


class RowCheck:
    """Raises the errors of one table, naming the file, the column (with its source name) and the rows."""

    def __init__(self, path: Path | str, source_columns: Mapping[str, str] | None = None, note: str = ""):
        self.where = _where(path, note)
        self.unit = "row" if str(path).endswith(".parquet") else "line"
        self.source_columns = dict(source_columns or {})

    def label(self, col: str) -> str:
        src = self.source_columns.get(col)
        return f"'{src}' ({col})" if src and src != col else f"'{col}'"

    def rows(self, mask: pd.Series, values: pd.Series) -> str:
        bad = mask[mask].index
        shown = ", ".join(f"{self.unit} {i} ({_show(values.loc[i])})" for i in bad[:MAX_SHOWN])
        more = f" ({len(bad)} rows in all)" if len(bad) > MAX_SHOWN else ""
        return f"first offending rows: {shown}{more}"

    def fail_if(self, mask: pd.Series, col: str, problem: str, values: pd.Series) -> None:
        """Raise when ``mask`` marks any row; ``values`` are the raw values to quote."""
        if mask.any():
            raise DataValidationError(
                f"{self.where}: column {self.label(col)}: {problem}; {self.rows(mask, values)}"
            )


def check_numbers(check: RowCheck, col: str, number: pd.Series, raw: pd.Series,
                  rows: pd.Series | None = None) -> None:
    """Raise unless every number (of ``rows``) is finite and within ``tables.NUMBER_LIMITS[col]``."""
    present = number.notna() if rows is None else rows & number.notna()
    check.fail_if(present & ~np.isfinite(number.to_numpy(float, na_value=np.nan)), col,
                  "not a finite number", raw)
    low, high = T.NUMBER_LIMITS.get(col, (-np.inf, np.inf))
    if low == 0:
        hint = " (returns? a column map drops them by rule)" if col in ("quantity", "amount") else ""
        check.fail_if(present & (number < 0), col, f"negative value{hint}", raw)
    check.fail_if(present & ((number < low) | (number > high)), col,
                  f"value out of range (from {low:g} to {high:g}: see NUMBER_LIMITS in pipelines/data/tables.py)", raw)


def _where(path, note: str = "") -> str:
    return f"{path} ({note})" if note else str(path)


def _show(value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "empty"
    text = str(value)
    return repr(text if len(text) <= 40 else text[:37] + "...")


def clean_ids(values: pd.Series) -> pd.Series:
    """Ids as stripped strings (whole floats from Parquet lose their ``.0``); empty ids become missing."""
    if pd.api.types.is_float_dtype(values) and (values.dropna() % 1 == 0).all():
        values = values.astype("Int64")
    values = values.astype("str").str.strip()
    return values.mask(values == "")


def _parse_dates(raw: pd.Series, date_format: str | None) -> tuple[pd.Series, str, pd.Series]:
    """Parse a date column: the naive datetimes (NaT where unparsable or out of range), the format used, and
    which rows hold a date outside :data:`DATE_RANGE` (e.g. 9999-12-31: a valid date, not representable)."""
    fmt = "datetime"
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = raw
    else:
        text = raw.astype("str").str.strip()
        fmt = date_format
        if fmt is None:
            present = text.dropna()
            guessed = guess_datetime_format(present.iloc[0]) if len(present) else None
            fmt = "ISO8601" if guessed is None or guessed.startswith("%Y-%m-%d") else guessed
        parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)  # offsets to UTC, naive as is
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert(None)  # as UTC
    out_of_range = parsed.notna() & ((parsed < DATE_RANGE[0]) | (parsed > DATE_RANGE[1]))
    return parsed.mask(out_of_range), fmt, out_of_range


def validate_table(name: str, df: pd.DataFrame, path: str | Path, *,
                   source_columns: Mapping[str, str] | None = None, date_format: str | None = None,
                   note: str = "") -> pd.DataFrame:
    """Check one canonical table and return it typed, with the contract's columns in contract order.

    ``df`` carries canonical column names and, as index, the line (CSV) or row (Parquet) numbers of
    ``path`` that error messages cite (as :func:`read_source` sets them; a plain 0-based index is taken
    as file order). ``source_columns`` maps canonical names to the user's names for messages;
    ``date_format`` (strptime) overrides the format guessed from the first date.
    """
    check = RowCheck(path, source_columns, note)
    if isinstance(df.index, pd.RangeIndex) and df.index.start == 0:
        df = df.set_axis(pd.RangeIndex(1, len(df) + 1) if check.unit == "row" else pd.RangeIndex(2, len(df) + 2))
    required, optional = T.REQUIRED_COLUMNS[name], T.OPTIONAL_COLUMNS[name]
    missing = [c for c in required if c not in df.columns]
    if missing:
        found = ", ".join(repr(str(c)) for c in df.columns) or "none"
        cols = ", ".join(check.label(c) for c in missing)
        what = "column" if len(missing) == 1 else "columns"
        raise DataValidationError(f"{check.where}: {what} {cols}: missing required {what}; found columns: {found}")
    if len(df) == 0 and name not in ALLOW_EMPTY:
        raise DataValidationError(f"{check.where}: no data rows (empty file)")

    columns = [c for c in (*required, *optional) if c in df.columns]
    out = pd.DataFrame(index=df.index)
    for col in columns:
        raw = df[col]
        is_required = col in required
        if col in T.ID_COLUMNS:
            out[col] = clean_ids(raw)
            check.fail_if(out[col].isna(), col, "empty id", raw)
        elif col in T.DATE_COLUMNS[name]:
            parsed, fmt, out_of_range = _parse_dates(raw, date_format)
            if is_required:
                check.fail_if(raw.isna(), col, "missing date", raw)
            first, last = (d.date().isoformat() for d in DATE_RANGE)
            check.fail_if(out_of_range, col, f"date out of range (dates from {first} to {last} are supported)", raw)
            check.fail_if(raw.notna() & parsed.isna(), col,
                          f"unparsable date (expected format {fmt!r}; set `date_format` in the column map)", raw)
            out[col] = parsed.astype("datetime64[ns]")
        elif col in T.NUMERIC_COLUMNS[name]:
            number = pd.to_numeric(raw, errors="coerce").astype("float64")
            if is_required:
                check.fail_if(raw.isna(), col, "missing value", raw)
            check.fail_if(raw.notna() & number.isna(), col, "non-numeric value", raw)
            check_numbers(check, col, number, raw)
            if col in INTEGER_COLUMNS and (number.dropna() % 1 == 0).all() and number.notna().all():
                number = number.astype("int64")
            out[col] = number
        else:
            text = raw.astype("str").str.strip()
            out[col] = text.mask(text == "")
            if is_required:
                check.fail_if(out[col].isna(), col, "empty value", raw)
    if "event_type" in out.columns:
        allowed = ", ".join(T.EVENT_TYPES)
        check.fail_if(~out["event_type"].isin(T.EVENT_TYPES), "event_type", f"not one of {allowed}", df["event_type"])
    key = PRIMARY_KEYS.get(name)
    if key:
        check.fail_if(out[key].duplicated(keep=False), key, f"duplicate {key.replace('_', ' ')}", df[key])
    return out


# --------------------------------------------------------------------------- all tables


def _as_raw(item: RawTable | tuple) -> RawTable:
    return item if isinstance(item, RawTable) else RawTable(*item)


def _check_references(raw: RawTable, typed: pd.DataFrame, known: Mapping[str, tuple[str, pd.Series]]):
    check = RowCheck(raw.path, raw.source_columns, raw.note)
    for col, (owner, ids) in known.items():
        if col in typed.columns:
            unknown = ~typed[col].isin(ids)
            check.fail_if(unknown, col, f"unknown {col.replace('_', ' ')} (not in {owner})", typed[col])


def validate_tables(raw: Mapping[str, RawTable | tuple[Path, pd.DataFrame]]) -> tuple[T.Tables, IngestReport]:
    """Validate the four tables (``name -> RawTable`` or ``(path, df)``) and the ids that link them.

    ``events`` may be left out (a reader that does not need it: :func:`pipelines.data.tables.load_tables` with
    ``events=False``); the other three are always checked. Returns the typed tables (fresh 0-based index) and the
    report. Problems of several tables are raised together, one line each.
    """
    raws = {name: _as_raw(raw[name]) for name in T.TABLE_NAMES if name != "events" or name in raw}
    typed: T.Tables = {}
    problems = []
    for r in raws.values():  # nothing else is worth checking (derived tables are empty too)
        if r.dropped and len(r.df) == 0:
            rules = ", ".join(f"{n} {rule}" for rule, n in r.dropped.items() if n)
            raise DataValidationError(f"{r.where}: no rows left: the rules dropped all {r.rows_read} ({rules})")
    for name, r in raws.items():
        try:
            typed[name] = validate_table(name, r.df, r.path, source_columns=r.source_columns,
                                         date_format=r.date_format, note=r.note)
        except DataValidationError as exc:
            problems.append(str(exc))
    if problems:
        raise DataValidationError("\n".join(problems))

    known = {
        "product_id": (raws["products"].where, typed["products"]["product_id"]),
        "customer_id": (raws["customers"].where, typed["customers"]["customer_id"]),
    }
    for name in ("transactions", "events"):
        if name in raws:
            _check_references(raws[name], typed[name], known)

    report = IngestReport()
    for name, r in raws.items():
        report.tables[name] = TableReport(
            source=r.where,
            rows_read=len(r.df) if r.rows_read is None else r.rows_read,
            rows_kept=len(typed[name]),
            dropped=dict(r.dropped),
            ignored_columns=tuple(r.ignored_columns),
        )
    return {name: df.reset_index(drop=True) for name, df in typed.items()}, report
