"""The ``analyze`` entry point on a small generated shop: one run with figures, tables and metrics; clear errors."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def shop_dir(shop_folder):
    return shop_folder(customers=400, products=40, years=2, seed=21)


def test_analyze_logs_the_summary_the_bayes_table_and_the_figures(mlflow_env, shop_dir, capsys):
    import mlflow

    from pipelines.cli import main
    from pipelines.data.tables import load_tables

    assert main(["analyze", "--data-dir", str(shop_dir), "--customer", "C00007"]) == 0
    out = capsys.readouterr().out
    assert "total revenue" in out and "P(purchase | > 3 interactions" in out and "customer C00007" in out
    run_id = out.strip().splitlines()[-1].split()[-1]
    run = mlflow.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert mlflow.get_experiment(run.info.experiment_id).name == "storefront-analytics"
    tx = load_tables(shop_dir)["transactions"]
    m, p = run.data.metrics, run.data.params
    assert m["total_revenue"] == pytest.approx(tx["amount"].sum())
    assert m["avg_revenue_per_unit"] == pytest.approx(tx["amount"].sum() / tx["quantity"].sum())
    assert p["top_category"] == tx.groupby("category")["amount"].sum().idxmax()
    assert m["customer_total_spent"] == pytest.approx(tx.loc[tx["customer_id"] == "C00007", "amount"].sum())
    assert any(k.startswith("p_purchase_given_engaged_") for k in m)
    files = {f.path for f in mlflow.MlflowClient().list_artifacts(run_id, "plots")}
    assert files == {f"plots/{n}.png" for n in ("product_profitability", "category_revenue_share", "top_subcategories",
                                                "monthly_revenue_by_category", "engagement_bayes")}
    tables = {f.path for f in mlflow.MlflowClient().list_artifacts(run_id, "tables")}
    assert {"tables/engagement_bayes.json", "tables/engagement_bayes.csv", "tables/revenue_by_subcategory.csv"} <= tables
    bayes = mlflow.load_table("tables/engagement_bayes.json", run_ids=[run_id])
    assert list(bayes["category"]) == sorted(load_tables(shop_dir)["products"]["category"].unique())


def test_unknown_customer_and_bad_window_exit_2_without_a_run(mlflow_env, shop_dir, capsys):
    from pipelines.cli import main

    assert main(["analyze", "--data-dir", str(shop_dir), "--customer", "NOBODY"]) == 2
    assert "customer 'NOBODY' is not in the customers or transactions table" in capsys.readouterr().err
    assert main(["analyze", "--data-dir", str(shop_dir), "--window-days", "0"]) == 2
    assert "window_days must be at least 1" in capsys.readouterr().err
