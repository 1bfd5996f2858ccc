"""A user's own series (``train-sarima --series``): the frequency inferred from the dates (yearly to daily),
irregular dates named, missing values kept missing (trimmed at the ends, NaN inside), ``--freq`` / ``--season`` /
``--na-values``, the test metrics over observed periods only, and the gate's refusal explained."""

from __future__ import annotations

import logging
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from pipelines.errors import DataValidationError
from pipelines.sarima.series import infer_frequency, read_series_csv


def _csv(tmp_path, rows, name="sales.csv", header="date,value"):
    path = tmp_path / name
    path.write_text(header + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return path


def _dates(start, n, freq, how="start"):
    return pd.period_range(start, periods=n, freq=freq).to_timestamp(how=how).normalize()


@pytest.mark.parametrize("freq, season", [("Y", 1), ("Q", 4), ("M", 12), ("W", 52), ("D", 7)])
@pytest.mark.parametrize("how", ["start", "end"])
def test_the_frequency_is_inferred_from_period_start_or_end_dates(freq, season, how):
    dates = _dates("2001-01-01", 30, freq, how)
    code, _ = infer_frequency(dates)
    assert code == freq
    from models.sarima.frequency import FREQUENCIES

    assert FREQUENCIES[code].season == season


def test_missing_periods_and_a_stray_date_do_not_change_the_inferred_frequency():
    dates = _dates("2001-01-01", 40, "Q")
    assert infer_frequency(dates.delete([5, 6, 20]))[0] == "Q"
    assert infer_frequency(dates.append(pd.DatetimeIndex(["2001-02-15"])))[0] == "Q"
    assert infer_frequency(pd.DatetimeIndex(["2001-01-01"]))[0] is None
    semimonthly = pd.DatetimeIndex([d for m in _dates("2001-01-01", 24, "M") for d in (m, m + pd.Timedelta(days=14))])
    assert infer_frequency(semimonthly)[0] is None  # gaps of 14 and 17 days match no frequency


def test_a_quarterly_file_is_read_as_quarters_never_as_months_with_zeros(tmp_path):
    dates = _dates("1990-01-01", 24, "Q", how="end")  # quarter ends, as many exports have them
    values = 100 + 10 * np.sin(np.arange(24) * np.pi / 2) + np.arange(24)
    series_set = read_series_csv(_csv(tmp_path, zip(dates.date, values)), "date", "value")
    assert (series_set.freq, series_set.season, series_set.freq_inferred) == ("Q", 4, True)
    s = series_set.series["sales"]
    assert len(s) == 24 and not s.isna().any()
    assert [d.date().isoformat() for d in s.index[:3]] == ["1990-01-01", "1990-04-01", "1990-07-01"]
    np.testing.assert_allclose(s.to_numpy(), values)
    assert series_set.counts["sales"] == {"n_rows": 24, "n_missing_values": 0, "n_missing_dates": 0,
                                          "n_summed_rows": 0, "n_trimmed_start": 0, "n_trimmed_end": 0,
                                          "n_missing": 0}


def test_a_yearly_file_has_no_season(tmp_path):
    rows = [(f"{year}-01-01", 50 + year % 7) for year in range(1960, 2000)]
    series_set = read_series_csv(_csv(tmp_path, rows), "date", "value")
    assert (series_set.freq, series_set.season) == ("Y", 1)
    assert series_set.series["sales"].index[-1] == pd.Timestamp("1999-01-01")


def test_the_first_irregular_date_is_named_with_its_line(tmp_path):
    dates = list(_dates("2020-01-01", 30, "M").date)
    dates[11] = pd.Timestamp("2020-12-15").date()  # line 13: mid-month among month starts
    dates[20] = pd.Timestamp("2021-09-20").date()
    path = _csv(tmp_path, [(d, 10 + i) for i, d in enumerate(dates)])
    with pytest.raises(DataValidationError) as caught:
        read_series_csv(path, "date", "value")
    message = str(caught.value)
    assert "sales.csv: series 'sales': irregular dates for a monthly series: 2020-12-15 (line 13)" in message
    assert "e.g. 2020-01-01" in message and "pass --freq M to sum the values of each month" in message
    twice = [(d, 1) for d in _dates("2020-01-01", 12, "M").date] + [("2020-03-31", 2)]
    with pytest.raises(DataValidationError, match=r"irregular dates for a monthly series: 2020-03-31 \(line 14\) "
                                                  r"falls in the same month as 2020-03-01 \(line 4\)"):
        read_series_csv(_csv(tmp_path, twice, "twice.csv"), "date", "value")


def test_dates_that_match_no_frequency_ask_for_freq(tmp_path):
    rows = [(d.date(), 1.0) for d in pd.date_range("2020-01-01", periods=20, freq="14D")]
    with pytest.raises(DataValidationError, match=r"cannot infer the frequency from its dates \(the gaps between "
                                                  r"dates, median 14 days, match no frequency.*pass --freq"):
        read_series_csv(_csv(tmp_path, rows), "date", "value")


def test_missing_values_are_trimmed_at_the_ends_and_kept_inside(tmp_path, caplog):
    dates = _dates("2018-01-01", 20, "Q").date
    values = ["", "NA", 5, 6, "?", 8, 9, 10, "null", 12, 13, 14, 15, 16, 17, 18, 19, 20, "-", "n/a"]
    rows = [(d, v) for i, (d, v) in enumerate(zip(dates, values)) if i != 12]  # 2021-01-01: no row at all
    with caplog.at_level(logging.INFO, logger="pipelines.sarima.series"):
        series_set = read_series_csv(_csv(tmp_path, rows), "date", "value")
    s = series_set.series["sales"]
    assert s.index[0] == pd.Timestamp("2018-07-01") and s.index[-1] == pd.Timestamp("2022-04-01")
    assert np.isnan(s.to_numpy()).nonzero()[0].tolist() == [2, 6, 10]  # '?', 'null' and the date without a row
    assert s.iloc[0] == 5 and s.iloc[-1] == 20
    assert series_set.counts["sales"] == {"n_rows": 19, "n_missing_values": 6, "n_missing_dates": 1,
                                          "n_summed_rows": 0, "n_trimmed_start": 2, "n_trimmed_end": 2,
                                          "n_missing": 3}
    assert series_set.notes == {"trimmed_periods.sales": "2 at the start, 2 at the end", "missing_periods.sales": "3"}
    text = caplog.text
    assert ("series sales: 2 missing quarterly period(s) at the start and 2 at the end trimmed; it now runs from "
            "2018Q3 to 2022Q2") in text
    assert "3 missing quarterly period(s) inside the series stay missing (6 missing value(s), 1 date(s) without" in text


def test_na_values_replace_the_markers_and_other_text_is_an_error(tmp_path):
    rows = [(d, v) for d, v in zip(_dates("2020-01-01", 12, "M").date, [1, 2, "n.a.", 4, 5, "NA", 7, 8, 9, 10, 11, 12])]
    path = _csv(tmp_path, rows)
    with pytest.raises(DataValidationError, match=r"column 'value' has 1 non-numeric value\(s\) that are not "
                                                  r"missing-value markers .*first at line 4: 'n.a.'"):
        read_series_csv(path, "date", "value")
    with pytest.raises(DataValidationError, match=r"\('', 'N.A.'; --na-values\); first at line 7: 'NA'"):
        read_series_csv(path, "date", "value", na_values=("N.A.",))  # case-insensitive, and only these
    s = read_series_csv(path, "date", "value", na_values=("n.a.", "na")).series["sales"]
    assert np.isnan(s.to_numpy()).nonzero()[0].tolist() == [2, 5]


def test_all_missing_series_is_an_error_naming_it(tmp_path):
    rows = [(d, "a", v) for d, v in zip(_dates("2020-01-01", 6, "M").date, ["", "", "", "", "", ""])]
    rows += [(d, "b", i) for i, d in enumerate(_dates("2020-01-01", 6, "M").date)]
    with pytest.raises(DataValidationError, match=r"series 'a' has no values: all 6 are missing"):
        read_series_csv(_csv(tmp_path, rows, header="date,id,value"), "date", "value", "id")


def test_freq_option_sums_rows_into_its_periods(tmp_path):
    days = pd.date_range("2021-01-01", "2021-06-30", freq="D")
    path = _csv(tmp_path, [(d.date(), 1.0) for d in days])
    assert read_series_csv(path, "date", "value").freq == "D"
    series_set = read_series_csv(path, "date", "value", freq="M")
    assert (series_set.freq, series_set.freq_inferred) == ("M", False)
    assert series_set.series["sales"].tolist() == [31, 28, 31, 30, 31, 30]
    assert series_set.counts["sales"]["n_summed_rows"] == len(days) - 6
    quarterly = read_series_csv(path, "date", "value", freq="Q")
    assert quarterly.series["sales"].tolist() == [90, 91] and quarterly.season == 4
    quarterly.season_override = 2  # --season
    assert quarterly.season == 2


def test_series_of_different_frequencies_in_one_file_are_refused(tmp_path):
    rows = [(d, "m", 1) for d in _dates("2020-01-01", 12, "M").date] + [(d, "q", 1) for d in
                                                                      _dates("2020-01-01", 12, "Q").date]
    with pytest.raises(DataValidationError, match=r"the series have different frequencies \(m monthly, q quarterly\)"):
        read_series_csv(_csv(tmp_path, rows, header="date,id,value"), "date", "value", "id")


# ------------------------------------------------------------------------------------------ scores and summary


def test_test_metrics_skip_missing_periods():
    from models.sarima.model import Forecast
    from pipelines.sarima.report import score_forecast

    y_train = np.array([10.0, 20, 30, 40, 12, 22, np.nan, 42])
    y_test = np.array([14.0, np.nan, 34.0, 44.0])
    forecast = Forecast(np.array([12.0, 1e6, 32.0, 44.0]), np.array([11.0, 0.0, 33.0, 40.0]),
                        np.array([13.0, 2e6, 35.0, 50.0]))
    scores, undefined = score_forecast(y_train, y_test, forecast, season=4)
    assert undefined == {}
    assert scores["mape"] == pytest.approx(np.mean([2 / 14, 2 / 34, 0.0]))
    assert scores["rmse"] == pytest.approx(math.sqrt((4 + 4 + 0) / 3))
    assert scores["interval_coverage"] == pytest.approx(2 / 3)  # 14 outside [11, 13]; 34 and 44 inside
    # the scale leaves out the pair with the missing training value: |12-10|, |22-20|, |42-40| -> 2
    assert scores["mase"] == pytest.approx(np.mean([2, 2, 0]) / 2)
    none, undefined = score_forecast(y_train, np.array([np.nan, np.nan]), forecast, season=4)
    assert none == {} and set(undefined) == {"mape", "smape", "mase", "rmse", "interval_coverage"}


def _result(series, test_value, baseline_value):
    return SimpleNamespace(test_value=test_value, baseline_value=baseline_value, run_id="r1",
                           extra={"n_scored": len(series), "series": series, "test_periods": 8})


def test_the_summary_says_why_the_gate_refused_and_what_to_try():
    from pipelines.sarima.train import summary

    series = {"wine": {"model": "SARIMA(1,1,2)(1,1,1,12) trend=n transform=log", "reason": "",
                       "test_mape": 0.084, "baseline_test_mape": 0.072},
              "beer": {"model": "SARIMA(0,1,2)(0,1,1,4) trend=n transform=log", "reason": "",
                       "test_mape": 0.030, "baseline_test_mape": 0.041}}
    text = summary(_result(series, 0.057, 0.0565), "not registered: test mape 0.057 is not better than 0.0565")
    lines = text.splitlines()
    assert lines[0].startswith("SARIMA: test mape 0.0570 (seasonal naive 0.0565) averaged over 2 series; not "
                               "registered")
    assert "test mape 0.0840 (naive 0.0720)" in lines[1]
    assert ("why: the gate registers a model whose mean test MAPE beats the seasonal naive forecast's; here the "
            "seasonal naive forecast does at least as well on 1 of 2 series (wine).") in text
    assert "what to try:" in text and "--test-periods, now 8" in text and "--season 1" in text
    assert "mlflow models serve -m runs:/<run>/model" in text
    registered = summary(_result(series, 0.05, 0.06), "registered storefront-sarima-x version 1 as challenger")
    assert "why:" not in registered and "what to try" not in registered
