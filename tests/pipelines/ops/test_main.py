"""The main job's closing summary: where to look at the results, for a local store and for a tracking server."""

from __future__ import annotations

from pipelines.cli import build_parser
from pipelines.ops import main

ROW = ("recommender", "storefront-recommender", "precision_at_10", 0.05, 0.03, "1", "promoted: no champion yet")


def test_summary_against_a_local_store_prints_the_mlflow_ui_command(fresh_mlflow_env, capsys):
    main._print_summary([ROW], {}, 90)
    out = capsys.readouterr().out
    uri = f"sqlite:///{fresh_mlflow_env / 'mlflow.db'}"
    assert f"mlflow ui --backend-store-uri {uri} --port 5000" in out
    assert "http://127.0.0.1:5000/#/models?workflowType=machine_learning" in out
    assert f"MLFLOW_TRACKING_URI={uri} mlflow models serve -m models:/storefront-recommender@champion" in out


def test_summary_against_a_tracking_server_points_at_the_servers_own_ui(fresh_mlflow_env, monkeypatch, capsys):
    server = "http://tracking.example.com:5000/"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    main._print_summary([ROW], {}, 90)
    out = capsys.readouterr().out
    assert "mlflow ui --backend-store-uri" not in out  # `mlflow ui` cannot open an http:// store
    assert f"open the tracking server's UI at {server}" in out
    assert "http://tracking.example.com:5000/#/models?workflowType=machine_learning" in out
    assert f"MLFLOW_TRACKING_URI={server} mlflow models serve -m models:/storefront-churn@champion" in out


def test_main_passes_storage_to_every_study():
    args = build_parser("main").parse_args(["main", "--quick", "--storage", "postgresql+psycopg://u@h/optuna"])
    assert args.storage == "postgresql+psycopg://u@h/optuna"
    assert build_parser("main").parse_args(["main"]).storage is None
