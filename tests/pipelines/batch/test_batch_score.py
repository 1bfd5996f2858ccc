"""``storefront batch-score`` with the local engine on a tiny logged recommender: the output is the model's own
answer row for row (also across batches), the params are the served ones, the output safety rules hold, bad
arguments and bad rows end with one line and their exit code. Spark parity is tested in tests/e2e/test_batch_score.py."""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from models.recommenders.engine import Recommender
from models.recommenders.itemcf import ItemCFScorer, similarity_matrix
from pipelines import cli, errors
from pipelines.batch.engines import Progress, batches
from pipelines.batch.jobs import Options
from pipelines.batch.score import batch_score
from pipelines.outputs import is_parquet_part

N_USERS, N_ITEMS = 30, 20
CUSTOMERS = [f"C{i:03d}" for i in range(N_USERS)]


def tiny_recommender() -> Recommender:
    rng = np.random.default_rng(4)
    X = sparse.random(N_USERS, N_ITEMS, density=0.25, random_state=rng, format="csr") * 5
    purchased = sparse.csr_matrix(X > 0)
    products = np.array([f"P{j:03d}" for j in range(N_ITEMS)])
    scorer = ItemCFScorer(X, similarity_matrix(X, n_neighbours=6), products, purchased)
    popularity = np.asarray(purchased.sum(axis=0)).ravel().astype(float)
    return Recommender(scorer, np.array(CUSTOMERS), products, purchased, popularity)


@pytest.fixture(scope="module")
def model_uri(tracking_home) -> str:
    from pipelines.recommenders.training import log_recommender_model
    from pipelines.tracking import experiment_id

    with mlflow.start_run(experiment_id=experiment_id("batch-score-tests")):
        return log_recommender_model(tiny_recommender(), CUSTOMERS[:2], k=10).model_uri


@pytest.fixture
def requests_csv(tmp_path) -> Path:
    path = tmp_path / "customers.csv"
    pd.DataFrame({"customer_id": [*CUSTOMERS, "new-1", "new-2"], "age": [None] * N_USERS + [30, None],
                  "gender": [None] * N_USERS + ["Female", None]}).to_csv(path, index=False)
    return path


def served_answer(uri: str, customers: list[str], **params) -> pd.DataFrame:
    return mlflow.pyfunc.load_model(uri).predict(pd.DataFrame({"customer_id": customers}), params=params or None)


def test_local_output_is_the_models_answer_row_for_row(model_uri, requests_csv, tmp_path, mlflow_env):
    out = tmp_path / "recs.parquet"
    summary = batch_score(model_uri, requests_csv, out, Options(k=4))
    got = pd.read_parquet(out)
    expected = served_answer(model_uri, [*CUSTOMERS, "new-1", "new-2"], k=4)
    assert list(got.columns) == ["customer_id", "rank", "product_id", "score", "reason"]
    assert len(got) == 4 * (N_USERS + 2) == summary.rows and summary.requests == N_USERS + 2
    pd.testing.assert_frame_equal(got, expected.astype(got.dtypes.to_dict()), check_exact=True)
    assert got.loc[got["customer_id"] == "new-2", "reason"].eq("popular").all()


def test_batches_of_the_row_limit_give_the_same_rows(model_uri, requests_csv, tmp_path, mlflow_env, monkeypatch):
    whole = tmp_path / "whole.parquet"
    batch_score(model_uri, requests_csv, whole)
    monkeypatch.setenv("STOREFRONT_MAX_ROWS", "7")  # read when the model loads: batches of 7 requests
    cut = tmp_path / "cut.parquet"
    batch_score(model_uri, requests_csv, cut)
    pd.testing.assert_frame_equal(pd.read_parquet(cut), pd.read_parquet(whole), check_exact=True)
    assert pd.read_parquet(whole).groupby("customer_id").size().eq(10).all()  # the model's served k


def test_include_purchased_is_the_served_param(model_uri, requests_csv, tmp_path, mlflow_env):
    out = tmp_path / "all.parquet"
    batch_score(model_uri, requests_csv, out, Options(k=20, include_purchased=True))
    got = pd.read_parquet(out)
    expected = served_answer(model_uri, [*CUSTOMERS, "new-1", "new-2"], k=20, exclude_purchased=False)
    pd.testing.assert_frame_equal(got, expected.astype(got.dtypes.to_dict()), check_exact=True)
    assert got.groupby("customer_id").size().eq(N_ITEMS).all()  # every product, bought ones too


def test_every_customer_of_a_data_folder(model_uri, shop_folder, tmp_path, mlflow_env):
    shop = shop_folder(customers=60, products=12, years=1, seed=3)
    out = tmp_path / "shop.parquet"
    assert cli.main(["batch-score", "--model", model_uri, "--input", str(shop), "--output", str(out), "-k", "2"]) == 0
    got = pd.read_parquet(out)
    customers = pd.read_parquet(shop / "customers.parquet")["customer_id"].astype(str).tolist()
    assert got["customer_id"].drop_duplicates().tolist() == customers
    assert got.groupby("customer_id", sort=False).size().eq(2).all()


def test_progress_logs_requests_rows_and_rate(caplog):
    caplog.set_level(logging.INFO, logger="pipelines.batch.engines")
    progress = Progress(total=1000, engine="local", every=0)
    progress.add(400, 4000)
    [record] = caplog.records
    assert "400/1,000 requests, 4,000 output rows" in record.getMessage() and "rows/s" in record.getMessage()
    assert [(start, len(part)) for start, part in batches(pd.DataFrame({"a": range(10)}), 4)] == [(0, 4), (4, 4),
                                                                                                  (8, 2)]


def one_line(err: str) -> str:
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("storefront batch-score: error: "), err
    return last.split(": error: ", 1)[1]


def test_an_existing_output_is_kept_without_overwrite(model_uri, requests_csv, tmp_path, mlflow_env, capsys):
    out = tmp_path / "recs.parquet"
    out.write_text("mine")
    argv = ["batch-score", "--model", model_uri, "--input", str(requests_csv), "--output", str(out)]
    assert cli.main(argv) == errors.EXIT_PATH
    assert one_line(capsys.readouterr().err) == f"--output {out}: already exists; pass --overwrite to replace it"
    assert out.read_text() == "mine"
    assert cli.main([*argv, "--overwrite"]) == 0
    assert len(pd.read_parquet(out)) == 10 * (N_USERS + 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv", "recs.parquet"]  # no temporary left


def test_a_spark_output_folder_holding_other_files_is_refused_before_spark_starts(model_uri, requests_csv,
                                                                                  tmp_path, mlflow_env, capsys):
    out = tmp_path / "dataset"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert cli.main(["batch-score", "--model", model_uri, "--input", str(requests_csv), "--output", str(out),
                     "--engine", "spark", "--overwrite"]) == errors.EXIT_PATH
    assert "holds files that are not storefront tables (notes.txt)" in one_line(capsys.readouterr().err)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert all(is_parquet_part(n) for n in ("part-00000-x-c000.snappy.parquet", "_SUCCESS", "._SUCCESS.crc",
                                            ".part-00000-x-c000.snappy.parquet.crc"))
    assert not any(is_parquet_part(n) for n in ("notes.txt", "part-1.csv", ".notes.crc"))


@pytest.mark.parametrize("extra, rows, code, expected", [
    (["--cutoff", "2026-01-01"], None, 2, "--cutoff: not an option for a recommender model"),
    (["--confidence", "0.9"], None, 2, "--confidence: not an option for a recommender model"),
    ([], pd.DataFrame({"id": ["C000"]}), 2, "no column 'customer_id' (the model takes customer_id, age"),
    ([], pd.DataFrame({"customer_id": ["C000", "x", "y"], "age": [None, 30, 500]}), 2,
     "input rows 0..2: the model refused the batch: column 'age' in row 2 must be an integer from 13 to 110"),
    (["--input-as", "nowhere.csv"], None, 2, "no such file or folder"),
    (["--input-as", "customers.txt"], pd.DataFrame({"customer_id": ["C000"]}), 2, "not a .csv or .parquet file"),
    ([], pd.DataFrame({"customer_id": []}), 2, "has no rows"),
])
def test_bad_arguments_and_rows(model_uri, tmp_path, mlflow_env, capsys, extra, rows, code, expected):
    name = extra[1] if extra[:1] == ["--input-as"] else "in.csv"
    extra = [] if extra[:1] == ["--input-as"] else extra
    source = tmp_path / name
    if rows is not None:
        rows.to_csv(source, index=False)
    elif name == "in.csv":
        pd.DataFrame({"customer_id": ["C000"]}).to_csv(source, index=False)
    out = tmp_path / "out.parquet"
    assert cli.main(["batch-score", "--model", model_uri, "--input", str(source), "--output", str(out),
                     *extra]) == code
    assert expected in one_line(capsys.readouterr().err)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_model_that_is_not_registered(fresh_mlflow_env, tmp_path, capsys):
    (tmp_path / "in.csv").write_text("customer_id\nC000\n")
    assert cli.main(["batch-score", "--model", "nobody", "--input", str(tmp_path / "in.csv"), "--output",
                     str(tmp_path / "out.parquet")]) == errors.EXIT_INPUT
    assert "--model 'nobody': no registered model 'nobody' with a champion" in one_line(capsys.readouterr().err)


def test_the_parquet_schema_follows_each_served_contract():
    import pyarrow as pa

    from models.churn.contract import contract as churn_contract
    from models.recommenders.contract import CONTRACT as RECOMMENDER
    from models.sarima.contract import CONTRACT as SARIMA
    from pipelines.batch.engines import arrow_schema
    from pipelines.batch.jobs import BatchJob

    types = {"string": pa.string(), "long": pa.int64(), "double": pa.float64(), "boolean": pa.bool_()}
    for contract in (RECOMMENDER, SARIMA, churn_contract("churn"), churn_contract("purchase")):
        schema = arrow_schema(BatchJob("any", contract, pd.DataFrame()))
        assert schema.names == contract.output_names
        assert schema.types == [types[c.type] for c in contract.outputs]
    assert arrow_schema(BatchJob("churn", churn_contract("churn"), pd.DataFrame())).field("churn").type == pa.bool_()


def test_executors_get_the_drivers_column_types_back():
    from pipelines.batch.engines import restore_types

    driver = pd.DataFrame({"customer_id": ["a", "b"], "age": [30, None], "n": np.array([1, 2], dtype="int64")},
                          ).astype({"customer_id": object, "age": object})
    dtypes = {name: str(dtype) for name, dtype in driver.dtypes.items()}
    # what Arrow hands an executor: an integer column with a null as floats, text as pandas' string type
    executor = pd.DataFrame({"customer_id": pd.array(["a", "b"], dtype="str"), "age": [30.0, np.nan],
                             "n": np.array([1, 2], dtype="int64")})
    back = restore_types(executor, dtypes)
    assert back["customer_id"].tolist() == ["a", "b"] and back["customer_id"].dtype == object
    assert back["age"].tolist() == [30.0, None] and back["n"].dtype == "int64"
