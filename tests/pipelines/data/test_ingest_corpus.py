"""A corpus of malformed (and merely unusual) shop exports through `storefront ingest`, one case per variant.

Every case runs the real command on the hand-written shop of ``conftest.py`` with one thing changed, and asserts the
exit code, that the one-line message names the problem (file, column, line) and, for a refused case, that nothing
was written. ``accepted`` cases are read as they are; ``repaired`` cases are read after a documented rule changed or
dropped rows (named in the case). :func:`test_the_corpus_counts` keeps the table of counts that the README quotes.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd
import pytest

from pipelines import cli
from pipelines.data.tables import load_tables
from tests.pipelines.data.conftest import CANONICAL, ONLINE_RETAIL

TX = "transactions.csv"


def edit(text: str, line: int, column: str, value: str) -> str:
    """``text`` (a CSV) with ``column`` of line ``line`` (the header is line 1) set to ``value``."""
    rows = list(csv.reader(io.StringIO(text)))
    rows[line - 1][rows[0].index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def tx(line: int, column: str, value: str) -> dict[str, str]:
    return {TX: edit(CANONICAL[TX], line, column, value)}


def parquet(name: str, **changes) -> dict[str, bytes | None]:
    """The table ``name`` as a Parquet file (instead of its CSV) with whole columns replaced."""
    df = pd.read_csv(io.StringIO(CANONICAL[f"{name}.csv"]), dtype=str).assign(**changes)
    buffer = io.BytesIO()
    df.to_parquet(buffer, index=False)
    return {f"{name}.csv": None, f"{name}.parquet": buffer.getvalue()}


RETAIL_MAP = json.dumps({
    "transactions": {"file": "online_retail.csv", "invoice": "InvoiceNo", "unit_price": "UnitPrice",
                     "columns": {"customer_id": "CustomerID", "product_id": "StockCode", "quantity": "Quantity",
                                 "purchase_date": "InvoiceDate"}},
    "products": {"from": "transactions", "constants": {"category": "Unknown"}},
    "customers": {"from": "transactions"}})


def retail(line: int, column: str, value: str) -> dict[str, str]:
    return {"online_retail.csv": edit(ONLINE_RETAIL, line, column, value)}


@dataclass(frozen=True)
class Case:
    name: str
    files: dict  # file name -> text, bytes or None (left out), over the canonical shop
    outcome: str  # refused, accepted or repaired
    needles: tuple[str, ...] = ()  # refused: what the message names; else: what the report prints
    args: tuple[str, ...] = ()
    check: Callable[[dict], bool] | None = None  # accepted / repaired: a fact about the written tables
    base: dict = field(default_factory=lambda: CANONICAL)


CORPUS = [
    # --- files that are not tables ---------------------------------------------------------------------
    Case("empty file", {TX: ""}, "refused", (TX, "empty file")),
    Case("header only", {TX: CANONICAL[TX].splitlines()[0] + "\n"}, "refused", (TX, "no data rows")),
    Case("binary file", {TX: bytes(range(256)) * 4}, "refused", (TX, "line 1", "NUL byte", "binary")),
    Case("UTF-16 text", {TX: CANONICAL[TX].encode("utf-16")}, "refused", (TX, "NUL byte", "UTF-16")),
    Case("null byte in a field", {"customers.csv": CANONICAL["customers.csv"].replace("C2,", "C\x002,")},
         "refused", ("customers.csv", "line 3", "NUL byte")),
    Case("latin-1 without encoding", {"products.csv": CANONICAL["products.csv"].replace("Novel", "Caf\xe9")
                                      .encode("latin-1")}, "refused", ("products.csv", "not utf-8-sig text",
                                                                       "latin-1")),
    Case("unknown encoding in the map", {}, "refused", ("unknown encoding 'klingon'",),
         args=("--column-map", json.dumps({"encoding": "klingon"}))),
    Case("corrupt Parquet", {TX: None, "transactions.parquet": b"PAR1 not really"}, "refused",
         ("transactions.parquet", "not a readable Parquet file")),
    # --- CSV structure -----------------------------------------------------------------------------------
    Case("ragged row, longer", {TX: CANONICAL[TX].replace("T2,C2,P2,2,119.8,", "T2,C2,P2,2,119.8,x,")},
         "refused", (TX, "line 3", "7 fields where the header has 6")),
    Case("ragged first row (pandas would make it the index)", {TX: CANONICAL[TX].replace(
        "T1,C1,P1,1,12.5,2023-03-01 10:00:00", "T1,C1,P1,1,12.5,2023-03-01 10:00:00,extra")}, "refused",
         (TX, "line 2", "7 fields")),
    Case("ragged row, shorter", {TX: CANONICAL[TX].replace("T3,C1,P2,1,59.9,2023-03-05 09:15:00", "T3,C1,P2,1,59.9")},
         "refused", (TX, "line 4", "5 fields where the header has 6")),
    Case("duplicate header", {TX: CANONICAL[TX].replace("amount,purchase_date", "amount,amount,purchase_date")
                              .replace("12.5,", "12.5,12.5,").replace("119.8,", "119.8,119.8,")
                              .replace("59.9,", "59.9,59.9,")}, "refused", (TX, "column 'amount'", "named twice")),
    Case("semicolons without --delimiter", {TX: CANONICAL[TX].replace(",", ";")}, "refused",
         (TX, "delimited by ';'", "--delimiter")),
    Case("missing required column", {TX: "\n".join(",".join(f for i, f in enumerate(line.split(",")) if i != 4)
                                                   for line in CANONICAL[TX].splitlines()) + "\n"}, "refused",
         (TX, "column 'amount'", "missing required column")),
    Case("missing customers file", {"customers.csv": None}, "refused", ("no customers.parquet or customers.csv",)),
    # --- numbers -----------------------------------------------------------------------------------------
    Case("amount inf", tx(2, "amount", "inf"), "refused", (TX, "column 'amount'", "not a finite number", "line 2 ('inf')")),
    Case("amount -inf", tx(3, "amount", "-inf"), "refused", (TX, "column 'amount'", "not a finite number", "line 3")),
    Case("amount 1e308", tx(2, "amount", "1e308"), "refused",
         (TX, "column 'amount'", "value out of range (from 0 to 1e+09", "line 2 ('1e308')")),
    Case("quantity that overflows 64 bits", tx(4, "quantity", "99999999999999999999"), "refused",
         (TX, "column 'quantity'", "value out of range (from 0 to 1e+06", "line 4")),
    Case("amount NaN", tx(2, "amount", "NaN"), "refused", (TX, "column 'amount'", "non-numeric value", "line 2 ('NaN')")),
    Case("decimal comma", tx(3, "amount", "119,80"), "refused", (TX, "column 'amount'", "non-numeric", "'119,80'")),
    Case("currency sign", tx(2, "amount", "\u20ac12.50"), "refused", (TX, "column 'amount'", "non-numeric", "line 2")),
    Case("negative quantity", tx(3, "quantity", "-2"), "refused", (TX, "column 'quantity'", "negative value", "line 3")),
    Case("missing amount", tx(4, "amount", ""), "refused", (TX, "column 'amount'", "missing value", "line 4")),
    Case("age 250", {"customers.csv": edit(CANONICAL["customers.csv"], 2, "age", "250")}, "refused",
         ("customers.csv", "column 'age'", "value out of range (from 0 to 150", "line 2")),
    Case("negative base price", {"products.csv": edit(CANONICAL["products.csv"], 3, "base_price", "-59.9")},
         "refused", ("products.csv", "column 'base_price'", "negative value", "line 3")),
    Case("Parquet amount inf", parquet("transactions", amount=["12.5", "inf", "59.9"]), "refused",
         ("transactions.parquet", "column 'amount'", "not a finite number", "row 2")),
    Case("unit price inf (column map)", retail(3, "UnitPrice", "inf"), "refused",
         ("online_retail.csv", "'UnitPrice' (unit_price)", "not a finite number", "line 3"),
         args=("--column-map", RETAIL_MAP), base={}),
    Case("unit price 1e12 (column map)", retail(2, "UnitPrice", "1e12"), "refused",
         ("online_retail.csv", "'UnitPrice' (unit_price)", "value out of range", "line 2"),
         args=("--column-map", RETAIL_MAP), base={}),
    # --- dates -------------------------------------------------------------------------------------------
    Case("far future date", tx(3, "purchase_date", "9999-12-31"), "refused",
         (TX, "column 'purchase_date'", "date out of range", "line 3 ('9999-12-31')")),
    Case("far past date", tx(2, "purchase_date", "1066-10-14"), "refused",
         (TX, "column 'purchase_date'", "date out of range", "line 2")),
    Case("Parquet far date", parquet("transactions", purchase_date=pd.to_datetime(
        ["2023-03-01", "9999-12-31", "2023-03-05"]).astype("datetime64[us]")), "refused",
         ("transactions.parquet", "column 'purchase_date'", "date out of range", "row 2")),
    Case("impossible date", tx(2, "purchase_date", "2023-02-30"), "refused",
         (TX, "column 'purchase_date'", "unparsable date", "line 2")),
    Case("mixed date formats", tx(3, "purchase_date", "03/02/2023"), "refused",
         (TX, "column 'purchase_date'", "unparsable date", "line 3 ('03/02/2023')")),
    # --- ids and references ------------------------------------------------------------------------------
    Case("unknown product", tx(4, "product_id", "P9"), "refused", (TX, "column 'product_id'", "unknown product id",
                                                                   "line 4 ('P9')")),
    Case("unknown customer in events", {"events.csv": edit(CANONICAL["events.csv"], 3, "customer_id", "C7")},
         "refused", ("events.csv", "column 'customer_id'", "unknown customer id", "line 3")),
    Case("duplicate transaction id", tx(4, "transaction_id", "T1"), "refused",
         (TX, "column 'transaction_id'", "duplicate transaction id", "line 2 ('T1')", "line 4 ('T1')")),
    Case("empty id", tx(3, "customer_id", ""), "refused", (TX, "column 'customer_id'", "empty id", "line 3")),
    Case("unknown event type", {"events.csv": edit(CANONICAL["events.csv"], 2, "event_type", "purchase")},
         "refused", ("events.csv", "column 'event_type'", "not one of page_view", "line 2 ('purchase')")),
    # --- accepted as they are ------------------------------------------------------------------------------
    Case("byte-order mark", {TX: "\ufeff" + CANONICAL[TX]}, "accepted",
         check=lambda t: list(t["transactions"].columns)[0] == "transaction_id"),
    Case("CRLF line ends", {TX: CANONICAL[TX].replace("\n", "\r\n")}, "accepted",
         check=lambda t: len(t["transactions"]) == 3),
    Case("quoted newline in a name", {"products.csv": edit(CANONICAL["products.csv"], 2, "product_name",
                                                          "Novel\nvol. 2")}, "accepted",
         check=lambda t: t["products"]["product_name"].tolist()[0] == "Novel\nvol. 2"),
    Case("blank lines at the end", {TX: CANONICAL[TX] + "\n\n"}, "accepted", check=lambda t: len(t["transactions"]) == 3),
    Case("no events file", {"events.csv": None}, "accepted", ("no events file: empty events table",),
         check=lambda t: len(t["events"]) == 0),
    Case("tab-delimited with --delimiter tab", {name: text.replace(",", "\t") for name, text in CANONICAL.items()},
         "accepted", args=("--delimiter", "tab"), check=lambda t: len(t["transactions"]) == 3),
    Case("latin-1 with `encoding` in the map", {"products.csv": CANONICAL["products.csv"].replace("Novel", "Caf\xe9")
                                               .encode("latin-1")}, "accepted",
         args=("--column-map", json.dumps({"encoding": "latin-1"})),
         check=lambda t: "Caf\xe9" in t["products"]["product_name"].tolist()),
    # --- repaired by a documented rule ---------------------------------------------------------------------
    Case("spaces around ids (stripped)", tx(2, "customer_id", "  C1 "), "repaired",
         check=lambda t: t["transactions"]["customer_id"].tolist()[0] == "C1"),
    Case("UTC offsets (converted to UTC)", tx(2, "purchase_date", "2023-03-01T10:00:00+02:00"), "repaired",
         check=lambda t: str(t["transactions"]["purchase_date"].iloc[0]) == "2023-03-01 08:00:00"),
    Case("whole floats as ids in Parquet (12.0 is '12')", parquet("customers", customer_id=[1.0, 2.0]) | {
        TX: CANONICAL[TX].replace(",C1,", ",1,").replace(",C2,", ",2,"),
        "events.csv": CANONICAL["events.csv"].replace("C1,", "1,").replace("C2,", "2,")}, "repaired",
         check=lambda t: t["customers"]["customer_id"].tolist() == ["1", "2"]),
    Case("returns, guest lines, free items (column map rules)", {"online_retail.csv": ONLINE_RETAIL}, "repaired",
         ("dropped returns", "dropped missing_customer_id", "dropped non_positive_price"),
         args=("--column-map", RETAIL_MAP), base={}, check=lambda t: len(t["transactions"]) == 8),
]


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_ingest_corpus(case, write_shop, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMANDS", {"ingest": cli.COMMANDS["ingest"]})
    folder = write_shop(case.files, base=case.base)
    out = tmp_path / "out"
    code = cli.main(["ingest", "--source-dir", str(folder), "--output-dir", str(out), "--no-track", *case.args])
    printed = capsys.readouterr()
    if case.outcome == "refused":
        assert code == 2, printed
        assert "Traceback" not in printed.err
        last = printed.err.strip().splitlines()[-1]
        assert last.startswith("storefront ingest: error: "), printed.err
        message = printed.err.split("storefront ingest: error: ", 1)[1]
        for needle in case.needles:
            assert needle in message, (needle, message)
        assert not out.exists()  # nothing written
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []
    else:
        assert code == 0, printed.err
        for needle in case.needles:
            assert needle in printed.out, (needle, printed.out)
        assert case.check(load_tables(out)), load_tables(out)


def test_the_corpus_counts():
    counts = {outcome: sum(c.outcome == outcome for c in CORPUS) for outcome in ("refused", "accepted", "repaired")}
    assert len(CORPUS) >= 30 and counts == {"refused": 39, "accepted": 7, "repaired": 4}, counts
