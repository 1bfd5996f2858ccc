"""Column maps: read a shop's own export into the four canonical tables.

A column map is a YAML or JSON mapping (a file, or an inline JSON string on the command line). Each
canonical table (``customers``, ``products``, ``transactions``, ``events``) may have an entry:

``file``
    source file in the source directory (default ``<table>.parquet`` or ``<table>.csv``).
``columns``
    canonical column -> source column. Canonical columns not mapped are taken from a source column of
    the same name when there is one; other source columns are ignored (and listed in the report).
``constants``
    canonical column -> one value for every row, e.g. ``{category: Unknown}``.
``date_format``
    strptime format of the table's dates (default: guessed from the first date; ISO 8601 when in doubt).
``from: transactions``
    (``products``, ``customers``) derive the table from the transactions file: one row per distinct
    id among the kept transactions, other columns taken from the id's first row.
``invoice``
    (``transactions``) invoice column of an invoice-line file, where the invoice number repeats on
    every line and so cannot be the transaction id: ``transaction_id`` becomes
    ``<invoice>-<n>``, ``n`` being the line's position within its invoice in file order (1, 2, ...).
``unit_price``
    (``transactions``) unit price column: ``amount = quantity * unit_price`` (rounded to 6 decimals).
``return_prefix``
    (``transactions``) invoice prefix that marks a cancellation, default ``C``.

Top-level ``delimiter`` (``, ; tab |``) and ``encoding`` (default UTF-8, with or without BOM) apply to
every CSV file; ``--delimiter`` on the command line wins. Without an entry a table is read as
canonical, and ``events`` without a file is an empty table (valid: not every shop logs events).

Rules for real-shop rows. They apply to a ``transactions`` table read through a column map entry;
each dropped row is counted under the first rule it meets, in this order, and the counts are
printed and logged as ``transactions_dropped_<rule>``:

``returns``
    quantity or amount below zero, or an invoice starting with ``return_prefix``. A return is not a
    purchase: counting it would teach the recommenders and churn model that the customer wanted the
    item, and its negative amount would pull category sales below what was sold. (The original sale
    stays.)
``missing_customer_id``
    no customer id: the row cannot be attributed to a customer, so it carries no signal for
    recommendations or churn (guest checkouts; in the UCI data about a quarter of the lines).
``non_positive_price``
    unit price zero or below (free samples, write-offs, bad-debt adjustments): not a sale.

Canonical files read without a map get no rules: a negative quantity or an empty id there is an error.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import yaml

from pipelines.data import tables as T
from pipelines.errors import ConfigurationError, DataValidationError
from pipelines.data.validation import RawTable, RowCheck, check_delimiter, check_numbers, clean_ids, read_source

logger = logging.getLogger(__name__)

TABLE_KEYS = {"file", "from", "columns", "constants", "date_format"}
TRANSACTION_KEYS = {"invoice", "unit_price", "return_prefix"}
TOP_KEYS = {"delimiter", "encoding", *T.TABLE_NAMES}


@dataclass(frozen=True)
class TableMap:
    """How to build one canonical table (see the module docstring for each key)."""

    file: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    constants: Mapping[str, Any] = field(default_factory=dict)
    from_transactions: bool = False
    date_format: str | None = None
    invoice: str | None = None
    unit_price: str | None = None
    return_prefix: str = "C"  # empty: no invoice marks a return


@dataclass(frozen=True)
class ColumnMap:
    """A loaded column map: the tables it describes plus the CSV options; empty means "all canonical"."""

    tables: Mapping[str, TableMap] = field(default_factory=dict)
    delimiter: str | None = None
    encoding: str | None = None
    origin: str = ""  # where it came from, for messages and logging
    spec: Mapping[str, Any] = field(default_factory=dict)  # as loaded, for logging


# --------------------------------------------------------------------------- loading


def load_column_map(spec: str | Path | Mapping[str, Any]) -> ColumnMap:
    """A column map from a YAML/JSON file path, an inline JSON string (``{...}``) or a mapping."""
    if isinstance(spec, Mapping):
        return parse_column_map(spec, "(mapping)")
    text = str(spec).strip()
    if text.startswith("{"):
        try:
            return parse_column_map(json.loads(text), "(inline JSON)")
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"--column-map: not valid JSON ({exc})") from exc
    path = Path(text).expanduser()
    if not path.is_file():
        raise ConfigurationError(f"--column-map {path}: file not found")
    try:
        raw = path.read_text(encoding="utf-8")
        data = json.loads(raw) if path.suffix == ".json" else yaml.safe_load(raw)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"--column-map {path}: cannot parse ({exc})") from exc
    return parse_column_map(data or {}, str(path))


def parse_column_map(data: Any, origin: str = "(mapping)") -> ColumnMap:
    """Check a loaded column map and turn it into a :class:`ColumnMap` (ConfigurationError on mistakes)."""
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"column map {origin}: expected a mapping of table names, got {type(data).__name__}")
    _no_unknown(data, TOP_KEYS, origin, "top-level key")
    tables = {name: _table_map(name, data[name], f"{origin}: {name}") for name in T.TABLE_NAMES if name in data}
    try:
        delimiter = check_delimiter(data.get("delimiter"))
    except ConfigurationError as exc:
        raise ConfigurationError(f"column map {origin}: delimiter: {exc}") from exc
    return ColumnMap(tables, delimiter, data.get("encoding"), origin, dict(data))


def _no_unknown(spec: Mapping, allowed: set[str], where: str, what: str) -> None:
    unknown = sorted(str(k) for k in spec if k not in allowed)
    if unknown:
        raise ConfigurationError(f"column map {where}: unknown {what} {', '.join(unknown)} "
                                 f"(allowed: {', '.join(sorted(allowed))})")


def _table_map(name: str, spec: Any, where: str) -> TableMap:
    spec = spec or {}
    if not isinstance(spec, Mapping):
        raise ConfigurationError(f"column map {where}: expected a mapping, got {spec!r}")
    _no_unknown(spec, TABLE_KEYS | (TRANSACTION_KEYS if name == "transactions" else set()), where, "key")
    contract = {*T.REQUIRED_COLUMNS[name], *T.OPTIONAL_COLUMNS[name]}
    columns = {str(k): str(v) for k, v in (spec.get("columns") or {}).items()}
    constants = dict(spec.get("constants") or {})
    _no_unknown(columns, contract, f"{where}: columns", "canonical column")
    _no_unknown(constants, contract, f"{where}: constants", "canonical column")
    if both := sorted(set(columns) & set(constants)):
        raise ConfigurationError(f"column map {where}: {', '.join(both)} both mapped and constant")
    source = spec.get("from")
    if source is not None and (source != "transactions" or name not in ("products", "customers")):
        raise ConfigurationError(f"column map {where}: `from` must be 'transactions' (products, customers only)")
    if source and spec.get("file"):
        raise ConfigurationError(f"column map {where}: give either `file` or `from`, not both")
    for key, derived in (("invoice", "transaction_id"), ("unit_price", "amount")):
        if spec.get(key) and derived in columns:
            raise ConfigurationError(f"column map {where}: `{key}` derives {derived}; do not also map it")
    return TableMap(
        file=spec.get("file"), columns=columns, constants=constants, from_transactions=bool(source),
        date_format=spec.get("date_format"), invoice=spec.get("invoice"), unit_price=spec.get("unit_price"),
        return_prefix=str(spec.get("return_prefix", "C") or ""),
    )


# --------------------------------------------------------------------------- reading


def read_sources(source_dir: str | Path, column_map: ColumnMap | None = None,
                 delimiter: str | None = None) -> dict[str, RawTable]:
    """Read the four tables from ``source_dir`` as the column map says, ready for ``validate_tables``."""
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise ConfigurationError(f"--source-dir {source_dir}: not a directory")
    cmap = column_map or ColumnMap()
    read = partial(read_source, delimiter=delimiter or cmap.delimiter, encoding=cmap.encoding)

    tx_map = cmap.tables.get("transactions", TableMap())
    tx_path = _find(source_dir, "transactions", tx_map)
    tx_src = read(tx_path)
    out = {"transactions": _transactions(tx_path, tx_src, tx_map, rules="transactions" in cmap.tables)}
    kept = tx_src.loc[out["transactions"].df.index]
    used = set(tx_map.columns.values()) | {tx_map.invoice, tx_map.unit_price}
    for name in ("customers", "products", "events"):
        tmap = cmap.tables.get(name, TableMap())
        if tmap.from_transactions:
            out[name] = _derive(name, tmap, tx_map, tx_path, kept)
            used |= set(out[name].source_columns.values())
            continue
        path = _find(source_dir, name, tmap)
        out[name] = _empty_events(source_dir) if path is None else _mapped(name, path, read(path), tmap)
    tx = out["transactions"]
    tx.ignored_columns = tuple(c for c in tx.ignored_columns if c not in used)
    return {name: out[name] for name in T.TABLE_NAMES}


def _find(source_dir: Path, name: str, tmap: TableMap) -> Path | None:
    """The table's file; None for absent events (an empty table), an error for any other absent file."""
    if tmap.file:
        path = source_dir / tmap.file
        if not path.is_file():
            raise DataValidationError(f"{path}: file not found (named by the column map for {name})")
        return path
    for fmt in T.FORMATS:
        path = source_dir / f"{name}.{fmt}"
        if path.is_file():
            return path
    if name == "events":
        return None
    hint = f"; a column map can derive it: `{name}: {{from: transactions}}`" if name != "transactions" else ""
    raise DataValidationError(
        f"{source_dir}: no {name}.parquet or {name}.csv (name it with `file` in a column map{hint})"
    )


def _map_columns(name: str, src: pd.DataFrame, tmap: TableMap, path: Path, extra: tuple = ()):
    """Canonical columns of ``src`` per ``tmap``: (frame, canonical -> source name, ignored source columns)."""
    wanted = [*tmap.columns.values(), *(c for c in extra if c)]
    missing = [c for c in wanted if c not in src.columns]
    if missing:
        found = ", ".join(repr(str(c)) for c in src.columns)
        raise DataValidationError(f"{path}: column {', '.join(map(repr, missing))}: not found (named by the column "
                                  f"map for {name}); found columns: {found}")
    df = pd.DataFrame(index=src.index)
    labels: dict[str, str] = {}
    for col in (*T.REQUIRED_COLUMNS[name], *T.OPTIONAL_COLUMNS[name]):
        if col in tmap.columns:
            df[col] = src[tmap.columns[col]]
            labels[col] = tmap.columns[col]
        elif col in tmap.constants:
            df[col] = tmap.constants[col]
        elif col in src.columns:
            df[col] = src[col]
    ignored = tuple(str(c) for c in src.columns if c not in wanted and c not in df.columns)
    return df, labels, ignored


def _transactions(path: Path, src: pd.DataFrame, tmap: TableMap, rules: bool) -> RawTable:
    df, labels, ignored = _map_columns("transactions", src, tmap, path, (tmap.invoice, tmap.unit_price))
    invoice = clean_ids(src[tmap.invoice]) if tmap.invoice else None
    if invoice is not None:
        line = invoice.groupby(invoice, dropna=False).cumcount() + 1
        df["transaction_id"] = (invoice + "-" + line.astype("str")).where(invoice.notna())
        labels["transaction_id"] = f"{tmap.invoice} + line"
    if not rules:
        return RawTable(path, df, labels, tmap.date_format, ignored_columns=ignored)

    no_rows = pd.Series(False, index=df.index)
    quantity = pd.to_numeric(df["quantity"], errors="coerce") if "quantity" in df else no_rows.astype(float)
    returns = quantity < 0
    if "amount" in df:
        returns |= pd.to_numeric(df["amount"], errors="coerce") < 0
    if invoice is not None and tmap.return_prefix:
        returns |= invoice.str.startswith(tmap.return_prefix, na=False)
    missing_customer = clean_ids(df["customer_id"]).isna() if "customer_id" in df else no_rows
    keep, dropped = _apply_rules({"returns": returns, "missing_customer_id": missing_customer})
    price = pd.Series(1.0, index=df.index)
    if tmap.unit_price:
        price = _unit_price(src[tmap.unit_price], keep, path, tmap.unit_price)
        df["amount"] = (quantity * price).round(6)
        labels["amount"] = f"{labels.get('quantity', 'quantity')} x {tmap.unit_price}"
    keep, more = _apply_rules({"non_positive_price": price <= 0}, keep)
    dropped.update(more)
    logger.info("%s: dropped %s", path, ", ".join(f"{n} {rule}" for rule, n in dropped.items()))
    return RawTable(path, df.loc[keep], labels, tmap.date_format, rows_read=len(src), dropped=dropped,
                    ignored_columns=ignored)


def _apply_rules(masks: Mapping[str, pd.Series], keep: pd.Series | None = None):
    """Drop rows rule by rule: (rows kept, rule -> count); a row counts under the first rule it meets."""
    keep = keep.copy() if keep is not None else pd.Series(True, index=next(iter(masks.values())).index)
    dropped = {}
    for rule, mask in masks.items():
        hit = keep & mask
        dropped[rule] = int(hit.sum())
        keep &= ~hit
    return keep, dropped


def _unit_price(raw: pd.Series, keep: pd.Series, path: Path, column: str) -> pd.Series:
    """The unit prices as numbers; a missing or non-numeric price on a kept row is an error."""
    price = pd.to_numeric(raw, errors="coerce")
    check = RowCheck(path, {"unit_price": column})
    check.fail_if(keep & raw.isna(), "unit_price", "missing value", raw)
    check.fail_if(keep & raw.notna() & price.isna(), "unit_price", "non-numeric value", raw)
    check_numbers(check, "unit_price", price.where(price > 0), raw, keep)  # <= 0: dropped by rule
    return price


def _derive(name: str, tmap: TableMap, tx_map: TableMap, tx_path: Path, kept: pd.DataFrame) -> RawTable:
    """Products or customers: one row per distinct id among the kept transaction rows."""
    id_col = "product_id" if name == "products" else "customer_id"
    columns = {id_col: tx_map.columns.get(id_col, id_col), **tmap.columns}
    if name == "products" and "category" not in columns and "category" not in tmap.constants \
            and "category" not in kept.columns:
        raise ConfigurationError("column map products: map `category` to a column of the transactions file "
                                 "or set `constants: {category: Unknown}`")
    df, labels, _ = _map_columns(name, kept, replace(tmap, columns=columns), tx_path)
    df = df[~clean_ids(df[id_col]).duplicated()]
    return RawTable(tx_path, df, labels, tmap.date_format, note=f"{name} derived from it")


def _mapped(name: str, path: Path, src: pd.DataFrame, tmap: TableMap) -> RawTable:
    df, labels, ignored = _map_columns(name, src, tmap, path)
    return RawTable(path, df, labels, tmap.date_format, ignored_columns=ignored)


def _empty_events(source_dir: Path) -> RawTable:
    df = pd.DataFrame({c: pd.Series([], dtype="str") for c in T.REQUIRED_COLUMNS["events"]})
    return RawTable(source_dir, df, note="no events file: empty events table")
