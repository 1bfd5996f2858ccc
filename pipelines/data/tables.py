"""The canonical shop tables: names, column contract, reading, atomic writing and a stable digest.

Canonical tables (DESIGN.md, "Data contract"): ``customers``, ``products``, ``transactions``, ``events``.
Ids are strings, dates are ``datetime64[ns]``, quantity and amount are numeric. Files are
``<data_dir>/<table>.parquet`` or ``<data_dir>/<table>.csv``.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Mapping

import pandas as pd

from pipelines.errors import DataValidationError

logger = logging.getLogger(__name__)

TABLE_NAMES = ("customers", "products", "transactions", "events")
FORMATS = ("parquet", "csv")

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id",),
    "products": ("product_id", "category"),
    "transactions": ("transaction_id", "customer_id", "product_id", "quantity", "amount", "purchase_date"),
    "events": ("customer_id", "product_id", "event_type", "event_date"),
}
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("signup_date", "gender", "age", "location", "profession"),
    "products": ("product_name", "subcategory", "base_price"),
    "transactions": ("category",),
    "events": (),
}
ID_COLUMNS = ("customer_id", "product_id", "transaction_id")
DATE_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("signup_date",),
    "products": (),
    "transactions": ("purchase_date",),
    "events": ("event_date",),
}
NUMERIC_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("age",),
    "products": ("base_price",),
    "transactions": ("quantity", "amount"),
    "events": (),
}
# Every number of the data contract must be finite and within these inclusive limits (one place): quantities are
# units on one transaction line, amounts and prices money of one line or one unit, ages years. ``unit_price`` is
# the column-map price that amount = quantity x unit_price is built from.
NUMBER_LIMITS: dict[str, tuple[float, float]] = {
    "quantity": (0, 1_000_000),
    "amount": (0, 1e9),
    "base_price": (0, 1e9),
    "unit_price": (0, 1e9),
    "age": (0, 150),
}
EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "search")

Tables = dict[str, pd.DataFrame]


def table_path(data_dir: Path, name: str) -> Path:
    """The existing file of table ``name`` in ``data_dir`` (Parquet preferred over CSV)."""
    data_dir = Path(data_dir)
    for fmt in FORMATS:
        path = data_dir / f"{name}.{fmt}"
        if path.is_file():
            return path
    raise DataValidationError(
        f"{data_dir}: no {name}.parquet or {name}.csv (expected the tables {', '.join(TABLE_NAMES)}; "
        "run `storefront generate-data` or `storefront ingest` first)"
    )


def read_raw(path: Path, **csv_kwargs) -> pd.DataFrame:
    """Read one CSV or Parquet file as it is (CSV columns as strings), for validation."""
    path = Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], **csv_kwargs)


def load_tables(data_dir: str | Path, *, events: bool = True) -> Tables:
    """Load the four canonical tables from ``data_dir`` (as written by generate-data or ingest), typed.

    ``events=False`` leaves out the events table, the largest one (six per purchase in the generated shop): for
    readers that never use it (SARIMA's sales series), which saves its reading, checking and memory.

    They are checked with ingest's rules (:func:`pipelines.data.validation.validate_tables`): tables that break
    the data contract (written by something else) are refused with the first offending values and a hint to run
    ``storefront ingest``. The contract's columns are kept, in the file's order; ``transactions`` gets a ``category`` column joined from ``products`` when it has none.
    """
    from pipelines.data.validation import RawTable, read_source, validate_tables

    data_dir = Path(data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise DataValidationError(f"--data-dir {data_dir}: is a file, not a folder of tables")
    try:
        raws = {name: RawTable(path, read_source(path)) for name in TABLE_NAMES if events or name != "events"
                for path in (table_path(data_dir, name),)}
        tables, _ = validate_tables(raws)
    except DataValidationError as exc:
        raise DataValidationError(f"{exc}; run storefront ingest first (it checks and writes the canonical tables "
                                  f"of a shop's own files)") from None
    tables = {name: df[[c for c in raws[name].df.columns if c in df.columns]] for name, df in tables.items()}
    tx = tables["transactions"]
    if "category" not in tx.columns:
        cats = tables["products"].set_index("product_id")["category"]
        tx["category"] = tx["product_id"].map(cats).astype(str)
    return tables


TABLE_FILES = frozenset(f"{name}.{fmt}" for name in TABLE_NAMES for fmt in FORMATS)  # what a table folder may hold


def write_tables(tables: Mapping[str, pd.DataFrame], out_dir: str | Path, fmt: str = "parquet", *,
                 overwrite: bool = False, option: str = "--output-dir") -> list[Path]:
    """Write every table to ``out_dir`` atomically: the whole set appears at once, or nothing changes.

    The overwrite rule and the swap are :mod:`pipelines.outputs`'s: an existing set of tables is replaced only with
    ``overwrite`` (a table of the other format goes with it), a folder holding any other file is refused
    (:class:`~pipelines.errors.OutputPathError`, naming ``option``). Same input, same bytes.
    """
    from pipelines.outputs import write_folder

    if fmt not in FORMATS:
        raise DataValidationError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    out_dir = Path(out_dir)

    def write(folder: Path) -> list[Path]:
        for name, df in tables.items():
            target = folder / f"{name}.{fmt}"
            if fmt == "parquet":
                df.to_parquet(target, index=False, compression="zstd")
            else:
                df.to_csv(target, index=False, date_format="%Y-%m-%dT%H:%M:%S")
        return [out_dir.resolve() / f"{name}.{fmt}" for name in tables]

    return write_folder(out_dir, write, TABLE_FILES, overwrite=overwrite, option=option)


def dataset_digest(tables: Mapping[str, pd.DataFrame]) -> str:
    """A stable hex digest of the tables' content (independent of file format and row order of columns)."""
    h = hashlib.sha256()
    for name in sorted(tables):
        df = tables[name]
        df = df[sorted(df.columns)]
        h.update(name.encode())
        h.update(",".join(df.columns).encode())
        h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]
