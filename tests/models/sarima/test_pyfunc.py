"""The served SARIMA pyfunc: round trip through save/load, the response shape, and the 400 errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.sarima.model import SarimaSpec, export_sarima, export_seasonal_naive, fit_sarima, forecast_sarima

pytestmark = pytest.mark.e2e  # fits SARIMA models and saves a pyfunc

MODELS_DIR = Path(__file__).resolve().parents[3] / "models"


def _series(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 200 + 2 * t + 30 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 4, n)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    import mlflow

    from models.sarima.contract import CONTRACT

    y = _series(48, 1)
    spec = SarimaSpec((1, 0, 0), (0, 1, 0, 12), "c", "none")
    fit = fit_sarima(y, spec)
    books = export_sarima("Books", y, spec, fit, freq="M", last_period="2025-12-01")
    flat = export_seasonal_naive("Flat", np.full(20, 5.0), freq="M", season=12, last_period="2025-12-01",
                                 reason="constant series")
    garden_spec = SarimaSpec((0, 1, 1), (0, 1, 1, 12), "n", "log")
    garden = export_sarima("Garden", _series(60, 2), garden_spec, fit_sarima(_series(60, 2), garden_spec), freq="M",
                           last_period="2025-12-01")
    folder = tmp_path_factory.mktemp("sarima-pyfunc")
    artifact = folder / "series.json"
    artifact.write_text(json.dumps({"freq": "M", "series": [books.to_dict(), flat.to_dict(), garden.to_dict()]}))
    mlflow.pyfunc.save_model(folder / "model", python_model=str(MODELS_DIR / "sarima" / "pyfunc.py"),
                             artifacts={"series": str(artifact)}, code_paths=[str(MODELS_DIR)],
                             signature=CONTRACT.signature(),
                             input_example=pd.DataFrame({"category": ["Books"], "horizon": [3]}))
    model = mlflow.pyfunc.load_model(str(folder / "model"))
    return model, y, spec, fit


def test_loaded_model_serves_the_training_forecasts(saved):
    model, y, spec, fit = saved
    out = model.predict(pd.DataFrame({"category": ["Books", "Flat"], "horizon": [3, 2]}))
    assert list(out.columns) == ["category", "period", "step", "forecast", "lower", "upper"]
    assert list(out["category"]) == ["Books"] * 3 + ["Flat"] * 2
    assert list(out["period"]) == ["2026-01-01", "2026-02-01", "2026-03-01", "2026-01-01", "2026-02-01"]
    assert list(out["step"]) == [1, 2, 3, 1, 2]
    expected = forecast_sarima(y, spec, fit.params, 3)
    books = out[out["category"] == "Books"]
    np.testing.assert_allclose(books["forecast"], expected.mean, rtol=1e-8)
    np.testing.assert_allclose(books["lower"], expected.lower, rtol=1e-8)
    np.testing.assert_allclose(books["upper"], expected.upper, rtol=1e-8)
    flat = out[out["category"] == "Flat"]
    assert list(flat["forecast"]) == [5.0, 5.0] and list(flat["lower"]) == [5.0, 5.0]


@pytest.mark.parametrize("confidence", [0.5, 0.8, 0.95, 0.99])
def test_served_forecasts_equal_statsmodels_for_any_confidence(saved, confidence):
    """The request path only slices moments precomputed at load: the numbers must be statsmodels' own."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    model, y, spec, fit = saved
    garden_y = _series(60, 2)
    garden_spec = SarimaSpec((0, 1, 1), (0, 1, 1, 12), "n", "log")
    garden_fit = fit_sarima(garden_y, garden_spec)
    out = model.predict(pd.DataFrame({"category": ["Books", "Garden"], "horizon": [36, 12]}),
                        params={"confidence": confidence})
    for name, values, series_spec, params, steps, back in (
            ("Books", y, spec, fit.params, 36, lambda v: v),
            ("Garden", np.log(garden_y), garden_spec, garden_fit.params, 12, np.exp)):
        results = SARIMAX(values, order=series_spec.order, seasonal_order=series_spec.seasonal_order,
                          trend=series_spec.trend).filter(params)
        prediction = results.get_forecast(steps)
        bounds = np.asarray(prediction.conf_int(alpha=1 - confidence))
        rows = out[out["category"] == name]
        assert list(rows["step"]) == list(range(1, steps + 1))
        np.testing.assert_allclose(rows["forecast"], back(np.asarray(prediction.predicted_mean)), rtol=1e-9)
        np.testing.assert_allclose(rows["lower"], back(bounds[:, 0]), rtol=1e-9)
        np.testing.assert_allclose(rows["upper"], back(bounds[:, 1]), rtol=1e-9)


def test_forecast_from_history_refilters_the_given_history(saved):
    model, y, spec, fit = saved
    python_model = model.unwrap_python_model()
    np.testing.assert_allclose(python_model.forecast_from_history("Books", y[:40], 8),
                               forecast_sarima(y[:40], spec, fit.params, 8).mean, rtol=1e-10)
    with pytest.raises(KeyError):
        python_model.forecast_from_history("Toys", y, 3)


def test_python_callers_may_send_numeric_or_missing_categories(saved):
    from mlflow.exceptions import MlflowException

    python_model = saved[0].unwrap_python_model()  # no signature enforcement on this path
    with pytest.raises(MlflowException, match="unknown category '7'"):
        python_model.predict(None, pd.DataFrame({"category": [7], "horizon": [1]}))
    with pytest.raises(MlflowException, match="missing value in row 1"):
        python_model.predict(None, pd.DataFrame({"category": ["Books", None], "horizon": [1, 1]}))


def test_confidence_param_narrows_the_interval(saved):
    model = saved[0]
    request = pd.DataFrame({"category": ["Books"], "horizon": [1]})
    wide = model.predict(request, params={"confidence": 0.95}).iloc[0]
    narrow = model.predict(request, params={"confidence": 0.5}).iloc[0]
    assert narrow["forecast"] == pytest.approx(wide["forecast"])
    assert (narrow["upper"] - narrow["lower"]) / (wide["upper"] - wide["lower"]) == pytest.approx(
        0.674490 / 1.959964, rel=1e-5)


def _bad(model, frame, params=None):
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, ErrorCode

    with pytest.raises(MlflowException) as info:
        model.predict(frame, params=params)
    assert info.value.error_code == ErrorCode.Name(INVALID_PARAMETER_VALUE)
    return info.value.message


def test_unknown_category_lists_the_known_ones(saved):
    message = _bad(saved[0], pd.DataFrame({"category": ["Toys"], "horizon": [1]}))
    assert "unknown category 'Toys'" in message and "known categories: Books, Flat, Garden" in message


@pytest.mark.parametrize("horizon", [0, 37])
def test_horizon_out_of_range(saved, horizon):
    message = _bad(saved[0], pd.DataFrame({"category": ["Books"], "horizon": [horizon]}))
    assert f"'horizon' in row 0 must be an integer from 1 to 36, got {horizon}" in message


def test_horizon_of_the_wrong_type(saved):
    message = _bad(saved[0], pd.DataFrame({"category": ["Books"], "horizon": ["x"]}))
    assert "horizon" in message


@pytest.mark.parametrize("confidence", [1.5, 0.0])
def test_bad_confidence(saved, confidence):
    message = _bad(saved[0], pd.DataFrame({"category": ["Books"], "horizon": [1]}), {"confidence": confidence})
    assert "confidence" in message


def test_missing_column(saved):
    message = _bad(saved[0], pd.DataFrame({"category": ["Books"]}))
    assert "horizon" in message
