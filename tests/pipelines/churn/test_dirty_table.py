"""A real bank-churn export marks missing values with ``?``: in numeric columns, and once in the label.

Reading (fast): the ``?`` columns stay numeric with missing values, the unlabelled row is dropped and counted, the
column typing says how and why. Training (e2e): the run logs the typing table and the counts, the console says how
many columns of each kind there were, the model imputes with indicators, and the served model takes nulls exactly
where it imputes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.churn.data import load_table
from pipelines.errors import DataValidationError

NUMERIC_WITH_MARKERS = ("CreditScore", "Age", "Balance", "EstimatedSalary")


def bank_csv(path, n: int = 400, seed: int = 0) -> pd.DataFrame:
    """The layout of the Kaggle bank-churn export, written as text, with ``?`` and other markers sprinkled in."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    balance = np.where(rng.random(n) < 0.3, 0.0, rng.normal(100_000, 30_000, n).round(2))
    active = rng.integers(0, 2, n)
    geography = rng.choice(["France", "Spain", "Germany"], n)
    logit = 0.06 * (age - 40) - 1.0 * active + 0.8 * (geography == "Germany") - 1.2
    exited = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame({
        "CustomerId": [str(15_600_000 + i) for i in range(n)],
        "Surname": rng.choice(["Hargrave", "Hill", "Onio", "Boni", "Mitchell"], n),
        "CreditScore": rng.integers(350, 850, n).astype(str), "Geography": geography,
        "Gender": rng.choice(["Female", "Male"], n), "Age": age.astype(str), "Tenure": rng.integers(0, 11, n).astype(str),
        "Balance": balance.astype(str), "NumOfProducts": rng.integers(1, 5, n).astype(str),
        "HasCrCard": rng.integers(0, 2, n).astype(str), "IsActiveMember": active.astype(str),
        "EstimatedSalary": rng.uniform(10_000, 200_000, n).round(2).astype(str), "Exited": exited.astype(str),
    })
    for col in NUMERIC_WITH_MARKERS:
        frame.loc[rng.choice(n, 12, replace=False), col] = "?"
    frame.loc[3, "Balance"] = "N/A"
    frame.loc[4, "EstimatedSalary"] = " null "
    frame.loc[5, "CreditScore"] = ""
    frame.loc[7, "Exited"] = "?"  # one row without a label
    frame.to_csv(path, index=False)
    return frame


def test_markers_in_numbers_are_missing_values_and_the_unlabelled_row_is_dropped(tmp_path):
    path = tmp_path / "bank.csv"
    frame = bank_csv(path)
    data = load_table(path, "Exited", "CustomerId")
    assert data.rows_read == 400 and data.rows_without_label == 1 and len(data.y) == 399
    assert set(NUMERIC_WITH_MARKERS) <= set(data.spec.numeric)  # not categorical: the "?" are missing values
    assert set(data.spec.lenient) == set(NUMERIC_WITH_MARKERS) == set(data.spec.nullable)
    assert data.spec.categorical == ("Surname", "Geography", "Gender")
    assert data.X["Balance"].isna().sum() == (frame.drop(index=7)["Balance"].isin(["?", "N/A"])).sum()
    table = data.reading.table().set_index("column")
    assert table.loc["CreditScore", "read_as"] == "numeric" and table.loc["CreditScore", "missing"] == 13
    assert "'?' x12" in table.loc["CreditScore", "missing_markers"]
    assert table.loc["Tenure", "missing"] == 0 and "numbers" in table.loc["Tenure", "reason"]
    assert "is not a number" in table.loc["Geography", "reason"]
    assert data.summary() == ("table bank.csv: 400 rows, 1 without a label dropped; columns: 8 numeric (4 with "
                              "missing values: median-imputed, with indicators), 3 categorical")


def test_without_the_markers_the_column_typing_says_what_went_wrong(tmp_path):
    path = tmp_path / "bank.csv"
    frame = bank_csv(path)
    frame.loc[7, "Exited"] = "0"  # with --na-values none "?" is a value: give the label row a label
    frame.to_csv(path, index=False)
    data = load_table(path, "Exited", "CustomerId", na_values=())
    table = data.reading.table().set_index("column")
    assert table.loc["Age", "read_as"] == "categorical"
    assert "'?'" in table.loc["Age", "reason"] and "add it to --na-values" in table.loc["Age", "reason"]
    assert "CreditScore" in data.spec.categorical  # "?" is a value now
    unlabelled = tmp_path / "unlabelled.csv"
    bank_csv(unlabelled)
    with pytest.raises(DataValidationError, match=r"unlabelled.csv: label column 'Exited' must hold yes/no.*"
                                                  r"\(first: line 9: '\?'\)"):
        load_table(unlabelled, "Exited", na_values=())


@pytest.mark.parametrize("value, problem", [("inf", "not a finite number"), ("1e308", "beyond the largest"),
                                            ("twelve", "text, not a number")])
def test_a_number_that_is_not_a_number_is_refused_with_file_column_and_line(tmp_path, value, problem):
    path = tmp_path / "bank.csv"
    frame = bank_csv(path)
    frame.loc[10, "Tenure"] = value
    frame.to_csv(path, index=False)
    if problem.startswith("text"):  # a word among numbers makes the column categorical, not an error
        assert "Tenure" in load_table(path, "Exited").spec.categorical
        return
    with pytest.raises(DataValidationError, match=rf"bank.csv: column 'Tenure': line 12: must hold a number \({problem}"):
        load_table(path, "Exited")


@pytest.mark.e2e
def test_training_on_the_dirty_table_logs_the_typing_and_serves_nulls_where_it_imputes(fresh_mlflow_env, tmp_path,
                                                                                       capsys):
    import mlflow
    from mlflow.exceptions import MlflowException

    from pipelines import cli

    path = tmp_path / "bank.csv"
    frame = bank_csv(path)
    assert cli.main(["train-churn", "--table", str(path), "--label-column", "Exited", "--id-column", "CustomerId",
                     "--n-trials", "2"]) == 0
    out = capsys.readouterr().out
    assert ("table bank.csv: 400 rows, 1 without a label dropped; columns: 8 numeric (4 with missing values: "
            "median-imputed, with indicators), 3 categorical") in out
    client = mlflow.MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("storefront-churn").experiment_id])
    [run] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]  # the study's parent run
    metrics, params = run.data.metrics, run.data.params
    assert metrics["table_rows_read"] == 400 and metrics["table_rows_without_label"] == 1
    assert metrics["columns_numeric"] == 8 and metrics["columns_categorical"] == 3
    assert metrics["columns_with_missing_values"] == 4 and metrics["missing_values"] == 4 * 12 + 3
    assert params["na_values"] == "?,NA,N/A,null,-"
    typing = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                                            artifact_path="tables/column_types.csv"))
    assert list(typing.columns) == ["column", "read_as", "missing", "missing_markers", "reason"]
    assert typing.set_index("column").loc["Balance", "missing"] == 13

    model_uri = f"runs:/{run.info.run_id}/churn-logreg"
    info = mlflow.models.get_model_info(model_uri)
    assert sorted(info.metadata["nullable_columns"]) == sorted(NUMERIC_WITH_MARKERS)
    assert info.metadata["max_rows"] == 1000
    model = mlflow.pyfunc.load_model(model_uri)
    python_model = model.unwrap_python_model()
    assert python_model.compiled() is not None  # the compiled scorer follows the indicators
    assert "missing" in python_model.classifier.pipeline.named_steps["features"].named_transformers_

    rows = frame.drop(columns="Exited").rename(columns={"CustomerId": "customer_id"}).head(4).copy()
    for col in ("Tenure", "NumOfProducts", "HasCrCard", "IsActiveMember"):
        rows[col] = rows[col].astype(float)
    rows["Age"] = [None, "?", "41", 30.0]  # imputed: null, the marker, a number as text (as training read it)
    rows["CreditScore"] = [600.0, 700.0, None, ""]
    rows["Balance"] = [0.0, 1.5, "N/A", None]
    rows["EstimatedSalary"] = [1e5, 2e5, 3e5, "null"]
    answer = model.predict(rows)
    assert answer["churn_probability"].between(0, 1).all() and len(answer) == 4
    assert answer["churn_probability"].iloc[0] != answer["churn_probability"].iloc[3]
    with pytest.raises(MlflowException, match=r"column 'Tenure' in row 1 is null .*not trained to impute it"):
        model.predict(rows.assign(Tenure=[3.0, None, 1.0, 2.0]))
    with pytest.raises(MlflowException, match=r"column 'Geography' in row 0 is null"):
        model.predict(rows.assign(Geography=[None, "Spain", "France", "Spain"]))
