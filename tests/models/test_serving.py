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
