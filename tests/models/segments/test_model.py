"""Segment features, K-Means segments named from centroids, the silhouette score and the pyfunc's 400s."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, ErrorCode

from models.segments.model import FEATURES, Segmenter, customer_features, evaluation_silhouette, name_segments

MODELS_DIR = Path(__file__).resolve().parents[3] / "models"

# typical (spending, distinct days, spend per item, recency) of each planted group
PLANTED = {
    "high spenders": (20000.0, 12.0, 400.0, 20.0),
    "frequent shoppers": (3000.0, 80.0, 30.0, 3.0),
    "value seekers": (600.0, 25.0, 6.0, 15.0),
    "occasional buyers": (60.0, 1.5, 40.0, 60.0),
    "lapsed customers": (900.0, 8.0, 50.0, 600.0),
}


def planted(per_group: int = 60, groups=tuple(PLANTED), seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for g, name in enumerate(groups):
        centre = np.log1p(np.array(PLANTED[name]))
        rows.append(np.expm1(centre + rng.normal(0, 0.12, size=(per_group, 4))))
        truth += [name] * per_group
    frame = pd.DataFrame(np.vstack(rows), columns=list(FEATURES))
    return frame, np.array(truth)


@pytest.mark.parametrize("groups", [tuple(PLANTED), ("high spenders", "frequent shoppers", "value seekers",
                                                     "occasional buyers")])
def test_planted_clusters_get_their_names(groups):
    features, truth = planted(groups=groups)
    seg = Segmenter(k=len(groups), seed=1).fit(features)
    names = np.asarray(seg.names_, dtype=object)[seg.predict(features)]
    assert (names == truth).all()
    assert sorted(seg.names_) == sorted(groups)


def test_extra_segments_get_numbered_names_and_ids_follow_spending():
    features, _ = planted()
    seg = Segmenter(k=7, seed=0).fit(features)
    assert len(set(seg.names_)) == 7
    assert set(PLANTED) <= {n.rstrip(" 0123456789") for n in seg.names_}
    assert np.all(np.diff(seg.centroids_[:, 0]) >= 0)  # segment 0 spends least
    assert name_segments(np.zeros((1, 4))) in (["high spenders"], ["frequent shoppers"], ["value seekers"],
                                               ["occasional buyers"], ["lapsed customers"])


def test_silhouette_is_high_on_planted_clusters_and_zero_for_one():
    features, truth = planted()
    assert evaluation_silhouette(features, truth) > 0.7
    assert evaluation_silhouette(features, np.zeros(len(features))) == 0.0
    shuffled = np.random.default_rng(3).permutation(truth)
    assert evaluation_silhouette(features, shuffled) < 0.05
    with pytest.raises(ValueError, match="labels"):
        evaluation_silhouette(features, truth[:-1])


def test_customer_features_by_hand():
    tx = pd.DataFrame({"customer_id": ["A", "A", "A", "B"], "quantity": [1, 3, 1, 2],
                       "amount": [10.0, 30.0, 60.0, 8.0],
                       "purchase_date": pd.to_datetime(["2024-01-01 09:00", "2024-01-01 18:00", "2024-01-05 00:00",
                                                        "2024-01-30 00:00"])})
    f = customer_features(tx, reference_date="2024-01-31").set_index("customer_id")
    assert f.loc["A"].tolist() == pytest.approx([100.0, 2.0, 20.0, 26.0])
    assert f.loc["B"].tolist() == pytest.approx([8.0, 1.0, 4.0, 1.0])
    assert list(customer_features(tx, reference_date="2024-01-03")["customer_id"]) == ["A"]  # B not yet a customer


def test_to_dict_round_trip_predicts_the_same():
    features, _ = planted(seed=5)
    seg = Segmenter(k=4, seed=2).fit(features)
    back = Segmenter.from_dict(seg.to_dict())
    assert (back.predict(features) == seg.predict(features)).all() and back.names_ == seg.names_


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    import mlflow

    features, truth = planted()
    seg = Segmenter(k=5, seed=1).fit(features)
    folder = tmp_path_factory.mktemp("segments-model")
    path = seg.save(folder / "segments.json")
    example = features.head(3)
    from models.segments.contract import CONTRACT

    mlflow.pyfunc.save_model(folder / "model", python_model=str(MODELS_DIR / "segments" / "pyfunc.py"),
                             artifacts={"segments": str(path)}, code_paths=[str(MODELS_DIR)],
                             input_example=example, pip_requirements=["mlflow", "numpy", "pandas"],
                             signature=CONTRACT.signature())  # as training logs it
    return mlflow.pyfunc.load_model(str(folder / "model")), seg, features, truth


def test_pyfunc_round_trip(loaded):
    model, seg, features, truth = loaded
    out = model.predict(features)
    assert list(out.columns) == ["segment_id", "segment_name"]
    assert (out["segment_id"].to_numpy() == seg.predict(features)).all()
    assert (out["segment_name"].to_numpy() == truth).all()


@pytest.mark.parametrize("change, message", [
    (lambda f: f.drop(columns=["recency_days"]), "missing inputs ['recency_days']"),  # schema enforcement
    (lambda f: f.assign(total_spending=-1.0), "column 'total_spending' in row 0 must hold a number >= 0: got -1.0 "
                                              "(below 0)"),
    (lambda f: f.assign(recency_days=True), "column 'recency_days' in row 0 must hold a number >= 0: got True "
                                            "(a boolean, not a number)"),
    (lambda f: f.assign(frequency_days=1e308), "column 'frequency_days' in row 0 must hold a number >= 0: got 1e+308 "
                                               "(beyond the largest magnitude a request may send (1e+15))"),
])
def test_bad_requests_are_400s(loaded, change, message):
    model = loaded[0]
    with pytest.raises(MlflowException) as info:
        model.predict(change(loaded[2].head(2)))
    assert message in info.value.message
    assert info.value.error_code == ErrorCode.Name(INVALID_PARAMETER_VALUE)


def test_python_model_rejects_text_and_missing_values(loaded):
    from models.segments.pyfunc import SegmentsModel

    python_model = SegmentsModel()
    python_model.segmenter = loaded[1]
    frame = loaded[2].head(3).astype(object)
    frame.loc[1, "frequency_days"] = "often"
    with pytest.raises(MlflowException, match="column 'frequency_days' in row 1 .*: got 'often' \\(text") as info:
        python_model.predict(None, frame)
    assert info.value.error_code == ErrorCode.Name(INVALID_PARAMETER_VALUE)
    frame = loaded[2].head(3).copy()
    frame.loc[2, "recency_days"] = np.nan
    with pytest.raises(MlflowException, match="column 'recency_days' .* row 2"):
        python_model.predict(None, frame)


def test_the_row_limit_is_set_when_logged_and_overridden_at_serve_time(tmp_path, monkeypatch):
    import mlflow

    from models.contracts import MAX_ROWS_ENV
    from models.segments.contract import CONTRACT

    features, _ = planted()
    path = Segmenter(k=3, seed=1).fit(features).save(tmp_path / "segments.json")
    mlflow.pyfunc.save_model(tmp_path / "model", python_model=str(MODELS_DIR / "segments" / "pyfunc.py"),
                             artifacts={"segments": str(path)}, code_paths=[str(MODELS_DIR)],
                             pip_requirements=["mlflow", "numpy", "pandas"], signature=CONTRACT.signature(),
                             model_config={"max_rows": 3}, input_example=features.head(2))
    monkeypatch.delenv(MAX_ROWS_ENV, raising=False)
    logged = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    assert len(logged.predict(features.head(3))) == 3
    with pytest.raises(MlflowException, match="4 rows in one request; this model answers at most 3 rows"):
        logged.predict(features.head(4))
    monkeypatch.setenv(MAX_ROWS_ENV, "5")  # read when the model loads, as `mlflow models serve` does
    served = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    assert len(served.predict(features.head(5))) == 5
    with pytest.raises(MlflowException, match="at most 5 rows"):
        served.predict(features.head(6))
