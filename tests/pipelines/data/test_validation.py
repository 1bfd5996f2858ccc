"""Validation of canonical tables: typed output, and one test per error with file, column and line."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.data.column_map import read_sources
from pipelines.errors import ConfigurationError, DataValidationError
from pipelines.data.tables import dataset_digest
from pipelines.data.validation import IngestReport, TableReport, read_source, validate_table, validate_tables


def typed_frames() -> dict[str, pd.DataFrame]:
    """The canonical shop as typed frames, with integer customer ids "1" and "2" (for C1, C2)."""
    return {
        "customers": pd.DataFrame({
            "customer_id": [1, 2], "signup_date": pd.to_datetime(["2023-01-05", "2023-02-10"]),
            "gender": ["F", "M"], "age": [34, 41], "location": ["Berlin", "Paris"],
        }),
        "products": pd.DataFrame({
            "product_id": ["P1", "P2"], "category": ["Books", "Electronics"],
            "product_name": ["Novel", "Headphones"], "base_price": [12.5, 59.9],
        }),
        "transactions": pd.DataFrame({
            "transaction_id": ["T1", "T2", "T3"], "customer_id": ["1", "2", "1"], "product_id": ["P1", "P2", "P2"],
            "quantity": [1, 2, 1], "amount": [12.5, 119.8, 59.9],
            "purchase_date": pd.to_datetime(["2023-03-01 10:00", "2023-03-02 11:30", "2023-03-05 09:15"]),
        }),
        "events": pd.DataFrame({
            "customer_id": ["1", "2"], "product_id": ["P1", "P2"], "event_type": ["product_view", "add_to_cart"],
            "event_date": pd.to_datetime(["2023-03-01 09:55", "2023-03-02 11:20"]),
        }),
    }


def load(folder, **kwargs):
    return validate_tables(read_sources(folder, **kwargs))


def error_of(folder, **kwargs) -> str:
    with pytest.raises(DataValidationError) as info:
        load(folder, **kwargs)
    return str(info.value)


def test_canonical_files_load_typed(write_shop):
    tables, report = load(write_shop())
    tx = tables["transactions"]
    assert list(tx.columns) == ["transaction_id", "customer_id", "product_id", "quantity", "amount", "purchase_date"]
    assert tx["transaction_id"].tolist() == ["T1", "T2", "T3"]
    assert pd.api.types.is_string_dtype(tx["customer_id"])
    assert tx["quantity"].dtype == "int64" and tx["amount"].dtype == "float64"
    assert tx["purchase_date"].dtype == "datetime64[ns]"
    assert tx["purchase_date"].iloc[1] == pd.Timestamp("2023-03-02 11:30")
    assert tables["customers"]["age"].tolist() == [34, 41]
    assert tables["events"]["event_type"].tolist() == ["product_view", "add_to_cart"]
    assert report.tables["transactions"] == TableReport(str(write_shop() / "transactions.csv"), 3, 3)


def test_missing_required_column_lists_missing_and_found(write_shop):
    folder = write_shop({"transactions.csv": "transaction_id,customer_id,product_id,quantity,purchase_date\n"
                                             "T1,C1,P1,1,2023-03-01\n"})
    message = error_of(folder)
    assert "transactions.csv" in message
    assert "column 'amount': missing required column" in message
    assert "found columns: 'transaction_id', 'customer_id', 'product_id', 'quantity', 'purchase_date'" in message


def test_unparsable_date_names_line_and_value(write_shop):
    text = "transaction_id,customer_id,product_id,quantity,amount,purchase_date\n" \
           "T1,C1,P1,1,12.5,2023-03-01\nT2,C2,P2,1,59.9,yesterday\nT3,C1,P2,1,59.9,2023-02-30\n"
    message = error_of(write_shop({"transactions.csv": text}))
    assert message.startswith(f"{write_shop() / 'transactions.csv'}: column 'purchase_date': unparsable date")
    assert "first offending rows: line 3 ('yesterday'), line 4 ('2023-02-30')" in message


@pytest.mark.parametrize("value, problem, shown", [('"12,5"', "non-numeric value", "'12,5'"),
                                                     ("", "missing value", "empty")])
def test_non_numeric_or_missing_amount(write_shop, value, problem, shown):
    text = "transaction_id,customer_id,product_id,quantity,amount,purchase_date\n" \
           f"T1,C1,P1,1,12.5,2023-03-01\nT2,C2,P2,1,{value},2023-03-02\n"
    message = error_of(write_shop({"transactions.csv": text}))
    assert "transactions.csv: column 'amount': " + problem in message
    assert f"line 3 ({shown})" in message


def test_missing_quantity(write_shop):
    text = "transaction_id,customer_id,product_id,quantity,amount,purchase_date\nT1,C1,P1,,12.5,2023-03-01\n"
    message = error_of(write_shop({"transactions.csv": text}))
    assert "column 'quantity': missing value; first offending rows: line 2 (empty)" in message


def test_negative_quantity_in_canonical_file_is_an_error(write_shop):
    text = "transaction_id,customer_id,product_id,quantity,amount,purchase_date\nT1,C1,P1,-1,-12.5,2023-03-01\n"
    message = error_of(write_shop({"transactions.csv": text}))
    assert "column 'quantity': negative value" in message and "line 2 ('-1')" in message


def test_unknown_product_id(write_shop, shop_texts):
    text = shop_texts["transactions.csv"].replace("T3,C1,P2", "T3,C1,P9")
    message = error_of(write_shop({"transactions.csv": text}))
    assert "transactions.csv: column 'product_id': unknown product id (not in " in message
    assert "products.csv" in message and "line 4 ('P9')" in message


def test_unknown_customer_id_in_events(write_shop):
    text = "customer_id,product_id,event_type,event_date\nC1,P1,search,2023-03-01\nC7,P1,search,2023-03-01\n"
    message = error_of(write_shop({"events.csv": text}))
    assert "events.csv: column 'customer_id': unknown customer id" in message and "line 3 ('C7')" in message


def test_duplicate_transaction_id(write_shop, shop_texts):
    text = shop_texts["transactions.csv"].replace("T3,", "T1,")
    message = error_of(write_shop({"transactions.csv": text}))
    assert "transactions.csv: column 'transaction_id': duplicate transaction id" in message
    assert "line 2 ('T1'), line 4 ('T1')" in message


def test_empty_id(write_shop):
    text = "customer_id,signup_date\nC1,2023-01-05\n  ,2023-01-06\nC2,\n"
    message = error_of(write_shop({"customers.csv": text}))
    assert "customers.csv: column 'customer_id': empty id; first offending rows: line 3 ('  ')" in message


def test_event_type_outside_the_allowed_set(write_shop):
    text = "customer_id,product_id,event_type,event_date\nC1,P1,purchase,2023-03-01\n"
    message = error_of(write_shop({"events.csv": text}))
    assert "events.csv: column 'event_type': not one of page_view" in message and "line 2 ('purchase')" in message


def test_empty_file_and_header_only_file(write_shop):
    message = error_of(write_shop({"customers.csv": ""}))
    assert "customers.csv: empty file" in message
    message = error_of(write_shop({"customers.csv": "customer_id,signup_date\n"}))
    assert "customers.csv: no data rows" in message


def test_header_only_events_are_valid(write_shop):
    tables, _ = load(write_shop({"events.csv": "customer_id,product_id,event_type,event_date\n"}))
    assert len(tables["events"]) == 0 and tables["events"]["event_date"].dtype == "datetime64[ns]"


def test_absent_events_give_an_empty_table(write_shop):
    tables, report = load(write_shop({"events.csv": None}, folder="no_events"))
    assert list(tables["events"].columns) == ["customer_id", "product_id", "event_type", "event_date"]
    assert len(tables["events"]) == 0 and "no events file" in report.tables["events"].source


def test_absent_products_file(write_shop):
    message = error_of(write_shop({"products.csv": None}, folder="no_products"))
    assert "no products.parquet or products.csv" in message and "from: transactions" in message


def test_wrong_delimiter_is_named(write_shop, shop_texts):
    semicolon = {name: text.replace(",", ";") for name, text in shop_texts.items()}
    folder = write_shop(semicolon, folder="semicolon")
    message = error_of(folder)
    assert "transactions.csv: column 'transaction_id;customer_id;" in message
    assert "looks like it is delimited by ';'" in message and "--delimiter ';'" in message
    tables, _ = load(folder, delimiter=";")
    assert tables["transactions"]["amount"].tolist() == [12.5, 119.8, 59.9]


def test_tab_delimiter_spelled_out(write_shop, shop_texts):
    folder = write_shop({name: text.replace(",", "\t") for name, text in shop_texts.items()}, folder="tabs")
    assert "delimited by '\\t'" in error_of(folder)
    tables, _ = load(folder, delimiter="tab")
    assert len(tables["transactions"]) == 3


def test_unsupported_delimiter_is_a_configuration_error(write_shop):
    with pytest.raises(ConfigurationError, match="--delimiter"):
        load(write_shop(), delimiter=":")


def test_many_offending_rows_are_summarised(write_shop):
    rows = "".join(f"T{i},C1,P1,1,x,2023-03-01\n" for i in range(8))
    message = error_of(write_shop({"transactions.csv": "transaction_id,customer_id,product_id,quantity,amount,"
                                                       "purchase_date\n" + rows}))
    assert "line 6 ('x') (8 rows in all)" in message and "line 7" not in message


def test_problems_of_several_tables_are_reported_together(write_shop, shop_texts):
    customers = shop_texts["customers.csv"].replace("C2,", ",")
    transactions = shop_texts["transactions.csv"].replace("12.5", "abc")
    folder = write_shop({"customers.csv": customers, "transactions.csv": transactions})
    lines = error_of(folder).splitlines()
    assert len(lines) == 2 and "customers.csv" in lines[0] and "column 'amount'" in lines[1]


def test_validate_table_with_a_plain_index_counts_file_lines():
    df = pd.DataFrame({"product_id": ["P1", "P2"], "category": ["Books", ""]})
    with pytest.raises(DataValidationError, match=r"products.csv: column 'category': empty value; .*line 3"):
        validate_table("products", df, "products.csv")


def test_parquet_input(tmp_path):
    folder = tmp_path / "pq"
    folder.mkdir()
    for name, frame in typed_frames().items():
        frame.to_parquet(folder / f"{name}.parquet")
    tables, report = load(folder)
    assert tables["customers"]["customer_id"].tolist() == ["1", "2"]  # integer ids become strings
    assert report.tables["transactions"].rows_kept == 3

    bad = typed_frames()["transactions"]
    bad.loc[1, "quantity"] = None
    bad.to_parquet(folder / "transactions.parquet")
    assert "transactions.parquet: column 'quantity': missing value; first offending rows: row 2 (empty)" in \
        error_of(folder)


def test_digest_is_the_same_for_csv_and_parquet_and_changes_with_a_value(tmp_path, write_shop, shop_texts):
    ids = {"C1": "1", "C2": "2"}
    csv_files = dict(shop_texts)
    for old, new in ids.items():
        csv_files = {name: text.replace(old + ",", new + ",") for name, text in csv_files.items()}
    csv_tables, _ = load(write_shop(csv_files, folder="csv"))
    folder = tmp_path / "pq"
    folder.mkdir()
    for name, frame in typed_frames().items():
        frame.to_parquet(folder / f"{name}.parquet")
    pq_tables, _ = load(folder)
    assert dataset_digest(csv_tables) == dataset_digest(pq_tables)
    assert dataset_digest(csv_tables) == dataset_digest(load(write_shop(csv_files, folder="csv"))[0])

    changed, _ = load(write_shop({"transactions.csv": csv_files["transactions.csv"].replace("119.8", "119.9")},
                                 base=csv_files, folder="changed"))
    assert dataset_digest(changed) != dataset_digest(csv_tables)


def test_report_metrics_and_text():
    report = IngestReport({"transactions": TableReport("sales.csv", 10, 7, {"returns": 2, "missing_customer_id": 1})})
    assert report.metrics() == {"transactions_rows_read": 10, "transactions_rows": 7,
                                "transactions_dropped_returns": 2, "transactions_dropped_missing_customer_id": 1}
    text = report.render()
    assert "transactions" in text and "sales.csv" in text and "missing_customer_id" in text


def test_read_source_indexes_rows_by_file_line(write_shop):
    df = read_source(write_shop() / "transactions.csv")
    assert df.index.tolist() == [2, 3, 4]
