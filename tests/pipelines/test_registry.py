from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from pipelines import registry
from pipelines.errors import StorefrontError
from pipelines.mlflow_logging import TrainResult, family_run, log_pyfunc_model

ECHO = Path(__file__).parent / "fixtures" / "echo_model.py"


@pytest.fixture
def name(mlflow_env, request) -> str:
    """A registered-model name of the test's own in the session's tracking store."""
    return f"registry-test-{request.node.name}"


_ECHO_URIS: dict[str, str] = {}


def echo_model_uri() -> str:
    """One logged echo model per tracking store (logging a model takes seconds; versions can share it)."""
    store = mlflow.get_tracking_uri()
    if store not in _ECHO_URIS:
        with family_run("churn", "echo-model"):
            _ECHO_URIS[store] = log_pyfunc_model(
                ECHO, name="echo", artifacts={}, input_example=pd.DataFrame({"customer_id": ["C1"]})).model_uri
    return _ECHO_URIS[store]


def train(test_value: float, baseline: float = 0.6, family: str = "churn", registered_model=None) -> TrainResult:
    model_uri = echo_model_uri()
    with family_run(family, "registry-test") as run:
        mlflow.log_metric("test_auc", test_value)
    return TrainResult(family=family, run_id=run.info.run_id, model_uri=model_uri, primary_metric="auc",
                       test_value=test_value, baseline_value=baseline, higher_is_better=True,
                       data_digest="abc123", registered_model=registered_model)


def scores_by_version(scores: dict[str, float]):
    """A rescorer factory: the 'fresh score on the challenger's test data' of each version."""
    return lambda challenger: (lambda uri: scores[uri.rsplit("/", 1)[1]])


def test_gate_refuses_a_model_that_does_not_beat_its_baseline(name):
    result = train(test_value=0.55, baseline=0.6, registered_model=name)
    assert registry.register_if_better(result) is None
    run = mlflow.get_run(result.run_id)
    assert run.data.tags["gate_verdict"] == "failed"
    assert "does not beat baseline 0.6000" in run.data.tags["gate_reason"]
    with pytest.raises(mlflow.exceptions.MlflowException):
        mlflow.MlflowClient().get_registered_model(name)


def test_registered_version_is_challenger_with_tags_and_description(name):
    result = train(test_value=0.8, registered_model=name)
    version = registry.register_if_better(result)
    assert version.aliases == ["challenger"]
    assert version.tags["primary_metric"] == "auc"
    assert version.tags["test_auc"] == "0.8"
    assert version.tags["baseline_test_auc"] == "0.6"
    assert version.tags["data_digest"] == "abc123"
    assert version.tags["parent_run_id"] == result.run_id
    assert version.tags["gate_verdict"] == "passed"
    assert version.tags["git_commit"]
    assert "Optuna study" in version.description
    run = mlflow.get_run(result.run_id)
    assert run.data.tags[f"registered_model.{name}"] == "1"
    assert f"**Gate ({name})**: passed" in run.data.tags["mlflow.note.content"]
    # registered through mlflow.register_model: the logged model lists its version (the UI shows it)
    logged = mlflow.get_logged_model(result.model_uri.removeprefix("models:/"))
    assert {"name": name, "version": 1} in json.loads(logged.tags["mlflow.modelVersions"])


def test_family_name_is_used_unless_a_bring_your_own_name_is_given(fresh_mlflow_env):
    assert registry.register_if_better(train(0.8)).name == "storefront-churn"
    version = registry.register_if_better(train(0.8, registered_model="telco-churn"))
    assert version.name == "telco-churn"
    assert registry.alias_number("storefront-churn", "challenger") == "1"


def test_promotion_rescore_margin_history_and_rollback(name):
    registry.register_if_better(train(0.80, registered_model=name))
    first = registry.promote(name, rescorer_for=scores_by_version({}))
    assert first.promoted and first.champion_version == "1" and first.reason == "promoted: no champion yet"

    registry.register_if_better(train(0.90, registered_model=name))
    # Re-scored on the challenger's test data, v2 beats v1 by 0.02: not enough for a margin of 0.05 ...
    kept = registry.promote(name, margin=0.05, rescorer_for=scores_by_version({"1": 0.70, "2": 0.72}))
    assert not kept.promoted and registry.alias_number(name, "champion") == "1"
    assert "rejected" in mlflow.MlflowClient().get_model_version(name, "2").tags["promotion_verdict"]
    # ... but enough without one.
    moved = registry.promote(name, margin=0.0, rescorer_for=scores_by_version({"1": 0.70, "2": 0.72}))
    assert moved.promoted and moved.previous_champion == "1"
    champion = registry.alias_version(name, "champion")
    assert str(champion.version) == "2" and champion.tags["previous_champion"] == "1"

    back = registry.rollback(name)
    assert back.champion_version == "1"
    assert registry.alias_number(name, "champion") == "1"
    events = registry.history(name)
    assert len(events) == 4 and "kept v1: challenger v2 rejected" in events[1]
    assert "rolled back champion from v2 to v1" in events[-1]
    assert len(mlflow.MlflowClient().search_model_versions(f"name='{name}'")) == 2  # nothing deleted


def test_the_old_champion_is_rescored_not_its_old_metric(name):
    registry.register_if_better(train(0.95, registered_model=name))  # v1 scored high on its own (older) test data
    registry.promote(name, rescorer_for=scores_by_version({}))
    registry.register_if_better(train(0.80, registered_model=name))  # v2 scored lower on newer data ...
    outcome = registry.promote(name, rescorer_for=scores_by_version({"1": 0.75, "2": 0.80}))
    assert outcome.promoted  # ... but beats v1 re-scored on the same (new) test data


def test_champion_that_cannot_be_scored_blocks_promotion(name):
    registry.register_if_better(train(0.8, registered_model=name))
    registry.promote(name, rescorer_for=scores_by_version({}))
    registry.register_if_better(train(0.9, registered_model=name))

    def rescorer_for(challenger):
        def rescore(uri):
            if uri.endswith("/1"):
                raise StorefrontError("champion expects columns tenure, plan not in the test data")
            return 0.9
        return rescore

    with pytest.raises(registry.PromotionBlocked, match="cannot be scored .* tenure, plan"):
        registry.promote(name, rescorer_for=rescorer_for)
    assert registry.alias_number(name, "champion") == "1"


def test_promote_without_challenger_and_rollback_without_history_fail_clearly(name):
    with pytest.raises(registry.PromotionBlocked, match="no version with alias 'challenger'"):
        registry.promote(name)
    registry.register_if_better(train(0.8, registered_model=name))
    registry.promote(name, rescorer_for=scores_by_version({}))
    with pytest.raises(registry.PromotionBlocked, match="no previous champion"):
        registry.rollback(name)


def test_forcing_the_champion_again_changes_nothing_and_rollback_never_targets_it(name):
    registry.register_if_better(train(0.8, registered_model=name))
    registry.promote(name, rescorer_for=scores_by_version({}))
    registry.register_if_better(train(0.9, registered_model=name))
    assert registry.force_promote(name).promoted  # v2 champion, previous v1
    again = registry.force_promote(name, "2")
    assert not again.promoted and "already the champion" in again.reason
    assert registry.alias_version(name, "champion").tags["previous_champion"] == "1"
    back = registry.rollback(name)
    assert back.champion_version == "1" and back.reason == "rolled back from v2"
    with pytest.raises(registry.PromotionBlocked, match="no previous champion"):
        registry.rollback(name)  # v1 has no previous champion: never "from v1 to v1"
    assert registry.alias_number(name, "champion") == "1"
    events = [e.split(" ", 1)[1] for e in registry.history(name)]
    assert [e.split(":")[0] for e in events] == [
        "v1 champion (was none)", "v2 champion (was v1)", "kept v2", "rolled back champion from v2 to v1",
        "blocked"]


def test_every_decision_adds_one_history_entry(name):
    registry.register_if_better(train(0.8, registered_model=name))
    with pytest.raises(StorefrontError):  # no champion to roll back: blocked, recorded
        registry.rollback(name)
    registry.promote(name, rescorer_for=scores_by_version({}))  # promoted
    registry.promote(name, rescorer_for=scores_by_version({}))  # kept: already the champion
    registry.register_if_better(train(0.9, registered_model=name))
    registry.promote(name, rescorer_for=scores_by_version({"1": 0.8, "2": 0.7}))  # kept: rejected
    kinds = [e.split(" ", 2)[1] for e in registry.history(name)]
    assert kinds == ["blocked:", "v1", "kept", "kept"]


PROMOTER = textwrap.dedent("""
    import json, sys, time
    from pipelines import registry

    scores = {"1": 0.70, "2": 0.75}

    def slow(challenger):
        def rescore(uri):
            time.sleep(1.0)
            return scores[uri.rsplit("/", 1)[1]]
        return rescore

    outcome = registry.promote(sys.argv[1], rescorer_for=slow)
    print(json.dumps({"promoted": outcome.promoted, "champion": outcome.champion_version}))
""")


@pytest.mark.e2e  # starts storefront processes (each imports MLflow: seconds)
def test_two_promotion_processes_at_once_leave_the_winner_as_champion(name, mlflow_env, child_env):
    """Two real processes promote the same model at the same moment; the file lock serialises them."""
    registry.register_if_better(train(0.8, registered_model=name))
    registry.promote(name, rescorer_for=scores_by_version({}))
    registry.register_if_better(train(0.9, registered_model=name))
    env = child_env(MLFLOW_TRACKING_URI=mlflow.get_tracking_uri(), STOREFRONT_HOME=str(mlflow_env))
    procs = [subprocess.Popen([sys.executable, "-c", PROMOTER, name], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-2000:]
        outcomes.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(o["promoted"] for o in outcomes) == [False, True]
    assert registry.alias_number(name, "champion") == "2"
    assert registry.alias_version(name, "champion").tags["previous_champion"] == "1"
    events = registry.history(name)
    assert len(events) == 3 and "v2 champion (was v1)" in events[1] and "kept v2" in events[2]
