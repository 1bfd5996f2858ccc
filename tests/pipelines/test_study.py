from __future__ import annotations

import json

import mlflow
import optuna
import pytest

from pipelines.mlflow_logging import family_run
from pipelines.errors import StudyFailedError
from pipelines.options import StudyOptions
from pipelines.study import run_study


def quadratic(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -4, 4)
    return (x - 1.0) ** 2


def child_runs(parent_id: str):
    parent = mlflow.get_run(parent_id)
    return mlflow.search_runs(
        experiment_ids=[parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
        output_format="list",
    )


def test_each_trial_is_a_nested_run_and_parent_holds_the_best(mlflow_env):
    with family_run("churn", "study-test") as run:
        result = run_study(quadratic, options=StudyOptions(study_name="t1", n_trials=8, seed=3), metrics="rmse",
                           directions="minimize", baseline={"rmse": 5.0})
    parent = mlflow.get_run(run.info.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["baseline_test_rmse"] == 5.0
    assert parent.data.metrics["val_rmse"] == pytest.approx(result.best_value)
    assert parent.data.tags["best_trial"] == str(result.best_trials[0].number)
    assert parent.data.tags["role"] == "study" and parent.data.tags["study"] == "t1"
    # the chosen params under the trials' own keys, rounded for display (exact values in study/trials.csv)
    assert float(parent.data.params["x"]) == pytest.approx(result.best_params["x"], rel=1e-3)
    assert "best_x" not in parent.data.params and "timeout" not in parent.data.params  # no empty params
    children = child_runs(run.info.run_id)
    assert len(children) == 8
    assert {c.data.tags["trial_state"] for c in children} == {"COMPLETE"}
    assert {c.data.tags["role"] for c in children} == {"trial"}
    assert sorted(c.info.run_name for c in children) == [f"trial {i:03d}" for i in range(8)]
    assert all("duration_s" not in c.data.metrics for c in children)  # the Duration column says it
    best_child = [c for c in children if c.data.tags["trial_number"] == parent.data.tags["best_trial"]][0]
    assert best_child.data.metrics["val_rmse"] == pytest.approx(result.best_value)
    # the optimisation history: one step per trial, the best so far never worse than the trial's value
    client = mlflow.MlflowClient()
    values = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "study/val_rmse")}
    best = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "study/best_val_rmse")}
    assert sorted(values) == sorted(best) == list(range(8))
    assert all(best[s] == min(values[i] for i in range(s + 1)) for s in range(8))
    view = json.loads(mlflow.get_experiment(parent.info.experiment_id).tags["mlflow.sharedViewState.trials"])
    assert view["orderByKey"] == "metrics.`val_rmse`" and view["orderByAsc"] is True
    assert run.info.run_id in view["searchFilter"] and "tags.role = 'trial'" in view["searchFilter"]
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "study")}
    assert {"study/trials.csv", "study/optimization_history.png", "study/param_importances.png"} <= artifacts


def test_a_failing_and_a_pruned_trial_do_not_stop_the_study(mlflow_env):
    def flaky(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -4, 4)
        if trial.number == 1:
            raise RuntimeError("boom in trial 1")
        if trial.number == 2:
            raise optuna.TrialPruned()
        if trial.number == 3:
            return float("nan")
        return x * x

    with family_run("churn", "flaky") as run:
        result = run_study(flaky, options=StudyOptions(study_name="t2", n_trials=6, seed=0), metrics="auc",
                           directions="maximize")
    assert (result.n_complete, result.n_pruned, result.n_failed) == (3, 1, 2)
    by_number = {c.data.tags["trial_number"]: c for c in child_runs(run.info.run_id)}
    assert by_number["1"].info.status == "FAILED"
    assert by_number["1"].data.tags["trial_state"] == "FAIL"
    assert "RuntimeError: boom in trial 1" in by_number["1"].data.tags["error"]
    assert by_number["2"].data.tags["trial_state"] == "PRUNED"
    assert by_number["2"].info.status == "FINISHED"  # an outcome, not a failure (no red cross in the UI)
    assert by_number["3"].data.tags["trial_state"] == "FAIL"
    assert "val_auc" not in by_number["1"].data.metrics
    assert by_number["0"].data.tags["trial_state"] == "COMPLETE"


def test_study_with_no_completed_trial_fails_the_parent_run(mlflow_env):
    def broken(trial):
        trial.suggest_int("n", 1, 3)
        raise ValueError("bad data")

    with pytest.raises(StudyFailedError, match="none of 3 trials completed"):
        with family_run("churn", "broken") as run:
            run_study(broken, options=StudyOptions(study_name="t3", n_trials=3), metrics="auc", directions="maximize")
    assert mlflow.get_run(run.info.run_id).info.status == "FAILED"


def test_an_interrupt_during_a_trial_kills_the_trial_and_the_parent_run(mlflow_env):
    def interrupted(trial):
        trial.suggest_float("x", 0, 1)
        if trial.number == 1:
            raise KeyboardInterrupt("signal 15")
        return 0.5

    with pytest.raises(KeyboardInterrupt):
        with family_run("churn", "interrupted") as run:
            run_study(interrupted, options=StudyOptions(study_name="t-int", n_trials=5), metrics="auc",
                      directions="maximize")
    assert mlflow.get_run(run.info.run_id).info.status == "KILLED"
    by_number = {c.data.tags["trial_number"]: c for c in child_runs(run.info.run_id)}
    assert set(by_number) == {"0", "1"}
    assert by_number["1"].info.status == "KILLED"
    assert by_number["1"].data.tags["trial_state"] == "INTERRUPTED"
    assert mlflow.active_run() is None


def test_sqlite_storage_resumes_the_study_and_n_trials_is_its_total(mlflow_env, tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    ran = []
    for total in (3, 5, 5):
        with family_run("churn", "resumable") as run:
            result = run_study(quadratic, options=StudyOptions(study_name="resume-me", n_trials=total,
                                                               storage=storage),
                               metrics="rmse", directions="minimize")
        ran.append(len(child_runs(run.info.run_id)))
    assert ran == [3, 2, 0]  # 3, then 2 more to reach 5, then none: the study already has 5
    reloaded = optuna.load_study(study_name="resume-me", storage=storage)
    assert len(reloaded.trials) == 5
    assert reloaded.best_value == pytest.approx(result.best_value)


def test_pruned_trials_can_leave_no_run(mlflow_env):
    def half_pruned(trial):
        x = trial.suggest_float("x", -1, 1)
        if trial.number % 2:
            raise optuna.TrialPruned()
        return x * x

    with family_run("sarima", "screened") as run:
        result = run_study(half_pruned, options=StudyOptions(study_name="t-screen", n_trials=6), metrics="mape",
                           directions="minimize", trial_runs="complete")
    assert result.n_pruned == 3
    assert sorted(c.data.tags["trial_number"] for c in child_runs(run.info.run_id)) == ["0", "2", "4"]


def test_two_objectives_log_the_pareto_front(mlflow_env):
    def two(trial):
        x = trial.suggest_float("x", 0, 1)
        return x, 1 - x

    with family_run("svdpp", "multi") as run:
        result = run_study(two, options=StudyOptions(study_name="t4", n_trials=5), metrics=["rmse", "precision_at_10"],
                           directions=["minimize", "minimize"])
    assert len(result.best_trials) == 5  # every point is on this front
    paths = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "study")}
    assert {"study/pareto_front.csv", "study/pareto_front.png"} <= paths


def test_run_study_rejects_unbounded_studies(mlflow_env):
    with family_run("churn", "bad"):
        with pytest.raises(Exception, match="n_trials or timeout"):
            run_study(quadratic, options=StudyOptions(study_name="t5", n_trials=None), metrics="rmse", directions="minimize")


def test_a_one_trial_study_logs_its_history_and_leaves_the_plot_style_alone(mlflow_env):
    import matplotlib

    before = dict(matplotlib.rcParams)
    with family_run("churn", "one-trial") as run:
        result = run_study(quadratic, options=StudyOptions(study_name="t-one", n_trials=1, seed=1), metrics="rmse",
                           directions="minimize")
    assert result.n_complete == 1
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "study")}
    assert "study/optimization_history.png" in artifacts and "study/param_importances.png" not in artifacts
    assert dict(matplotlib.rcParams) == before


def test_a_study_says_why_it_stopped_and_when_its_tuning_was_thin(mlflow_env):
    import time

    from pipelines.study import thin_studies

    with family_run("churn", "enough") as run:
        enough = run_study(quadratic, options=StudyOptions(study_name="enough", n_trials=10, seed=0), metrics="rmse",
                           directions="minimize")
    assert (enough.stop_reason, enough.thin) == ("n_trials", None)
    assert mlflow.get_run(run.info.run_id).data.tags["tuning_stop_reason"] == "n_trials"
    assert thin_studies(run.info.run_id) == []

    with family_run("churn", "few trials") as run:
        few = run_study(quadratic, options=StudyOptions(study_name="few", n_trials=3, seed=0), metrics="rmse",
                        directions="minimize")
    assert few.thin == "only 3 trials completed (--n-trials 3 is below the minimum of 10)"
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert tags["thin_tuning"] == few.thin and tags["thin_tuning_fix"] == "--n-trials 10"
    assert thin_studies(run.info.run_id) == [("few trials", few.thin, "--n-trials 10")]

    def slow(trial):
        time.sleep(0.6)
        return quadratic(trial)

    with family_run("churn", "slow trials") as run:
        timed_out = run_study(slow, options=StudyOptions(study_name="slow", n_trials=50, timeout=1.0, seed=0),
                              metrics="rmse", directions="minimize")
    assert timed_out.stop_reason == "timeout" and 1 <= timed_out.n_complete <= 2
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert tags["tuning_stop_reason"] == "timeout"
    assert tags["thin_tuning"].startswith(f"only {timed_out.n_complete} trials completed in the 1 s timeout (about ")
    assert tags["thin_tuning"].endswith("s per trial; the minimum is 10)")
    seconds = int(tags["thin_tuning_fix"].removeprefix("--timeout "))
    assert seconds % 10 == 0 and seconds >= 1.2 * 10 * 0.6  # the floor's trials at the mean trial's time, plus a fifth

    def stops_itself(trial):
        if trial.number == 3:
            trial.study.stop()
        return quadratic(trial)

    with family_run("churn", "search finished") as run:
        finished = run_study(stops_itself, options=StudyOptions(study_name="finished", n_trials=50, seed=0),
                             metrics="rmse", directions="minimize")
    assert (finished.stop_reason, finished.thin) == ("search finished", None)  # a search that ended is not thin
