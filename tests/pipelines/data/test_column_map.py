"""Column maps: loading, the UCI Online Retail layout through the example map, and the real-shop rules."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipelines.data.column_map import load_column_map, parse_column_map, read_sources
from pipelines.errors import ConfigurationError, DataValidationError
from pipelines.data.validation import validate_tables

RETAIL_MAP = {
    "transactions": {
        "file": "online_retail.csv", "invoice": "InvoiceNo", "unit_price": "UnitPrice",
        "columns": {"customer_id": "CustomerID", "product_id": "StockCode", "quantity": "Quantity",
                    "purchase_date": "InvoiceDate"},
    },
    "products": {"from": "transactions", "columns": {"product_name": "Description"},
                 "constants": {"category": "Unknown"}},
    "customers": {"from": "transactions", "columns": {"location": "Country"}},
}


def load(folder, column_map, **kwargs):
    return validate_tables(read_sources(folder, load_column_map(column_map), **kwargs))


def test_example_map_loads_online_retail_with_counted_rules(online_retail_dir, example_map):
    tables, report = load(online_retail_dir, example_map)
    tx = tables["transactions"]
    assert report.tables["transactions"].rows_read == 14
    assert report.tables["transactions"].dropped == {"returns": 3, "missing_customer_id": 2, "non_positive_price": 1}
    assert report.metrics()["transactions_dropped_returns"] == 3
    assert len(tx) == 8 == report.tables["transactions"].rows_kept
    assert tx["transaction_id"].tolist() == ["536365-1", "536365-2", "536365-3", "536366-1", "536367-1",
                                             "536370-1", "536370-2", "536367-2"]
    assert tx["amount"].iloc[0] == pytest.approx(15.3) and tx["amount"].iloc[-1] == pytest.approx(13.52)
    assert tx["quantity"].dtype == "int64" and (tx["quantity"] > 0).all()
    assert tx["purchase_date"].iloc[0] == pd.Timestamp("2010-12-01 08:26")
    assert not tx["transaction_id"].str.startswith("C").any()

    products = tables["products"]
    assert products["product_id"].tolist() == ["85123A", "71053", "22752", "22633", "84879", "22728", "22727"]
    assert set(products["category"]) == {"Unknown"}
    assert products["product_name"].iloc[2] == "SET 7 BABUSHKA NESTING BOXES, LARGE"
    assert products["product_name"].iloc[6] == "ALARM CLOCK BAKELIKE RED"  # stripped
    customers = tables["customers"].set_index("customer_id")["location"].to_dict()
    assert customers == {"17850": "United Kingdom", "13047": "United Kingdom", "12583": "France"}
    assert len(tables["events"]) == 0
    assert "dropped returns" in report.render()


def test_each_row_counts_under_its_first_rule(write_shop, online_retail_text):
    header, *rows = online_retail_text.splitlines(keepends=True)
    text = header + "C536999,22469,CANCELLED BUT POSITIVE,2,12/1/2010 9:53,0,,United Kingdom\n" + "".join(rows)
    folder = write_shop({"online_retail.csv": text}, base={}, folder="first_rule")
    _, report = load(folder, RETAIL_MAP)
    assert report.tables["transactions"].dropped == {"returns": 4, "missing_customer_id": 2, "non_positive_price": 1}


def test_map_from_json_file_and_inline_json(tmp_path, online_retail_dir):
    path = tmp_path / "map.json"
    path.write_text(json.dumps(RETAIL_MAP))
    from_file, _ = load(online_retail_dir, path)
    inline, _ = load(online_retail_dir, json.dumps(RETAIL_MAP))
    assert from_file["transactions"].equals(inline["transactions"])


def test_mapped_errors_name_the_source_column_and_line(write_shop, online_retail_text):
    text = online_retail_text.replace("12/1/2010 8:28", "12/41/2010 8:28")
    folder = write_shop({"online_retail.csv": text}, base={}, folder="bad_date")
    with pytest.raises(DataValidationError) as info:
        load(folder, RETAIL_MAP)
    message = str(info.value)
    assert "online_retail.csv: column 'InvoiceDate' (purchase_date): unparsable date" in message
    assert "line 5 ('12/41/2010 8:28')" in message


def test_non_numeric_unit_price(write_shop, online_retail_text):
    text = online_retail_text.replace(",3.39,", ",3.39 EUR,")
    folder = write_shop({"online_retail.csv": text}, base={}, folder="bad_price")
    with pytest.raises(DataValidationError, match=r"column 'UnitPrice' \(unit_price\): non-numeric value; "
                                                  r"first offending rows: line 3 \('3.39 EUR'\)"):
        load(folder, RETAIL_MAP)


def test_non_numeric_quantity_names_the_source_column(write_shop, online_retail_text):
    text = online_retail_text.replace(",32,", ",thirty-two,")
    folder = write_shop({"online_retail.csv": text}, base={}, folder="bad_quantity")
    with pytest.raises(DataValidationError, match=r"column 'Quantity' \(quantity\): non-numeric value; .*line 6"):
        load(folder, RETAIL_MAP)


def test_mapped_column_not_in_file(online_retail_dir):
    bad = json.loads(json.dumps(RETAIL_MAP))
    bad["transactions"]["columns"]["customer_id"] = "Customer ID"
    with pytest.raises(DataValidationError, match=r"online_retail.csv: column 'Customer ID': not found .*"
                                                  r"found columns: 'InvoiceNo'"):
        load(online_retail_dir, bad)


def test_derived_products_need_a_category(online_retail_dir):
    bad = {**RETAIL_MAP, "products": {"from": "transactions"}}
    with pytest.raises(ConfigurationError, match=r"constants: \{category: Unknown\}"):
        load(online_retail_dir, bad)


def test_all_rows_dropped_is_an_error(write_shop):
    text = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n" \
           "C1,A,Cup,-1,12/1/2010 8:26,1.0,5,France\n"
    folder = write_shop({"online_retail.csv": text}, base={}, folder="all_returns")
    with pytest.raises(DataValidationError, match="no rows left: the rules dropped all 1 .1 returns."):
        load(folder, RETAIL_MAP)


def test_partial_map_renames_one_table_and_keeps_the_others(write_shop, shop_texts):
    renamed = shop_texts["products.csv"].replace("product_id,category", "sku,cat")
    folder = write_shop({"products.csv": None, "catalogue.csv": renamed}, folder="partial")
    cmap = {"products": {"file": "catalogue.csv", "columns": {"product_id": "sku", "category": "cat"}},
            "customers": {"constants": {"profession": "unknown"}}}
    tables, report = load(folder, cmap)
    assert tables["products"]["category"].tolist() == ["Books", "Electronics"]
    assert tables["customers"]["profession"].tolist() == ["unknown", "unknown"]
    assert report.tables["transactions"].dropped == {}  # no transactions entry: canonical, no rules


def test_map_delimiter_and_encoding(write_shop, online_retail_text):
    text = online_retail_text.replace(",", ";").replace('"SET 7 BABUSHKA NESTING BOXES; LARGE"', "SET 7 BOXES")
    folder = write_shop({"online_retail.csv": text.replace("Discount", "Réduction").encode("latin-1")},
                        base={}, folder="latin1")
    with pytest.raises(DataValidationError, match="not utf-8-sig text.*set `encoding`"):
        load(folder, {**RETAIL_MAP, "delimiter": ";"})
    tables, _ = load(folder, {**RETAIL_MAP, "delimiter": ";", "encoding": "latin-1"})
    assert len(tables["transactions"]) == 8


@pytest.mark.parametrize("spec, match", [
    ({"transaction": {}}, "unknown top-level key transaction"),
    ({"products": {"columns": {"sku": "StockCode"}}}, "unknown canonical column sku"),
    ({"products": {"colums": {}}}, "unknown key colums"),
    ({"events": {"from": "transactions"}}, "`from` must be 'transactions'"),
    ({"transactions": {"invoice": "InvoiceNo", "columns": {"transaction_id": "InvoiceNo"}}}, "do not also map it"),
    ({"products": {"columns": {"category": "Cat"}, "constants": {"category": "x"}}}, "both mapped and constant"),
    ({"delimiter": ":"}, "delimiter"),
    (["transactions"], "expected a mapping"),
    ("{not json", "not valid JSON"),
    ("/no/such/map.yaml", "file not found"),
])
def test_bad_column_maps(spec, match):
    with pytest.raises(ConfigurationError, match=match):
        parse_column_map(spec) if not isinstance(spec, str) else load_column_map(spec)


def test_yaml_that_does_not_parse(tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text("transactions: [unclosed\n")
    with pytest.raises(ConfigurationError, match="cannot parse"):
        load_column_map(path)
