"""SARIMA building blocks: fitting with counted warnings, fixed-parameter forecasts, the compact export,
the seasonal naive forecast, and the tuning plan's fallbacks for short and constant series."""

from __future__ import annotations

import numpy as np
import pytest

from models.sarima.model import (SEASONAL_NAIVE, FitError, Forecast, SarimaSpec, SeasonalNaive, SeriesModel,
                           export_sarima, export_seasonal_naive, fit_sarima, forecast_sarima, next_periods)


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


def test_next_periods_weekly_and_daily():
    assert next_periods("2024-01-01", "W", 2) == ["2024-01-08", "2024-01-15"]
    assert next_periods("2024-02-28", "D", 2) == ["2024-02-29", "2024-03-01"]


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


class TestFallbackPlans:
    def test_short_series_falls_back_to_a_nonseasonal_search_and_says_why(self):
        from pipelines.sarima.tuning import NONSEASONAL, plan_series

        plan = plan_series(seasonal_series(18), season=12, horizon=6)  # 24 months less a test of 6
        assert plan.mode == NONSEASONAL
        assert "too short for the seasonal period 12: 18 training periods" in plan.reason
        assert plan.folds and plan.folds[-1][1] == 18

    def test_very_short_series_falls_back_to_seasonal_naive(self):
        from pipelines.sarima.tuning import NAIVE, plan_series

        plan = plan_series(seasonal_series(10), season=12, horizon=6)
        assert plan.mode == NAIVE
        assert "too short for ARIMA: 10 training periods" in plan.reason

    def test_constant_series_falls_back_to_seasonal_naive(self):
        from pipelines.sarima.tuning import NAIVE, plan_series

        plan = plan_series(np.full(40, 7.0), season=12, horizon=6)
        assert plan.mode == NAIVE
        assert plan.reason == "constant series: all 40 training periods are 7"

    def test_long_seasonal_series_gets_a_seasonal_search_with_tested_differencing(self):
        from pipelines.sarima.tuning import SEASONAL, plan_series

        plan = plan_series(seasonal_series(48), season=12, horizon=6)
        assert plan.mode == SEASONAL
        assert {D for _, _, D in plan.differencing} == {1}
        assert all(end <= 48 for _, end in plan.folds)


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


@pytest.mark.e2e
def test_aicc_screen_prunes_implausible_specs_and_the_choice_is_the_best_cv_among_plausible_ones():
    import optuna

    from pipelines.sarima.tuning import ICScreen, _refit_best, aicc, make_objective, plan_series
    from pipelines.study import StudyResult

    y = seasonal_series(72, seed=5)
    plan = plan_series(y, 12, 12)
    good = SarimaSpec((1, plan.orders_for("none")[0], 0), (0, plan.orders_for("none")[1], 1, 12), "c", "none")
    fit = fit_sarima(y, good)
    k, n = len(fit.params), y.size - good.n_diff
    assert aicc(fit) == pytest.approx(fit.aic + 2 * k * (k + 1) / (n - k - 1))

    objective = make_objective(y, plan, ic_margin=2.0)
    study = optuna.create_study()
    for params in ({"p": 1, "q": 0, "seasonal": "0,1", "trend": "c", "transform": "none"},
                   {"p": 0, "q": 0, "seasonal": "0,0", "trend": "n", "transform": "none"},
                   {"p": 0, "q": 0, "seasonal": "0,0", "trend": "n", "transform": "log"}):
        study.enqueue_trial(params)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study.optimize(objective, n_trials=3)
    states = [t.state.name for t in study.trials]
    # the white-noise spec is far worse by AICc than the first one of the same group: pruned, never CV-scored;
    # the log spec is the first of its own group (another likelihood), so it is cross-validated
    assert states == ["COMPLETE", "PRUNED", "COMPLETE"]
    assert all("aicc" in t.user_attrs for t in study.trials)
    screen = objective.screen
    assert isinstance(screen, ICScreen) and set(screen.best) == {("none", *plan.orders_for("none")),
                                                                  ("log", *plan.orders_for("log"))}
    spec, chosen = _refit_best(y, StudyResult(study, [study.best_trial], 2, 1, 0), plan, screen)
    assert chosen is screen.fits[spec]  # the full-data fit is reused, not refitted
    best_cv = min((t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    assert spec.transform == best_cv.params["transform"]


def test_refit_prefers_the_best_cv_score_among_specs_within_the_aicc_margin():
    import optuna

    from pipelines.sarima.tuning import ICScreen, _refit_best, aicc, plan_series
    from pipelines.study import StudyResult

    y = seasonal_series(72, seed=5)
    plan = plan_series(y, 12, 12)
    d, D = plan.orders_for("none")
    rich, poor = (SarimaSpec((1, d, 0), (0, D, 1, 12), "c", "none"), SarimaSpec((0, d, 0), (0, D, 0, 12), "n", "none"))
    screen = ICScreen(y, 2.0)
    for spec in (rich, poor):
        screen.check(spec)
    assert aicc(screen.fits[poor]) > aicc(screen.fits[rich]) + 2  # poor is implausible by AICc
    study = optuna.create_study()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    values = {0: 0.5, 1: 0.1}  # ... but has the better (made-up) CV score
    for p, q, seasonal, trend in ((1, 0, "0,1", "c"), (0, 0, "0,0", "n")):
        study.enqueue_trial({"p": p, "q": q, "seasonal": seasonal, "trend": trend, "transform": "none"})
    study.optimize(lambda t: (t.suggest_int("p", 0, 3), t.suggest_int("q", 0, 3),
                              t.suggest_categorical("seasonal", list(plan.seasonal_forms)),
                              t.suggest_categorical("trend", list(plan.trends)),
                              t.suggest_categorical("transform", ["none"])) and values[t.number], n_trials=2)
    result = StudyResult(study, [study.best_trial], 2, 0, 0)
    assert _refit_best(y, result, plan, screen)[0] == rich
    assert _refit_best(y, result, plan, ICScreen(y, None))[0] == poor  # without the screen: best CV score
