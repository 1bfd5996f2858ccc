"""Shared studies (:mod:`pipelines.workers`) without other processes: the ``--workers`` option's checks, the
trial-count rule (a shared study runs exactly its queued budget, never more, and nothing once closed), the
launcher's bookkeeping in one process, and what ``tune-worker`` says about a study it cannot join. Several real
processes on a real PostgreSQL: ``tests/team/test_shared_study.py``."""

from __future__ import annotations

import mlflow
import optuna
import pytest

from pipelines import cli, workers
from pipelines.errors import ConfigurationError
from pipelines.mlflow_logging import family_run
from pipelines.options import StudyOptions, check_workers, is_rdb_url
from pipelines.study import run_study, study_storage

SHARED_COMMANDS = ["train-itemcf", "train-svdpp", "train-churn", "train-segments", "train-next-category"]


def quadratic(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -4, 4)
    return (x - 1.0) ** 2


def shared_study(url: str, name: str = "shared") -> optuna.Study:
    study = optuna.create_study(study_name=name, storage=study_storage(url, shared=True), load_if_exists=True)
    workers.bind(study)
    return study


# ---- --workers ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", SHARED_COMMANDS)
def test_workers_is_a_study_option_of_every_single_study_command(command):
    args = cli.parse_args([command, "--workers", "3.0", "--storage", "postgresql+psycopg://u:p@db/optuna"])
    options = StudyOptions.from_args(args)
    assert (options.workers, options.storage) == (3, "postgresql+psycopg://u:p@db/optuna")
    assert options.command[:3] == (command, "--workers", "3.0")  # what a joining worker runs
    assert StudyOptions.from_args(cli.parse_args([command, "--workers", ""])).workers is None  # MLproject unset


@pytest.mark.parametrize("argv, message", [
    (["--workers", "0"], "--workers must be an integer of at least 1, got 0"),
    (["--workers", "-2", "--storage", "sqlite:///s.db"], "--workers must be an integer of at least 1, got -2"),
    (["--workers", "2"], "--workers 2 needs a database --storage that every worker opens "
                         "(postgresql+psycopg://..., mysql://..., sqlite:///study.db); none given"),
    (["--workers", "2", "--storage", "journal.log"], "--workers 2 needs a database --storage that every worker "
                                                     "opens (postgresql+psycopg://..., mysql://..., "
                                                     "sqlite:///study.db); got 'journal.log'"),
])
def test_bad_workers_is_one_line_naming_the_parameter_with_exit_code_2(argv, message, capsys):
    assert cli.main(["train-itemcf", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"storefront train-itemcf: error: {message}"
    assert "Traceback" not in "\n".join(err)


def test_fractional_workers_and_sarima_workers_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(["train-itemcf", "--workers", "1.5"])
    assert exc.value.code == 2 and "--workers: expected an integer, got '1.5'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # one study per series: not a study workers share
        cli.parse_args(["train-sarima", "--workers", "2"])
    assert exc.value.code == 2 and "unrecognized arguments: --workers 2" in capsys.readouterr().err


def test_one_worker_needs_no_storage_and_database_urls_are_recognised():
    assert check_workers(None, None) is None and check_workers(1, None) == 1
    assert check_workers(2, "sqlite:///study.db") == 2
    for url in ("postgresql://h/db", "postgresql+psycopg://u:p@h:5432/db", "mysql+pymysql://h/db", "sqlite:///x"):
        assert is_rdb_url(url), url
    for url in (None, "", "study.db", "journal.log", "redis://h", "http://h:5000"):
        assert not is_rdb_url(url), url
    with pytest.raises(ConfigurationError, match="--workers must be an integer of at least 1, got True"):
        check_workers(True, "sqlite:///x")


# ---- the trial-count rule ----------------------------------------------------------------------------------------

def test_a_shared_study_runs_exactly_its_queued_budget_and_a_resume_only_the_difference(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = shared_study(url)
    study.enqueue_trial({"x": 1.0})  # a family's default trial counts towards the budget
    assert workers.queue_budget(study, 5) == 4
    workers.optimize(study, quadratic, timeout=None)  # stops by itself: no trial is created beyond the queue
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE] * 5
    assert study.trials[0].params == {"x": 1.0} and study.trials[0].value == 0.0
    workers.optimize(study, quadratic, timeout=None)  # a worker arriving now runs nothing
    assert len(study.trials) == 5
    assert workers.queue_budget(study, 5) == 0 and workers.queue_budget(study, 8) == 3
    workers.optimize(shared_study(url), quadratic, timeout=None)  # another process's storage: the same queue
    assert len(study.trials) == 8 and all(t.state.is_finished() for t in study.trials)
    with pytest.raises(workers.BudgetSpent, match="study shared: no queued trial left"):
        study._storage.create_new_trial(study._study_id)  # what Study.ask() does when nothing is queued


def test_a_closed_study_gives_out_no_more_trials(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = shared_study(url)
    workers.queue_budget(study, 4)
    study.set_user_attr(workers.ATTR, {"closed": True})
    workers.optimize(study, quadratic, timeout=None)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.WAITING] * 4  # left for a resume
    study.set_user_attr(workers.ATTR, {"closed": False})
    workers.optimize(study, quadratic, timeout=None)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 4


def test_a_failing_trial_still_counts_towards_the_budget(tmp_path):
    study = shared_study(f"sqlite:///{tmp_path / 'optuna.db'}")
    workers.queue_budget(study, 3)

    def second_fails(trial):
        if trial.number == 1:
            raise ValueError("bad fold")
        return quadratic(trial)

    workers.optimize(study, second_fails, timeout=None)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL", "COMPLETE"]


# ---- the launcher, alone ------------------------------------------------------------------------------------------

def test_one_worker_launch_queues_the_budget_and_tells_workers_the_parent_run(mlflow_env, tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    options = StudyOptions(study_name="alone", n_trials=5, seed=1, storage=url, workers=1,
                           command=("train-itemcf", "--storage", "sqlite:///secret", "--workers", "1"))
    with family_run("churn", "shared-alone") as run:
        result = run_study(quadratic, options=options, metrics="rmse", directions="minimize",
                           enqueue=[{"x": 0.5}])
    study = optuna.load_study(study_name="alone", storage=url)
    assert len(study.trials) == 5 and result.n_complete == 5
    assert study.trials[0].params == {"x": 0.5}
    attrs = study.user_attrs[workers.ATTR]
    assert attrs["parent_run_id"] == run.info.run_id and attrs["closed"] is True
    assert attrs["n_trials"] == 5 and attrs["seed"] == 1 and attrs["workers"] == 1
    assert attrs["command"] == ["train-itemcf", "--storage", "sqlite:///secret", "--workers", "1"]
    children = mlflow.search_runs(experiment_ids=[run.info.experiment_id], output_format="list",
                                  filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    assert sorted(int(c.data.tags["trial_number"]) for c in children) == [0, 1, 2, 3, 4]
    assert {c.data.tags["storefront.worker"] for c in children} == {workers_id()}
    parent = mlflow.get_run(run.info.run_id)
    assert parent.data.metrics["n_trials_total"] == 5 and parent.data.metrics["n_trials_complete"] == 5
    assert parent.data.params["workers"] == "1"


def test_one_worker_without_a_storage_is_an_ordinary_study(mlflow_env):
    with family_run("churn", "one-in-memory") as run:
        result = run_study(quadratic, options=StudyOptions(study_name="mem", n_trials=3, workers=1), metrics="rmse",
                           directions="minimize")
    assert len(result.study.trials) == 3 and workers.ATTR not in result.study.user_attrs
    assert mlflow.get_run(run.info.run_id).data.metrics["n_trials_total"] == 3


def workers_id() -> str:
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def test_the_stored_command_line_hides_the_storage_password():
    argv = ["train-itemcf", "--storage", "postgresql+psycopg://bob:pw@db:5432/optuna", "--n-trials", "4",
            "--storage=postgresql://alice:pw2@db/o"]
    assert workers._redact_argv(argv) == ["train-itemcf", "--storage", "postgresql+psycopg://***@db:5432/optuna",
                                          "--n-trials", "4", "--storage=postgresql://***@db/o"]


def test_a_second_launcher_of_a_running_shared_study_is_told_to_join_it(mlflow_env, tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    with family_run("churn", "first launcher") as first:
        study = shared_study(url, "busy")
        study.set_user_attr(workers.ATTR, {"parent_run_id": first.info.run_id, "closed": False})
        launch = workers.Launch(study, StudyOptions(study_name="busy", n_trials=2, storage=url, workers=1),
                                "another-run", 2)
        with pytest.raises(ConfigurationError, match="--study-name busy: this shared study is being run by run "
                                                     f"{first.info.run_id}; join it with `storefront tune-worker"):
            launch.start()


# ---- tune-worker's refusals ---------------------------------------------------------------------------------------

def test_tune_worker_names_a_missing_or_unshared_study(mlflow_env, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    assert cli.main(["tune-worker", "--study-name", "nope", "--storage", url]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"storefront tune-worker: error: --study-name nope: no such study in {url}; start it with `storefront "
        "train-<family> --study-name nope --storage ... --workers N`")
    optuna.create_study(study_name="plain", storage=url)
    assert cli.main(["tune-worker", "--study-name", "plain", "--storage", url]) == 2
    assert "--study-name plain: the study was not started with --workers" in capsys.readouterr().err


def test_tune_worker_refuses_another_family_and_a_finished_parent_run(mlflow_env, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    with family_run("itemcf", "ended") as run:
        pass
    study = shared_study(url, "done")
    study.set_user_attr(workers.ATTR, {"parent_run_id": run.info.run_id, "command": ["train-itemcf"],
                                       "closed": False})
    assert cli.main(["tune-worker", "--study-name", "done", "--storage", url, "--family", "churn"]) == 2
    assert "--family churn: study done tunes itemcf" in capsys.readouterr().err
    assert cli.main(["tune-worker", "--study-name", "done", "--storage", url]) == 2
    assert (f"--study-name done: its parent run {run.info.run_id} is FINISHED: nothing to join"
            in capsys.readouterr().err)
    study.set_user_attr(workers.ATTR, {"parent_run_id": run.info.run_id, "command": ["train-itemcf"],
                                       "closed": True})
    assert cli.main(["tune-worker", "--study-name", "done", "--storage", url]) == 0  # a late worker: nothing to do
    assert "study done is closed (no trial left to run); nothing to do" in capsys.readouterr().out


def test_a_joining_worker_reads_its_own_data_dir_in_place_of_the_launchers(tmp_path):
    argv = ["train-itemcf", "--data-dir", "/launcher/shop", "--n-trials", "4"]
    assert workers._with_data_dir(argv, None) == argv
    assert workers._with_data_dir(argv, tmp_path) == ["train-itemcf", "--n-trials", "4", "--data-dir", str(tmp_path)]
    assert workers._with_data_dir(["train-churn", "--data-dir=/x"], tmp_path) == ["train-churn", "--data-dir",
                                                                                   str(tmp_path)]
