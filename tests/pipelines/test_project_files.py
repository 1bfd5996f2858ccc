"""The project's declared files agree with each other: dependencies, MLproject entry points and CLI."""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

from pipelines.cli import COMMANDS, build_parser, drop_empty_options

ROOT = Path(__file__).resolve().parents[2]


def test_conda_env_mirrors_pyproject_dependencies():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    conda = yaml.safe_load((ROOT / "conda.yaml").read_text())
    pip_section = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert sorted(pip_section) == sorted(declared)


@pytest.mark.parametrize("extra", ["bench", "spark"])
def test_conda_env_names_the_extra(extra):
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    line = next(ln for ln in (ROOT / "conda.yaml").read_text().splitlines() if ln.startswith(f"# {extra}: "))
    assert sorted(v.strip() for v in line.removeprefix(f"# {extra}: ").split(",")) == sorted(extras[extra])


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
    args = build_parser().parse_args(drop_empty_options(argv[3:]))
    assert args.command == argv[3]
    # every MLproject parameter reaches the command as the option of the same name
    for param in entry.parameters:
        assert f"--{param.replace('_', '-')}" in argv


def test_unset_mlproject_parameters_are_dropped_so_defaults_apply():
    argv = ["train-sarima", "--test-periods", "", "--freq", "M", "--series=", "--seed", "7"]
    assert drop_empty_options(argv) == ["train-sarima", "--freq", "M", "--seed", "7"]
    args = build_parser("train-sarima").parse_args(drop_empty_options(argv))
    assert args.test_periods is None and args.series is None and args.seed == 7


@pytest.mark.parametrize("name", sorted(yaml.safe_load((ROOT / "MLproject").read_text())["entry_points"]))
def test_mlproject_defaults_are_the_cli_defaults(name):
    """`mlflow run` and `storefront` must behave the same when a parameter is not given."""
    command = name.replace("_", "-")
    parser = build_parser(command)
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    defaults = {a.dest: a.default for a in sub._actions}
    for param, spec in entry_points()[name].parameters.items():
        if spec.default in (None, ""):
            assert defaults[param] in (None, "") or param in ("quick",), (param, defaults[param])
            continue
        cli_default = defaults[param]
        if spec.type == "float":
            assert float(spec.default) == float(cli_default), (param, spec.default, cli_default)
        elif cli_default is not None:
            assert str(spec.default).lower() == str(cli_default).lower(), (param, spec.default, cli_default)
