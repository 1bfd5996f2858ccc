"""The SARIMA job: sales series, the bring-your-own CSV path, fallbacks, the leak-free search, the logged
model (round trip, re-scoring) and ``storefront forecast``. Tiny series and 2 trials keep it fast."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import mlflow
import numpy as np
import pandas as pd
import pytest

from pipelines.errors import DataValidationError
from pipelines.sarima.series import category_series, read_series_csv


# ------------------------------------------------------------------------------------------ series


def _transactions(rows):
    return pd.DataFrame(rows, columns=["category", "amount", "purchase_date"]).assign(
        purchase_date=lambda d: pd.to_datetime(d["purchase_date"], format="ISO8601"))


def test_monthly_series_fill_missing_months_with_zero_and_add_the_total():
    tx = _transactions([("Books", 10.0, "2024-01-01"), ("Books", 5.0, "2024-01-31"), ("Toys", 7.0, "2024-01-15"),
                        ("Toys", 3.0, "2024-03-02"), ("Books", 1.0, "2024-04-30")])
    series = category_series(tx, "M")
    assert series.categories == ("Books", "Toys") and series.season == 12
    books, toys, total = series.series["Books"], series.series["Toys"], series.series["All"]
    assert [d.date().isoformat() for d in books.index] == ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]
    assert books.tolist() == [15.0, 0.0, 0.0, 1.0]
    assert toys.tolist() == [7.0, 0.0, 3.0, 0.0]
    assert total.tolist() == [22.0, 0.0, 3.0, 1.0]


def test_weekly_and_daily_series_fill_gaps():
    tx = _transactions([("Books", 2.0, "2024-01-01 10:00"), ("Books", 3.0, "2024-01-07 23:00"),
                        ("Books", 4.0, "2024-01-15"), ("Books", 1.0, "2024-01-21")])
    weekly = category_series(tx, "W", total=False).series["Books"]
    assert [d.date().isoformat() for d in weekly.index] == ["2024-01-01", "2024-01-08", "2024-01-15"]
    assert weekly.tolist() == [5.0, 0.0, 5.0]
    daily = category_series(tx, "D", total=False)
    assert daily.season == 7
    assert daily.series["Books"].tolist()[:3] == [2.0, 0.0, 0.0] and len(daily.series["Books"]) == 21


def test_partial_last_month_is_dropped_and_noted():
    tx = _transactions([("Books", 1.0, "2024-01-01"), ("Books", 2.0, "2024-02-29"), ("Books", 9.0, "2024-03-03")])
    series = category_series(tx, "M", total=False)
    assert series.series["Books"].tolist() == [1.0, 2.0]
    assert "2024-03" in series.notes["dropped_last_period"]


def test_bad_series_csv_names_the_file_the_column_and_the_line(tmp_path):
    path = tmp_path / "sales.csv"
    path.write_text("month,amount\n2024-01-01,3\n2024-02-01,x\n")
    with pytest.raises(DataValidationError, match=r"sales.csv: no column 'value' \(--value-column\); the file has "
                                                  r"'month', 'amount'"):
        read_series_csv(path, "month", "value")
    with pytest.raises(DataValidationError, match=r"sales.csv: column 'amount' has 1 non-numeric value\(s\) that are "
                                                  r"not missing-value markers \('', '\?', 'NA', 'N/A', 'null', '-'; "
                                                  r"--na-values\); first at line 3: 'x'"):
        read_series_csv(path, "month", "amount")


def test_bad_series_csv_exits_2_from_the_command(tmp_path, capsys, mlflow_env):
    from pipelines.cli import main

    path = tmp_path / "sales.csv"
    path.write_text("month,amount\n2024-01-01,3\n")
    code = main(["train-sarima", "--series", str(path), "--date-column", "date", "--value-column", "amount"])
    assert code == 2
    assert "no column 'date' (--date-column)" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ the job


def _seasonal(n, seed, level=300.0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return level + 3 * t + 60 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 5, n)


def _write_csv(path: Path, a_values: np.ndarray) -> Path:
    """AirPassengers-shaped (``time,value`` with dates like 1949/1/1) plus an id column: a seasonal series A
    (40 months: one validation fold after two seasons), a short series B (20 months) and a constant series C;
    all end in 2022-12."""
    def rows(name, start, values):
        months = pd.period_range(start, periods=len(values), freq="M")
        return [(f"{m.year}/{m.month}/1", f"{v:.3f}", name) for m, v in zip(months, values)]

    lines = (rows("A", "2019-09", a_values) + rows("B", "2021-05", _seasonal(20, 2)) +
             rows("C", "2019-09", np.full(40, 40.0)))
    path.write_text("time,value,shop\n" + "\n".join(",".join(r) for r in lines) + "\n")
    return path


def _args(**overrides):
    from pipelines.cli import parse_args

    argv = ["train-sarima", "--n-trials", "2", "--seed", "3"]
    for key, value in overrides.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return parse_args(argv)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """One run of the job on the CSV, in a tracking store of the module's own."""
    from pipelines.cli import train_from_args

    home = tmp_path_factory.mktemp("sarima-home")
    uri = f"sqlite:///{home / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STOREFRONT_HOME", str(home))
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        csv = _write_csv(home / "shops.csv", _seasonal(40, 1))
        result = train_from_args(_args(series=csv, date_column="time", value_column="value", id_column="shop"))
        yield SimpleNamespace(result=result, home=home, csv=csv, uri=uri, mp=mp)


def _series_runs(run_id):
    client = mlflow.MlflowClient()
    parent = client.get_run(run_id)
    runs = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    return {r.data.tags["series"]: r for r in runs}


@pytest.mark.e2e
def test_job_scores_every_series_and_tags_the_fallbacks(job):
    result = job.result
    assert result.family == "sarima" and result.primary_metric == "mape" and not result.higher_is_better
    assert result.registered_model == "storefront-sarima-shops"
    runs = _series_runs(result.run_id)
    assert set(runs) == {"A", "B", "C"}
    assert runs["A"].data.tags["tuning_mode"] == "seasonal" and "fallback_reason" not in runs["A"].data.tags
    assert runs["B"].data.tags["tuning_mode"] == "nonseasonal"
    assert ("too short for the seasonal period 12: 14 observed training periods, seasonal terms need 25 (two "
            "seasons and one); a non-seasonal search") == runs["B"].data.tags["fallback_reason"]
    assert runs["C"].data.tags["model_kind"] == "seasonal_naive"
    assert runs["C"].data.tags["fallback_reason"] == "constant series: all 34 observed training periods are 40"
    parent = mlflow.get_run(result.run_id)
    for key in ("test_mape", "test_smape", "test_mase", "test_rmse", "test_interval_coverage",
                "baseline_test_mape", "baseline_test_mase"):
        assert key in parent.data.metrics
    assert parent.data.metrics["test_mape"] == pytest.approx(result.test_value)
    means = np.mean([runs[s].data.metrics["test_mape"] for s in "ABC"])
    assert result.test_value == pytest.approx(means)
    assert parent.data.metrics["n_series_fallback"] == 2
    assert parent.data.tags["round_trip_check"].startswith("passed")
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id)}
    assert {"plots", "holdout", "series_summary.csv", "forecasts"} <= artifacts
    trials = mlflow.MlflowClient().search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{runs['A'].info.run_id}'")
    # one run per candidate fitted, with its AICc as the metric the runs table sorts by and its fit's warning
    # count, spec and differencing as tags
    study_trials = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=runs["A"].info.run_id,
                                                                   artifact_path="study/trials.csv"))
    ran = study_trials[study_trials["state"] != "WAITING"]  # the enqueued starting models not reached stay WAITING
    assert len(ran) == 2 and 1 <= len(trials) == int((ran["state"] == "COMPLETE").sum())
    assert all(t.data.tags["trial_state"] == "COMPLETE" and t.info.status == "FINISHED" and "val_aicc" in t.data.metrics
               and "n_warnings" in t.data.tags and t.data.tags["spec"].startswith("SARIMA(") for t in trials)
    assert runs["A"].data.metrics["chosen_aicc"] == pytest.approx(min(t.data.metrics["val_aicc"] for t in trials))
    assert runs["A"].data.metrics["n_missing"] == 0 and runs["A"].data.metrics["n_rows"] == 40
    assert runs["A"].data.tags["role"] == "series" and runs["A"].info.run_name.startswith("A: ")


@pytest.mark.e2e
def test_logged_model_serves_the_training_forecasts(job):
    from mlflow.artifacts import download_artifacts

    expected = pd.read_csv(download_artifacts(run_id=job.result.run_id, artifact_path="forecasts/next_periods.csv"))
    model = mlflow.pyfunc.load_model(job.result.model_uri)
    served = model.predict(pd.DataFrame({"category": ["A", "B", "C"], "horizon": [12, 12, 12]}))
    assert list(served["period"]) == list(expected["period"])
    assert served["period"].iloc[0] == "2023-01-01"
    for column in ("forecast", "lower", "upper"):
        np.testing.assert_allclose(served[column], expected[column], rtol=1e-8)


@pytest.mark.e2e
def test_rescoring_the_logged_model_on_its_holdout_gives_the_test_metric(job):
    from pipelines.rescoring import rescorer_for

    version = SimpleNamespace(run_id=job.result.run_id, source=job.result.model_uri)
    logged = mlflow.get_run(job.result.run_id).data.metrics["test_mape"]
    assert rescorer_for(version)(job.result.model_uri) == pytest.approx(logged, abs=1e-6)


@pytest.mark.e2e
def test_forecast_command_prints_next_month_from_the_latest_model(job, capsys):
    from pipelines.cli import main

    assert main(["forecast", "--horizon", "1"]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert job.result.model_uri in lines[0]
    assert lines[1].split() == ["category", "period", "forecast", "lower", "upper"]
    assert [line.split()[:2] for line in lines[2:]] == [["A", "2023-01-01"], ["B", "2023-01-01"],
                                                        ["C", "2023-01-01"]]
    assert lines[4].split()[2:] == ["40.00", "40.00", "40.00"]


@pytest.mark.e2e
def test_test_periods_never_reach_the_search(job):
    """Changing the held-out values changes the test score but not one trial of the study."""
    from pipelines.cli import train_from_args

    a = _seasonal(40, 1)
    a[-6:] = a[-6:] * 3 + 100
    csv = _write_csv(job.home / "shops_changed.csv", a)
    changed = train_from_args(_args(series=csv, date_column="time", value_column="value", id_column="shop",
                                    registered_model="other-shops"))
    client = mlflow.MlflowClient()

    def trials(result):
        run = _series_runs(result.run_id)["A"]
        children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
        return (sorted((c.data.params["p"], c.data.params["q"], c.data.params.get("seasonal"),
                        c.data.params["trend"], c.data.params["transform"], c.data.tags["trial_state"],
                        round(c.data.metrics.get("val_aicc", -1.0), 9))
                       for c in children), run)

    (before, run_before), (after, run_after) = trials(job.result), trials(changed)
    assert before == after
    assert run_before.data.tags["model"] == run_after.data.tags["model"]
    assert run_before.data.metrics["test_mape"] != pytest.approx(run_after.data.metrics["test_mape"])


def test_freq_and_season_options():
    from pipelines.errors import ConfigurationError
    from pipelines.sarima.train import config_from_args

    config = config_from_args(_args(freq="Q", season=2, test_periods=3))
    assert (config.freq, config.season, config.test_periods) == ("Q", 2, 3)
    defaults = config_from_args(_args())
    assert (defaults.freq, defaults.season, defaults.test_periods) == (None, None, None)
    with pytest.raises(SystemExit):
        _args(freq="H")  # not in the frequency table
    with pytest.raises(ConfigurationError, match="--season must be a positive integer, got 0"):
        config_from_args(_args(season=0))
    with pytest.raises(ConfigurationError, match="--na-values and --registered-model go with --series"):
        config_from_args(_args(na_values="n/a"))
    own = config_from_args(_args(series="x.csv", date_column="d", value_column="v", na_values="n/a,none?"))
    assert own.na_values == ("n/a", "none?")
