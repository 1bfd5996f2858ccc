"""``storefront generate-data``: files, the MLflow run it logs, and parameter errors."""

from __future__ import annotations

import json
import re

import mlflow
import pytest

from pipelines import cli
from pipelines.data.tables import TABLE_NAMES, dataset_digest, load_tables
from pipelines.families import experiment_name

SMALL = ["--customers", "40", "--products", "12", "--years", "1", "--seed", "5"]


@pytest.fixture(autouse=True)
def only_this_command(monkeypatch):
    """Build the parser from this command only, so these tests do not depend on the other commands' modules."""
    assert cli.COMMANDS["generate-data"] == "pipelines.data.generate"
    monkeypatch.setattr(cli, "COMMANDS", {"generate-data": cli.COMMANDS["generate-data"]})


@pytest.mark.e2e
def test_writes_the_tables_and_logs_a_run(mlflow_env, tmp_path, capsys):
    home, out = mlflow_env, tmp_path / "data"
    assert cli.main(["generate-data", *SMALL, "--output-dir", str(out), "--format", "csv"]) == 0

    assert sorted(p.name for p in out.iterdir()) == sorted(f"{name}.csv" for name in TABLE_NAMES)
    tables = load_tables(out)
    stdout = capsys.readouterr().out
    for name in TABLE_NAMES:
        assert f"{len(tables[name]):,} rows" in stdout
    assert str(out) in stdout

    run_id = re.search(r"logged run (\w+)", stdout).group(1)
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    run = client.get_run(run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == experiment_name("data")
    assert experiment.artifact_location.startswith((home / "mlartifacts").as_uri())
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert (params["customers"], params["products"], params["years"], params["seed"]) == ("40", "12", "1", "5")
    assert params["format"] == "csv" and params["output_dir"] == str(out)
    for name in TABLE_NAMES:
        assert run.data.metrics[f"rows_{name}"] == len(tables[name])
    digest = run.data.tags["data_digest"]
    assert digest in stdout
    assert dataset_digest(tables) == digest  # the CSV round trip keeps the content

    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(inputs) == set(TABLE_NAMES)
    for name, item in inputs.items():
        assert [tag.value for tag in item.tags if tag.key == "mlflow.data.context"] == ["generated"]
        assert json.loads(item.dataset.source)["uri"] == str(out / f"{name}.csv")
        assert json.loads(item.dataset.profile)["num_rows"] == len(tables[name])
        columns = [col["name"] for col in json.loads(item.dataset.schema)["mlflow_colspec"]]
        assert columns == list(tables[name].columns)


def test_default_output_dir_and_no_track(storeless_mlflow_env):
    home = storeless_mlflow_env
    assert cli.main(["generate-data", *SMALL, "--no-track"]) == 0
    assert sorted(p.name for p in (home / "data" / "generated").iterdir()) == sorted(
        f"{name}.parquet" for name in TABLE_NAMES
    )
    assert not (home / "mlflow.db").exists()


@pytest.mark.parametrize(
    ("option", "value"), [("--customers", "5"), ("--products", "9"), ("--years", "0")]
)
def test_bad_parameter_exits_2_and_writes_nothing(storeless_mlflow_env, capsys, option, value):
    home = storeless_mlflow_env
    out = home / "out"
    args = ["generate-data", *SMALL, option, value, "--output-dir", str(out)]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert option.lstrip("-") in err and "error" in err
    assert not out.exists()
    assert not (home / "mlflow.db").exists()
