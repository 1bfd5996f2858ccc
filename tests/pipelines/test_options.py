"""Shared command-line options: integers written as MLproject may pass them, clear usage errors."""

from __future__ import annotations

import argparse

import pytest

from pipelines.cli import build_parser
from pipelines.options import whole_number


def test_whole_number_accepts_integral_floats_and_rejects_the_rest():
    assert whole_number("20") == 20 and whole_number("20.0") == 20 and whole_number("-3") == -3
    for bad in ("2.5", "ten", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="expected an integer"):
            whole_number(bad)


@pytest.mark.parametrize("command", ["train-itemcf", "train-svdpp", "train-segments", "train-next-category"])
def test_study_commands_share_the_study_options(command):
    args = build_parser(command).parse_args([command, "--n-trials", "20.0", "--seed", "7", "--timeout", "30",
                                             "--storage", "sqlite:///s.db"])
    assert (args.n_trials, args.seed, args.timeout, args.storage, args.data_dir) == (20, 7, 30.0, "sqlite:///s.db",
                                                                                      None)


def test_a_fractional_trial_count_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser("train-itemcf").parse_args(["train-itemcf", "--n-trials", "2.5"])
    assert exc.value.code == 2
    assert "--n-trials: expected an integer, got '2.5'" in capsys.readouterr().err
