"""A quarterly series of a user's own, end to end as a user runs it: ``storefront train-sarima --series`` infers the
quarters from quarter-end dates, trims the empty last quarter with a message, keeps an inner gap missing, registers
the model as the challenger; ``mlflow models serve`` answers with quarter starts after the last observed quarter;
``storefront forecast`` prints the same numbers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


pytestmark = pytest.mark.e2e

N_QUARTERS = 56  # 1998Q1 .. 2011Q4; the last row is empty, so the series ends in 2011Q3
NAME = "storefront-sarima-beer"


def _quarterly_csv(path: Path) -> Path:
    rng = np.random.default_rng(7)
    t = np.arange(N_QUARTERS)
    values = 400 + 2.5 * t + np.array([60, -20, -50, 10])[t % 4] + rng.normal(0, 6, N_QUARTERS)
    ends = pd.period_range("1998Q1", periods=N_QUARTERS, freq="Q").to_timestamp(how="end").normalize()
    cells = [f"{v:.2f}" for v in values]
    cells[30] = "NA"  # 2005Q3: missing inside the series
    cells[-1] = ""  # 2011Q4: not yet reported
    path.write_text("quarter,sales\n" + "\n".join(f"{d.date()},{c}" for d, c in zip(ends, cells)) + "\n")
    return path


def _run(args, env, cwd):
    return subprocess.run([str(Path(sys.executable).with_name("storefront")), *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, module_child_env):
    home = tmp_path_factory.mktemp("quarterly-home")
    uri = f"sqlite:///{home / 'mlflow.db'}"
    env = module_child_env(STOREFRONT_HOME=str(home), MLFLOW_TRACKING_URI=uri)
    csv = _quarterly_csv(home / "beer.csv")
    done = _run(["train-sarima", "--series", str(csv), "--date-column", "quarter", "--value-column", "sales",
                 "--n-trials", "20"], env, home)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return home, uri, env, done


def test_training_infers_quarters_trims_the_empty_end_and_registers_the_challenger(trained):
    import mlflow

    home, uri, _, done = trained
    assert "0 missing quarterly period(s) at the start and 1 at the end trimmed; it now runs from 1998Q1 to 2011Q3" \
        in done.stderr
    assert "1 missing quarterly period(s) inside the series stay missing" in done.stderr
    assert f"registered {NAME} version 1 as challenger" in done.stdout
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.get_model_version_by_alias(NAME, "challenger")
    parent = client.get_run(version.run_id)
    assert (parent.data.params["freq"], parent.data.params["freq_source"], parent.data.params["season"],
            parent.data.params["test_periods"]) == ("Q", "inferred", "4", "4")
    series_run = client.search_runs([parent.info.experiment_id],
                                    f"tags.mlflow.parentRunId = '{parent.info.run_id}' AND tags.role = 'series'")[0]
    m = series_run.data.metrics
    assert (m["n_rows"], m["n_missing"], m["n_trimmed_end"], m["n_missing_train"], m["n_missing_test"]) == \
        (56, 1, 1, 1, 0)
    assert series_run.data.tags["tuning_mode"] == "seasonal" and series_run.data.params["season"] == "4"
    assert parent.data.metrics["test_mape"] < parent.data.metrics["baseline_test_mape"]


def test_the_served_model_answers_in_quarters(trained, serve):
    home, uri, env, _ = trained
    server = serve(f"models:/{NAME}@challenger", uri)
    answer = server.invoke({"dataframe_records": [{"category": "beer", "horizon": 5}]})
    assert answer.status_code == 200, answer.text
    rows = pd.DataFrame(answer.json()["predictions"])
    assert rows["period"].tolist() == ["2011-10-01", "2012-01-01", "2012-04-01", "2012-07-01", "2012-10-01"]
    assert ((rows["lower"] < rows["forecast"]) & (rows["forecast"] < rows["upper"])).all()
    # the seasonal pattern continues: Q1 highest, Q3 lowest
    by_quarter = dict(zip(pd.to_datetime(rows["period"]).dt.quarter.iloc[:4], rows["forecast"].iloc[:4]))
    assert max(by_quarter, key=by_quarter.get) == 1 and min(by_quarter, key=by_quarter.get) == 3
    bad = server.invoke({"dataframe_records": [{"category": "beer", "horizon": 37}]})
    assert bad.status_code == 400 and "horizon" in bad.json()["message"]

    printed = _run(["forecast", "--model", f"models:/{NAME}@challenger", "--horizon", "2"], env, home)
    assert printed.returncode == 0, printed.stderr[-2000:]
    lines = printed.stdout.strip().splitlines()
    assert [line.split()[:2] for line in lines[2:]] == [["beer", "2011-10-01"], ["beer", "2012-01-01"]]
    assert lines[2].split()[2] == f"{rows['forecast'].iloc[0]:,.2f}"
