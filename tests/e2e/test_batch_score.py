"""End-to-end: ``batch-score`` of the main job's champions on a real local Apache Spark equals the local engine, row
for row (recommender top-10 for every customer, churn for every active customer, SARIMA every category x 3
periods), and a batch the model refuses on an executor ends as the same one-line error as locally.

Needs pyspark (the ``spark`` extra) and Java 17: without them these tests fail (the import below, or Spark's start),
they never skip.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyspark  # noqa: F401 - a missing spark extra fails collection here, it is not skipped
import pytest

from pipelines.batch.jobs import Options
from pipelines.batch.score import batch_score
from pipelines.errors import DataValidationError

pytestmark = pytest.mark.e2e
MASTER = "local[2]"


@pytest.fixture(scope="module")
def shop(main_job):
    """(data folder) of the main job's home, with its tracking store as this module's."""
    home, uri, *_ = main_job
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STOREFRONT_HOME", str(home))
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        yield home / "data" / "generated"


@pytest.fixture(scope="module")
def spark():
    """One local Spark session for the module (batch-score reuses a running session and leaves it running)."""
    from pipelines.batch.engines import spark_session

    session, _ = spark_session(MASTER)
    yield session
    session.stop()


def both_engines(model: str, source: Path, folder: Path, options: Options, rows_per_file: int = 1_000_000):
    local = batch_score(model, source, folder / "local.parquet", options)
    on_spark = batch_score(model, source, folder / "spark", options, engine="spark", master=MASTER,
                           rows_per_file=rows_per_file)
    return local, on_spark, pd.read_parquet(local.output), pd.read_parquet(on_spark.output)


def test_recommender_top10_of_every_customer(shop, spark, tmp_path):
    local, on_spark, a, b = both_engines("models:/storefront-recommender@champion", shop, tmp_path,
                                         Options(k=10), rows_per_file=2_000)
    customers = pd.read_parquet(shop / "customers.parquet")["customer_id"].astype(str).tolist()
    assert a["customer_id"].drop_duplicates().tolist() == customers
    assert a.groupby("customer_id").size().eq(10).all() and len(a) == 10 * len(customers)
    assert on_spark.files == -(-len(a) // 2_000) > 1  # partitioned: one part file per 2,000 rows
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_churn_every_active_customer(shop, spark, tmp_path):
    local, on_spark, a, b = both_engines("models:/storefront-churn@champion", shop, tmp_path, Options())
    assert list(a.columns) == ["customer_id", "churn_probability", "risk_segment", "churn"]
    assert len(a) > 100 and a["customer_id"].is_unique and a["churn_probability"].between(0, 1).all()
    assert on_spark.files == 1
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_sarima_every_category_times_the_horizon(shop, spark, tmp_path):
    local, on_spark, a, b = both_engines("models:/storefront-sarima@champion", shop, tmp_path, Options(horizon=3))
    assert a.groupby("category").size().eq(3).all() and "All" in set(a["category"])
    assert a["step"].tolist() == [1, 2, 3] * a["category"].nunique()
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_a_batch_refused_on_an_executor_is_a_one_line_error(shop, spark, tmp_path):
    source = tmp_path / "customers.csv"
    pd.DataFrame({"customer_id": ["C00001", "nobody", "nobody-2"], "age": [None, 30, 500]}).to_csv(source, index=False)
    messages = []
    for engine, out in (("local", tmp_path / "out.parquet"), ("spark", tmp_path / "out")):
        with pytest.raises(DataValidationError) as refused:
            batch_score("models:/storefront-recommender@champion", source, out, engine=engine, master=MASTER)
        messages.append(str(refused.value))
        assert not out.exists()
    assert messages[0] == messages[1]
    assert messages[0].startswith("input rows 0..2: the model refused the batch: column 'age' in row 2 must be")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
