"""Shared command-line options: integers written as MLproject may pass them, unset MLproject parameters, the
families' default budgets, clear usage errors. Every training command is covered."""

from __future__ import annotations

import argparse

import pytest

from pipelines.cli import parse_args
from pipelines.families import FAMILIES
from pipelines.options import StudyOptions, whole_number

TRAINING_COMMANDS = [f.command for f in FAMILIES.values() if f.command]


def test_every_family_with_an_entry_module_is_a_training_command():
    assert TRAINING_COMMANDS == ["train-itemcf", "train-svdpp", "train-churn", "train-sarima", "train-segments",
                                 "train-next-category"]


def test_whole_number_accepts_integral_floats_and_rejects_the_rest():
    assert whole_number("20") == 20 and whole_number("20.0") == 20 and whole_number("-3") == -3
    for bad in ("2.5", "ten", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="expected an integer"):
            whole_number(bad)


@pytest.mark.parametrize("command", TRAINING_COMMANDS)
def test_study_commands_share_the_study_options(command):
    args = parse_args([command, "--n-trials", "20.0", "--seed", "7.0", "--timeout", "30", "--storage", "sqlite:///s.db"])
    assert (args.n_trials, args.seed, args.timeout, args.storage, args.data_dir) == (20, 7, 30.0, "sqlite:///s.db",
                                                                                      None)
    options = StudyOptions.from_args(args)
    assert (options.n_trials, options.timeout, options.seed, options.storage) == (20, 30.0, 7, "sqlite:///s.db")


@pytest.mark.parametrize("command", TRAINING_COMMANDS)
def test_unset_mlproject_parameters_take_the_family_defaults(command):
    family = next(f for f in FAMILIES.values() if f.command == command)
    args = parse_args([command, "--data-dir", "", "--n-trials", "", "--timeout=", "--storage", "", "--seed", ""])
    assert (args.data_dir, args.n_trials, args.timeout, args.storage, args.seed) == (None, family.n_trials,
                                                                                     family.timeout, None, 42)


@pytest.mark.parametrize("command", TRAINING_COMMANDS)
def test_a_fractional_trial_count_is_a_usage_error(command, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_args([command, "--n-trials", "2.5"])
    assert exc.value.code == 2
    assert "--n-trials: expected an integer, got '2.5'" in capsys.readouterr().err


def test_family_specific_options_parse_as_mlproject_passes_them():
    itemcf = parse_args(["train-itemcf", "--k", "5.0", "--max-neighbours", "250.0", "--test-days", ""])
    assert (itemcf.k, itemcf.max_neighbours, itemcf.test_days) == (5, 250, 60)
    sarima = parse_args(["train-sarima", "--test-periods", "4.0", "--season", "4.0", "--freq", "Q", "--series", "",
                         "--na-values", ""])
    assert (sarima.test_periods, sarima.season, sarima.freq, sarima.series, sarima.na_values) == (4, 4, "Q", None, None)
    churn = parse_args(["train-churn", "--window-days", "30.0", "--table", "", "--cost-ratio", ""])
    assert (churn.window_days, churn.table, churn.cost_ratio) == (30, None, None)
    segments = parse_args(["train-segments", "--min-k", "3.0", "--max-k", "6"])
    assert (segments.min_k, segments.max_k) == (3, 6)
    nxt = parse_args(["train-next-category", "--horizon-days", "14.0", "--snapshots", "2"])
    assert (nxt.horizon_days, nxt.snapshots) == (14, 2)


def test_help_is_short_and_points_at_the_docs(capsys):
    for command in TRAINING_COMMANDS:
        with pytest.raises(SystemExit):
            parse_args([command, "--help"])
        text = capsys.readouterr().out
        family = next(f for f in FAMILIES.values() if f.command == command)
        description = text.split("\n\n")[1]
        assert family.docs in description and len(description.splitlines()) <= 3, description
        assert "--n-trials" in text
