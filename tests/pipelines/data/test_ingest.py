"""`storefront ingest`: exit codes, nothing written on error, outputs, and the MLflow run it logs."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest

from pipelines import cli
from pipelines.data.tables import load_tables


@pytest.fixture
def storefront(monkeypatch):
    """``storefront(*args) -> exit code``: the real CLI with only the ingest command registered."""
    monkeypatch.setattr(cli, "COMMANDS", {"ingest": cli.COMMANDS["ingest"]})
    return lambda *args: cli.main(["ingest", *map(str, args)])


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_error_exits_2_names_the_problem_and_writes_nothing(storefront, write_shop, shop_texts, tmp_path, capsys):
    folder = write_shop({"transactions.csv": shop_texts["transactions.csv"].replace("T3,", "T1,")})
    out = tmp_path / "out"
    assert storefront("--source-dir", folder, "--output-dir", out, "--no-track") == 2
    err = capsys.readouterr().err
    assert "storefront ingest: error:" in err and "transactions.csv: column 'transaction_id'" in err
    assert "line 4 ('T1')" in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no temporary folder left


def test_error_leaves_an_earlier_output_unchanged(storefront, write_shop, shop_texts, tmp_path):
    out = tmp_path / "out"
    assert storefront("--source-dir", write_shop(), "--output-dir", out, "--no-track") == 0
    before = snapshot(out)
    bad = write_shop({"products.csv": shop_texts["products.csv"].replace("Books", "")}, folder="bad")
    assert storefront("--source-dir", bad, "--output-dir", out, "--no-track", "--format", "csv", "--overwrite") == 2
    assert snapshot(out) == before


def test_online_retail_through_the_example_map(storefront, online_retail_dir, example_map, tmp_path, capsys):
    out = tmp_path / "ingested"
    assert storefront("--source-dir", online_retail_dir, "--column-map", example_map,
                      "--output-dir", out, "--format", "csv", "--no-track") == 0
    printed = capsys.readouterr().out
    assert "dropped returns" in printed and "dataset digest:" in printed
    tables = load_tables(out)
    assert sorted(p.name for p in out.iterdir()) == ["customers.csv", "events.csv", "products.csv", "transactions.csv"]
    assert len(tables["transactions"]) == 8 and len(tables["events"]) == 0
    assert set(tables["transactions"]["category"]) == {"Unknown"}  # joined from the derived products


def test_inline_json_map_and_delimiter(storefront, write_shop, online_retail_text, tmp_path):
    folder = write_shop({"sales.csv": online_retail_text.replace(",", "|")}, base={}, folder="pipes")
    cmap = {"transactions": {"file": "sales.csv", "invoice": "InvoiceNo", "unit_price": "UnitPrice",
                             "columns": {"customer_id": "CustomerID", "product_id": "StockCode",
                                         "quantity": "Quantity", "purchase_date": "InvoiceDate"}},
            "products": {"from": "transactions", "constants": {"category": "Unknown"}},
            "customers": {"from": "transactions"}}
    out = tmp_path / "out"
    args = ("--source-dir", folder, "--column-map", json.dumps(cmap), "--output-dir", out, "--no-track")
    assert storefront(*args) == 2 and not out.exists()  # pipes without --delimiter
    assert storefront(*args, "--delimiter", "|") == 0
    assert len(load_tables(out)["transactions"]) == 8


def test_output_dir_must_differ_from_source_dir(storefront, write_shop):
    folder = write_shop()
    before = snapshot(folder)
    assert storefront("--source-dir", folder, "--output-dir", folder, "--no-track") == 2
    assert snapshot(folder) == before


def test_run_logs_counts_digest_and_dataset(storefront, online_retail_dir, example_map, fresh_mlflow_env, capsys):
    home = fresh_mlflow_env  # STOREFRONT_HOME and MLFLOW_TRACKING_URI (sqlite in home) set by the fixture
    assert storefront("--source-dir", online_retail_dir, "--column-map", example_map) == 0
    digest = capsys.readouterr().out.split("dataset digest: ")[1].split()[0]

    out = home / "data" / "ingested"  # the default output folder
    assert len(load_tables(out)["transactions"]) == 8
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("storefront-data")
    assert experiment.artifact_location.startswith((home / "mlartifacts").as_uri())
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["transactions_rows_read"] == 14
    assert run.data.metrics["transactions_rows"] == 8
    assert run.data.metrics["transactions_dropped_returns"] == 3
    assert run.data.metrics["transactions_dropped_missing_customer_id"] == 2
    assert run.data.metrics["transactions_dropped_non_positive_price"] == 1
    assert run.data.tags["data_digest"] == digest
    assert run.data.params["output_dir"] == str(out)
    [dataset_input] = run.inputs.dataset_inputs
    assert dataset_input.tags[0].value == "ingested"
    assert dataset_input.dataset.name == "transactions"
    assert dataset_input.dataset.source_type == "local"
    assert dataset_input.dataset.source.endswith(str(out / "transactions") + '"}')
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"ingest_report.txt", "column_map.yaml"} <= artifacts


def test_no_track_logs_nothing(storefront, write_shop, tmp_path, monkeypatch):
    monkeypatch.setenv("STOREFRONT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    # MLproject passes empty strings for the defaults
    assert storefront("--source-dir", write_shop(), "--no-track", "--output-dir", "", "--column-map", "") == 0
    assert not (tmp_path / "mlflow.db").exists()
    written = load_tables(tmp_path / "home" / "data" / "ingested")
    assert written["transactions"]["amount"].tolist() == pd.Series([12.5, 119.8, 59.9]).tolist()
