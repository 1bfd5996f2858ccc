"""SARIMA building blocks: fitting with counted warnings, fixed-parameter forecasts, the compact export,
the seasonal naive forecast, and the tuning plan's fallbacks for short and constant series."""

from __future__ import annotations

import numpy as np
import pytest

from models.sarima.frequency import next_periods
from models.sarima.model import (SEASONAL_NAIVE, FitError, Forecast, SarimaSpec, SeasonalNaive, SeriesModel,
                                 export_sarima, export_seasonal_naive, fit_sarima, forecast_sarima)


def seasonal_series(n: int = 48, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 100 + 0.8 * t + 15 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 2, n)


def test_seasonal_naive_repeats_last_season_and_widens_each_season():
    y = np.arange(1.0, 25.0)  # 24 values; seasonal differences are all 12
    model = SeasonalNaive(12).fit(y)
    forecast = model.forecast(14, confidence=0.95)
    np.testing.assert_allclose(forecast.mean[:12], y[12:])
    np.testing.assert_allclose(forecast.mean[12:], y[12:14])
    assert model.sigma_ == pytest.approx(12.0)
    half = forecast.upper - forecast.mean
    assert half[0] == pytest.approx(1.959964 * 12, rel=1e-5)
    assert half[12] == pytest.approx(1.959964 * 12 * np.sqrt(2), rel=1e-5)


def test_seasonal_naive_uses_the_last_value_when_shorter_than_a_season():
    forecast = SeasonalNaive(12).fit([3.0, 5.0, 4.0]).forecast(3)
    np.testing.assert_allclose(forecast.mean, [4.0, 4.0, 4.0])


def test_fit_counts_warnings_instead_of_printing_them(recwarn):
    y = seasonal_series(36)
    fit = fit_sarima(y, SarimaSpec((2, 0, 2), (1, 1, 1, 12), "c", "none"), maxiter=3)
    assert len(recwarn) == 0
    assert fit.n_warnings >= 1  # three iterations cannot converge
    assert fit.warnings["ConvergenceWarning"] >= 1
    assert not fit.converged


def test_fit_refuses_a_series_too_short_for_the_spec():
    spec = SarimaSpec((1, 0, 0), (1, 1, 0, 12), "n", "none")
    with pytest.raises(FitError, match=r"needs at least \d+ observations, the series has 20"):
        fit_sarima(seasonal_series(20), spec)


def test_log_transform_needs_positive_values():
    with pytest.raises(FitError, match="1 zero or negative"):
        fit_sarima(np.r_[seasonal_series(30), 0.0], SarimaSpec((1, 1, 0), transform="log"))


def test_export_keeps_few_observations_and_reproduces_the_full_series_forecast():
    y = seasonal_series(120)
    spec = SarimaSpec((1, 0, 0), (0, 1, 0, 12), "c", "log")
    fit = fit_sarima(y, spec)
    served = SeriesModel.from_dict(export_sarima("A", y, spec, fit, freq="M", last_period="2024-12-01").to_dict())
    assert len(served.observations) < y.size
    full = forecast_sarima(y, spec, fit.params, 12, confidence=0.8)
    compact = served.forecast(12, confidence=0.8)
    for a, b in ((compact.mean, full.mean), (compact.lower, full.lower), (compact.upper, full.upper)):
        np.testing.assert_allclose(a, b, rtol=1e-8)
    assert np.all(compact.lower < compact.mean) and np.all(compact.mean < compact.upper)
    assert served.periods(2) == ["2025-01-01", "2025-02-01"]
    # forecasting from the training history with the stored parameters equals forecasting with the fit
    np.testing.assert_allclose(served.forecast_from_history(y[:100], 6).mean,
                               forecast_sarima(y[:100], spec, fit.params, 6).mean, rtol=1e-10)


def test_seasonal_naive_export_round_trips_through_json():
    y = seasonal_series(30)
    served = export_seasonal_naive("B", y, freq="M", season=12, last_period="2024-06-01", reason="constant")
    again = SeriesModel.from_dict(served.to_dict())
    assert again.kind == SEASONAL_NAIVE and again.reason == "constant"
    np.testing.assert_allclose(again.forecast(3).mean, y[-12:-9])


def test_next_periods_follow_the_frequency():
    assert next_periods("2024-01-01", "W", 2) == ["2024-01-08", "2024-01-15"]
    assert next_periods("2024-02-28", "D", 2) == ["2024-02-29", "2024-03-01"]
    assert next_periods("2024-10-01", "Q", 3) == ["2025-01-01", "2025-04-01", "2025-07-01"]
    assert next_periods("2024-12-31", "Q", 1) == ["2025-01-01"]  # any date of the last quarter
    assert next_periods("2023-01-01", "Y", 2) == ["2024-01-01", "2025-01-01"]


def test_the_frequency_table_gives_season_and_default_test_periods():
    from models.sarima.frequency import FREQUENCIES, frequency

    assert {c: (f.season, f.test_periods) for c, f in FREQUENCIES.items()} == {
        "Y": (1, 4), "Q": (4, 4), "M": (12, 6), "W": (52, 8), "D": (7, 14)}
    with pytest.raises(ValueError, match="unknown frequency 'H'"):
        frequency("H")


def test_fit_keeps_missing_values_missing_and_counts_what_the_likelihood_uses():
    y = seasonal_series(60)
    gappy = y.copy()
    gappy[[5, 30]] = np.nan
    spec = SarimaSpec((0, 1, 1), (0, 1, 1, 12), "n", "log")
    full, fit = fit_sarima(y, spec), fit_sarima(gappy, spec)
    assert full.n_eff == 60 - 13 and fit.n_obs == 58
    # (1 - B)(1 - B^12) y_t uses y_t, y_t-1, y_t-12, y_t-13: the gap at 30 removes the differences at 30, 31, 42
    # and 43; the gap at 5 (inside the first 13, lost anyway) those at 17 and 18
    assert fit.n_eff == 60 - 13 - 6
    assert fit.param_names[-1] == "sigma2" and fit.params[-1] > 0  # the concentrated-out variance, appended
    forecast = forecast_sarima(gappy, spec, fit.params, 6)
    assert np.isfinite(forecast.mean).all() and np.all(forecast.lower < forecast.upper)


def test_aicc_is_of_the_original_values_so_log_and_raw_models_compare():
    rng = np.random.default_rng(4)
    t = np.arange(96)
    y = np.exp(4 + 0.02 * t + 0.3 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.05, t.size))  # multiplicative
    raw, log = (fit_sarima(y, SarimaSpec((0, 1, 1), (0, 1, 1, 12), "n", tr)) for tr in ("none", "log"))
    k, n = 3, 96 - 13
    assert log.log_jacobian == pytest.approx(np.log(y[13:]).sum())
    assert log.aicc == pytest.approx(-2 * (log.loglike - log.log_jacobian) + 2 * k + 2 * k * (k + 1) / (n - k - 1))
    assert raw.log_jacobian == 0.0
    assert log.aicc < raw.aicc  # the log model describes this series better, in the same units


def test_seasonal_naive_takes_a_missing_value_from_an_earlier_season():
    y = np.arange(1.0, 37.0)  # three seasons of 12
    y[30] = np.nan  # position 6 of the last season
    model = SeasonalNaive(12).fit(y)
    assert model.last_[6] == y[18]  # one season earlier
    assert model.sigma_ == pytest.approx(12.0)  # the pairs with the missing value are left out
    np.testing.assert_allclose(model.forecast(12).mean[:6], y[24:30])


def test_a_mixture_interval_holds_the_confidence_of_the_members_together():
    from scipy.stats import norm

    from models.sarima.model import mixture_forecast

    a = (np.array([np.log(100.0)]), np.array([0.1]), "log")
    b = (np.array([120.0]), np.array([10.0]), "none")
    forecast = mixture_forecast([a, b], [0.25, 0.75], 0.9)
    assert forecast.mean[0] == pytest.approx(0.25 * 100 + 0.75 * 120)

    def cdf(x):
        return 0.25 * norm.cdf((np.log(x) - a[0][0]) / 0.1) + 0.75 * norm.cdf((x - 120.0) / 10.0)

    assert cdf(forecast.lower[0]) == pytest.approx(0.05, abs=1e-9)
    assert cdf(forecast.upper[0]) == pytest.approx(0.95, abs=1e-9)
    single = mixture_forecast([b], [1.0], 0.9)  # one member: its own Gaussian interval
    assert single.upper[0] == pytest.approx(120 + 1.644854 * 10, rel=1e-6)


def test_a_hedged_model_serves_the_same_mixture_from_its_json_and_from_the_full_history():
    import json

    from models.sarima.model import Member, export_model

    y = seasonal_series(40)
    y[20] = np.nan
    spec = SarimaSpec((0, 0, 0), (0, 1, 0, 12), "c", "log")
    members = [Member.of_fit(fit_sarima(y, spec), 0.5), Member.of_naive(SeasonalNaive(12).fit(y), 0.5)]
    served = export_model("A", y, members, freq="Q", season=12, last_period="2024-10-01")
    again = SeriesModel.from_dict(json.loads(json.dumps(served.to_dict())))  # NaN travels as null
    for got in (again.forecast(8, 0.8), served.forecast_from_history(y, 8, 0.8)):
        np.testing.assert_allclose(got.upper, served.forecast(8, 0.8).upper, rtol=1e-9)
    assert again.periods(2) == ["2025-01-01", "2025-04-01"]
    assert again.describe() == "SARIMA(0,0,0)(0,1,0,12) trend=c transform=log; 50% seasonal naive"


def test_a_hedged_model_fitted_on_the_training_periods_serves_the_last_season_of_the_whole_series():
    """The job fits the members on the training periods and exports them on the whole series: the seasonal naive
    member then repeats the whole series' last season (as forecast_from_history does), not the training one's."""
    from models.sarima.model import Member, export_model

    y = seasonal_series(40)
    train = y[:-6]
    spec = SarimaSpec((0, 0, 0), (0, 1, 0, 12), "c", "none")
    naive = SeasonalNaive(12).fit(train)
    members = [Member.of_fit(fit_sarima(train, spec), 0.5), Member.of_naive(naive, 0.5)]
    served = export_model("A", y, members, freq="M", season=12, last_period="2024-04-01")
    assert served.members[1].last == pytest.approx(list(y[-12:])) and served.members[1].sigma == naive.sigma_
    assert members[1].last == pytest.approx(list(train[-12:]))  # the caller's members are left alone
    np.testing.assert_allclose(served.forecast(12).mean, served.forecast_from_history(y, 12).mean, rtol=1e-9)
    np.testing.assert_allclose(served.forecast(12).lower, served.forecast_from_history(y, 12).lower, rtol=1e-9)


def test_interval_coverage_is_the_share_of_actuals_inside_the_band():
    from pipelines.sarima.report import score_forecast

    forecast = Forecast(mean=np.array([10.0, 10.0, 10.0, 10.0]), lower=np.array([9.0, 9.0, 9.0, 9.0]),
                        upper=np.array([11.0, 11.0, 11.0, 11.0]))
    scores, undefined = score_forecast(np.array([8.0, 9.0, 10.0, 12.0]), np.array([10.5, 11.0, 12.0, 8.0]),
                                       forecast, season=2)
    assert scores["interval_coverage"] == pytest.approx(0.5)  # 10.5 and 11 (inclusive) inside; 12 and 8 outside
    assert scores["mape"] == pytest.approx(np.mean([0.5 / 10.5, 1 / 11, 2 / 12, 2 / 8]))
    # MASE scale: in-sample seasonal (lag 2) naive errors |10-8|, |12-9| -> 2.5
    assert scores["mase"] == pytest.approx(np.mean([0.5, 1, 2, 2]) / 2.5)
    assert undefined == {}


def test_undefined_metrics_are_left_out_with_a_reason():
    from pipelines.sarima.report import score_forecast

    forecast = Forecast(np.ones(2), np.zeros(2), np.full(2, 2.0))
    scores, undefined = score_forecast(np.ones(4), np.array([0.0, 1.0]), forecast, season=2)
    assert "mape" not in scores and "mape" in undefined
    assert "mase" not in scores  # constant training series: the MASE scale is zero
    assert scores["interval_coverage"] == 1.0


@pytest.mark.e2e
@pytest.mark.parametrize("transform", ["none", "log"])
def test_prepared_forecasts_equal_statsmodels_for_any_confidence(transform):
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    y = seasonal_series(72, seed=3)
    spec = SarimaSpec((1, 1, 1), (0, 1, 1, 12), "n", transform)
    fit = fit_sarima(y, spec)
    served = SeriesModel.from_dict(export_sarima("A", y, spec, fit, freq="M", last_period="2024-12-01").to_dict())
    served.prepare()  # precomputes 36 steps; later forecasts only slice them
    values = np.log(y) if transform == "log" else y
    results = SARIMAX(values, order=spec.order, seasonal_order=spec.seasonal_order, trend=spec.trend).filter(fit.params)
    back = np.exp if transform == "log" else (lambda v: v)
    for steps, confidence in ((1, 0.95), (12, 0.8), (36, 0.5), (7, 0.99), (20, 0.123)):
        prediction = results.get_forecast(steps)
        bounds = np.asarray(prediction.conf_int(alpha=1 - confidence))
        got = served.forecast(steps, confidence)
        np.testing.assert_allclose(got.mean, back(np.asarray(prediction.predicted_mean)), rtol=1e-9, atol=0)
        np.testing.assert_allclose(got.lower, back(bounds[:, 0]), rtol=1e-9, atol=0)
        np.testing.assert_allclose(got.upper, back(bounds[:, 1]), rtol=1e-9, atol=0)
    # beyond the precomputed steps the forecast is computed (and kept), not truncated
    longer = served.forecast(40, 0.9)
    assert longer.mean.size == 40 and len(served.periods(40)) == 40
    np.testing.assert_allclose(longer.mean, forecast_sarima(y, spec, fit.params, 40, 0.9).mean, rtol=1e-9)


def test_prepared_forecasts_are_copies_of_the_cached_moments():
    y = seasonal_series(60)
    spec = SarimaSpec((1, 0, 0), (0, 1, 0, 12), "c", "none")
    served = export_sarima("A", y, spec, fit_sarima(y, spec), freq="M", last_period="2024-12-01").prepare()
    first = served.forecast(6, 0.9)
    expected = first.mean.copy()
    first.mean[:] = 0.0
    first.lower[:] = 0.0
    served.periods(3)[0] = "changed"
    np.testing.assert_array_equal(served.forecast(6, 0.9).mean, expected)
    assert served.periods(1) == ["2025-01-01"]


def test_a_mixture_serves_each_confidence_from_one_computed_band():
    """A request slices the band of its confidence (a step's interval depends only on that step), computed once per
    confidence: the same numbers as the mixture of the sliced moments, as copies."""
    from models.sarima.model import MAX_CACHED_BANDS, Member, export_model, mixture_forecast

    y = seasonal_series(48)
    members = [Member.of_fit(fit_sarima(y, SarimaSpec((1, 0, 0), (0, 1, 0, 12), "c", "none")), 0.3),
               Member.of_fit(fit_sarima(y, SarimaSpec((0, 1, 1), (0, 1, 0, 12), "n", "log")), 0.2),
               Member.of_naive(SeasonalNaive(12).fit(y), 0.5)]
    served = export_model("A", y, members, freq="M", season=12, last_period="2024-12-01").prepare()
    for steps, confidence in ((5, 0.9), (36, 0.9), (1, 0.5), (12, 0.95)):
        got = served.forecast(steps, confidence)
        moments = [(m[:steps], s[:steps], t) for m, s, t in served._mean]
        want = mixture_forecast(moments, served.weights, confidence)
        for a, b in ((got.mean, want.mean), (got.lower, want.lower), (got.upper, want.upper)):
            np.testing.assert_allclose(a, b, rtol=1e-12)
    got = served.forecast(3, 0.9)
    got.lower[:] = 0.0
    assert served.forecast(3, 0.9).lower.min() > 0
    for k in range(MAX_CACHED_BANDS + 3):
        served.forecast(2, 0.5 + k / 100)
    assert len(served._bands) == MAX_CACHED_BANDS and 0.9 not in served._bands
