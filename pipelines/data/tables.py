"""The canonical shop tables: names, column contract, reading, atomic writing and a stable digest.

Canonical tables (DESIGN.md, "Data contract"): ``customers``, ``products``, ``transactions``, ``events``.
Ids are strings, dates are ``datetime64[ns]``, quantity and amount are numeric. Files are
``<data_dir>/<table>.parquet`` or ``<data_dir>/<table>.csv``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
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


def coerce_types(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Cast a canonical table's ids to strings, dates to datetimes and numbers to floats/ints."""
    df = df.copy()
    for col in ID_COLUMNS:
        if col in df.columns:
            df[col] = df[col].astype(str)
    for col in DATE_COLUMNS[name]:
        if col in df.columns:
            df[col] = pd.to_datetime(df[col]).astype("datetime64[ns]")
    for col in NUMERIC_COLUMNS[name]:
        if col in df.columns:
            df[col] = pd.to_numeric(df[col])
    for col in ("category", "subcategory", "event_type", "product_name", "gender", "location", "profession"):
        if col in df.columns:
            df[col] = df[col].astype(str)
    return df


def load_tables(data_dir: str | Path) -> Tables:
    """Load the four canonical tables from ``data_dir`` (as written by generate-data or ingest), typed.

    ``transactions`` gets a ``category`` column joined from ``products`` when it has none.
    """
    data_dir = Path(data_dir)
    tables: Tables = {}
    for name in TABLE_NAMES:
        path = table_path(data_dir, name)
        df = read_raw(path)
        missing = [c for c in REQUIRED_COLUMNS[name] if c not in df.columns]
        if missing:
            raise DataValidationError(f"{path}: missing required column(s) {', '.join(missing)}")
        tables[name] = coerce_types(name, df)
    tx = tables["transactions"]
    if "category" not in tx.columns:
        cats = tables["products"].set_index("product_id")["category"]
        tx["category"] = tx["product_id"].map(cats).astype(str)
    return tables


def write_tables(tables: Mapping[str, pd.DataFrame], out_dir: str | Path, fmt: str = "parquet") -> list[Path]:
    """Write every table to ``out_dir`` atomically: all files appear together, or none does.

    The tables are written into a temporary folder beside ``out_dir`` and moved into place only when
    every file has been written, so a failure never leaves partial data. Same input, same bytes.
    """
    if fmt not in FORMATS:
        raise DataValidationError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        for name, df in tables.items():
            target = tmp / f"{name}.{fmt}"
            if fmt == "parquet":
                df.to_parquet(target, index=False, compression="zstd")
            else:
                df.to_csv(target, index=False, date_format="%Y-%m-%dT%H:%M:%S")
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for name in tables:
            for other in FORMATS:  # drop a stale copy in the other format
                stale = out_dir / f"{name}.{other}"
                if other != fmt and stale.exists():
                    stale.unlink()
            target = out_dir / f"{name}.{fmt}"
            os.replace(tmp / target.name, target)
            written.append(target)
        return written
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
