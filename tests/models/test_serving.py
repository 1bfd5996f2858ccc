import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from models.serving import string_column, string_values


@pytest.mark.parametrize("values", [
    ["C1", "C2"],
    [12.0, 3.0, 7.0],
    [1, 2, 30],
    ["C1", 12.0, 4, np.int64(5)],
    [],
])
def test_string_values_equal_string_column(values):
    frame = pd.DataFrame({"customer_id": pd.Series(values, dtype=object)})
    expected = string_column(frame, "customer_id").tolist()
    assert string_values(frame["customer_id"].tolist(), "customer_id") == expected
    assert all(type(v) is str for v in expected)


def test_string_values_turn_whole_floats_into_integers():
    assert string_values([12.0, 12, "12.0", np.float64(7.0)], "customer_id") == ["12", "12", "12.0", "7"]


@pytest.mark.parametrize("value", [12.5, True, False, np.bool_(True), {"a": 1}, [1, 2], float("inf"), b"C1"])
def test_ids_are_strings_or_integers_and_nothing_else(value):
    with pytest.raises(MlflowException, match=r"column 'customer_id' in row 1 must be a string \(or an integer\), "
                                              r"got ") as info:
        string_values(["C1", value], "customer_id")
    assert info.value.get_http_status_code() == 400


@pytest.mark.parametrize("missing", [None, float("nan"), np.float64("nan"), pd.NA, pd.NaT, np.datetime64("NaT")])
def test_string_values_name_the_missing_row(missing):
    with pytest.raises(MlflowException, match=r"column 'category' has a missing value in row 2") as info:
        string_values(["a", "b", missing], "category")
    assert info.value.get_http_status_code() == 400
    frame = pd.DataFrame({"category": pd.Series(["a", "b", missing], dtype=object)})
    with pytest.raises(MlflowException, match="missing value in row 2"):
        string_column(frame, "category")


def test_the_row_limit_comes_from_the_variable_then_the_logged_config_then_the_default(monkeypatch):
    from models.contracts import MAX_ROWS, MAX_ROWS_ENV, row_limit

    monkeypatch.delenv(MAX_ROWS_ENV, raising=False)
    assert row_limit(None) == MAX_ROWS == 1000
    assert row_limit({"max_rows": 50}) == 50
    monkeypatch.setenv(MAX_ROWS_ENV, "7")
    assert row_limit({"max_rows": 50}) == 7
    for bad in ("0", "-3", "lots", "2.5"):
        monkeypatch.setenv(MAX_ROWS_ENV, bad)
        with pytest.raises(ValueError, match=f"STOREFRONT_MAX_ROWS must be a whole number of rows >= 1, got '{bad}'"):
            row_limit({})


def test_too_many_rows_is_a_400_naming_the_limit():
    from models.serving import check_rows

    check_rows(1000, 1000)
    with pytest.raises(MlflowException, match="1001 rows in one request; this model answers at most 1000 rows per "
                                              "request") as info:
        check_rows(1001, 1000)
    assert info.value.get_http_status_code() == 400


@pytest.mark.parametrize("value, problem", [
    (True, "a boolean, not a number"), (np.bool_(False), "a boolean, not a number"), ("3", "text, not a number"),
    (float("inf"), "not a finite number"), (1e308, "beyond the largest magnitude"), ({"a": 1}, "a dict, not a number"),
    (-1.0, "below 0"),
])
def test_numbers_are_finite_numbers_and_never_booleans_or_text(value, problem):
    from models.serving import number_values

    assert number_values([1, 2.5, np.int64(3)], "x", low=0).tolist() == [1.0, 2.5, 3.0]
    with pytest.raises(MlflowException, match=f"column 'x' in row 1 must hold a number >= 0: got .*\\({problem}"):
        number_values([1.0, value], "x", low=0)


def test_a_null_number_is_a_400_unless_the_column_is_imputed():
    from models.serving import number_values

    with pytest.raises(MlflowException, match="column 'x' in row 0 is null; the model was not trained to impute it"):
        number_values([None, 1.0], "x")
    assert np.isnan(number_values([None, 1.0], "x", nullable=True)[0])
