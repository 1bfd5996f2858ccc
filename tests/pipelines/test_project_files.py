"""The project's declared files agree with each other: dependencies, MLproject entry points and CLI."""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

from pipelines.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[2]


def test_conda_env_mirrors_pyproject_dependencies():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    conda = yaml.safe_load((ROOT / "conda.yaml").read_text())
    pip_section = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert sorted(pip_section) == sorted(declared)


def entry_points() -> dict:
    from mlflow.projects._project_spec import load_project

    return load_project(str(ROOT))._entry_points


@pytest.mark.parametrize("name", sorted(yaml.safe_load((ROOT / "MLproject").read_text())["entry_points"]))
def test_each_entry_point_command_parses_as_its_cli_subcommand(name, tmp_path):
    entry = entry_points()[name]
    required = {p: "x" for p, spec in entry.parameters.items() if spec.default is None}
    command = entry.compute_command(required, str(tmp_path))
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "pipelines.cli"]
    assert argv[3] == name.replace("_", "-")
    assert argv[3] in COMMANDS
    args = build_parser().parse_args(argv[3:])
    assert args.command == argv[3]
    # every MLproject parameter reaches the command as the option of the same name
    for param in entry.parameters:
        assert f"--{param.replace('_', '-')}" in argv
