"""Registration gate, champion/challenger promotion and rollback, with registry aliases (never stages).

* :func:`register_if_better` registers a training run's model as a new version only when it beats its
  baseline on the family's primary metric on the same test data; the version gets the alias
  ``challenger``, tags (primary metric, value, baseline, data digest, git commit, parent run, verdict) and a
  description. A model that fails the gate stays logged in its run, unregistered, and the run says why.
* :func:`promote` makes the challenger ``champion`` when there is none, or when it beats the current
  champion *re-scored on the challenger's test data* by more than a margin. The old champion's version is
  kept in the tag ``previous_champion``; every decision is appended to the history tags. A per-project file lock,
  inside which the aliases are read, makes two simultaneous promotions on one machine safe: the alias never
  ends on a loser. (It does not span machines sharing a remote tracking server.)
* :func:`rollback` moves ``champion`` back to the previous champion. Nothing ever deletes a version.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from evaluation.compare import Verdict, compare_scores
from pipelines import families, tracking
from pipelines.errors import ConfigurationError, PromotionBlocked, StorefrontError
from pipelines.mlflow_logging import TrainResult, describe_run, git_commit

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"

def _client() -> mlflow.MlflowClient:
    tracking.setup_tracking()
    return mlflow.MlflowClient()


def alias_version(name: str, alias: str) -> ModelVersion | None:
    """The version behind ``name@alias``, or None when the model or the alias does not exist.

    """
    try:
        return _client().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def alias_number(name: str, alias: str) -> str | None:
    """The version number (as a string) behind ``name@alias``, or None."""
    version = alias_version(name, alias)
    return None if version is None else str(version.version)


def gate(result: TrainResult, margin: float = 0.0) -> Verdict:
    """Does the refit winner beat its baseline on the family's primary metric (same test data)?"""
    return compare_scores(result.test_value, result.baseline_value, higher_is_better=result.higher_is_better,
                          margin=margin, metric=f"test_{result.primary_metric}", reference_name="baseline")


def register_if_better(result: TrainResult, description: str = "") -> ModelVersion | None:
    """Register ``result``'s model as the new ``challenger`` if it passes the gate; else tag the run and return None.

    The version is linked to its logged model (:func:`create_linked_version`: the MLflow UI then lists the version
    on the logged model and in the runs table, and a tracking server accepts the source). The run gets the tag
    ``registered_model.<name>`` (one per registry name: the recommender slot registers a run twice) and the gate's
    verdict at the end of its description.
    """
    client = _client()
    verdict = gate(result)
    client.set_tag(result.run_id, "gate_verdict", "passed" if verdict.challenger_wins else "failed")
    client.set_tag(result.run_id, "gate_reason", verdict.reason)
    name = result.registered_model or families.get(result.family).registered_model
    if not verdict.challenger_wins:
        logger.warning("not registered: %s", verdict.reason)
        describe_run(result.run_id, f"**Gate ({name})**: failed, not registered: {verdict.reason}.", append=True)
        return None
    tags = {
        "family": result.family,
        "primary_metric": result.primary_metric,
        "higher_is_better": str(result.higher_is_better).lower(),
        f"test_{result.primary_metric}": f"{result.test_value:.6g}",
        f"baseline_test_{result.primary_metric}": f"{result.baseline_value:.6g}",
        "data_digest": result.data_digest,
        "git_commit": git_commit(),
        "parent_run_id": result.run_id,
        "gate_verdict": "passed",
        "gate_reason": verdict.reason,
    }
    _ensure_registered_model(client, name, result.family)
    version = create_linked_version(client, name, result.model_uri, result.run_id, tags,
                                    description or _describe(result, verdict))
    number = str(version.version)
    client.set_registered_model_alias(name, CHALLENGER, number)
    client.set_tag(result.run_id, f"registered_model.{name}", number)
    describe_run(result.run_id, f"**Gate ({name})**: passed, {verdict.reason}; registered as version {number} "
                                f"(`{CHALLENGER}`).", append=True)
    logger.info("registered %s version %s as %s (%s)", name, number, CHALLENGER, verdict.reason)
    return client.get_model_version(name, number)


REGISTRATION_WAIT = 120  # seconds to wait for a version to leave PENDING_REGISTRATION


def logged_model_id(model_uri: str) -> str | None:
    """``models:/m-<hex>`` (a logged model) -> ``m-<hex>``; None for registered-model URIs, runs:/ and paths."""
    rest = model_uri.removeprefix("models:/")
    return rest if model_uri.startswith("models:/m-") and "/" not in rest and "@" not in rest else None


def create_linked_version(client: mlflow.MlflowClient, name: str, model_uri: str, run_id: str, tags: dict,
                          description: str) -> ModelVersion:
    """A new version of ``name`` from a logged model, linked both ways.

    ``create_model_version`` gets the logged model's id (an MLflow tracking server refuses a ``models:/m-...``
    source without it), and the logged model's ``mlflow.modelVersions`` tag lists the version exactly once: a
    server writes it itself, a local store does not, and ``mlflow.register_model`` would write it twice on a
    server.
    """
    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

    model_id = logged_model_id(model_uri)
    version = client.create_model_version(name, model_uri, run_id=run_id, tags=tags, description=description,
                                          model_id=model_id, await_creation_for=REGISTRATION_WAIT)
    if model_id is not None:
        listed = json.loads(client.get_logged_model(model_id).tags.get(MLFLOW_MODEL_VERSIONS) or "[]")
        if not any(v.get("name") == name and str(v.get("version")) == str(version.version) for v in listed):
            client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps(
                [*listed, {"name": name, "version": int(version.version)}])})
    return version


def _ensure_registered_model(client: mlflow.MlflowClient, name: str, family: str) -> None:
    """Create the registered model with its description the first time a version goes to it."""
    try:
        client.get_registered_model(name)
    except MlflowException:
        declared = families.find(name)
        about = (declared or families.get(family)).about
        if declared is None:
            about = f"{about} Trained on a user's own file ({family} family)."
        try:
            client.create_registered_model(
                name, description=f"{about} Aliases: `champion` (served), `challenger` (the newest version that beat "
                                  "its baseline); promotion re-scores both on the challenger's test data (README).")
        except MlflowException:  # another process created it first
            client.get_registered_model(name)


def register_and_say(result: TrainResult) -> str:
    """:func:`register_if_better`, then what happened in words, for the training commands' summary line."""
    version = register_if_better(result)
    if version is not None:
        return f"registered {version.name} version {version.version} as {CHALLENGER}"
    return f"not registered: {gate(result).reason}"


def _describe(result: TrainResult, verdict: Verdict) -> str:
    title = families.get(result.family).title
    return (f"{title} model from run {result.run_id}, chosen by an Optuna study on a validation window "
            f"before the test window and refit on all history. Gate: {verdict.reason}. "
            f"Data digest {result.data_digest}.")


@contextlib.contextmanager
def _promotion_lock(name: str) -> Iterator[None]:
    """Serialise promotions of one model on this machine (a file lock in the project home)."""
    lock_dir = tracking.project_root() / ".locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"promote-{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class PromotionOutcome:
    name: str
    promoted: bool
    champion_version: str
    challenger_version: str | None
    previous_champion: str | None
    reason: str


Rescorer = Callable[[str], float]
"""Scores a model URI on the challenger's test data by the model's primary metric."""


def promote(name: str, margin: float = 0.0, rescorer_for: Callable[[ModelVersion], Rescorer] | None = None
            ) -> PromotionOutcome:
    """Promote ``name@challenger`` to ``champion`` if there is no champion or it beats the re-scored champion.

    ``rescorer_for(challenger_version)`` returns a function scoring any model URI on the challenger's test
    data (default: :func:`pipelines.rescoring.rescorer_for`). Raises :class:`PromotionBlocked` when there is
    no challenger or the champion cannot be scored on that data. Every decision (promoted, kept, blocked) adds one
    ``history.NNNN`` entry.
    """
    client = _client()
    with _promotion_lock(name):
        challenger = alias_version(name, CHALLENGER)
        if challenger is None:
            _blocked(client, name, f"{name} has no version with alias '{CHALLENGER}': train a model first")
        challenger_number = str(challenger.version)
        champion = alias_version(name, CHAMPION)
        champion_number = None if champion is None else str(champion.version)
        if champion_number == challenger_number:
            reason = f"version {challenger_number} is already the champion"
            _append_history(client, name, f"kept v{champion_number}: {reason}")
            return PromotionOutcome(name, False, champion_number, challenger_number, None, reason)
        metric = challenger.tags.get("primary_metric", "score")
        higher = challenger.tags.get("higher_is_better", "true") == "true"
        if champion is None:
            verdict = Verdict(True, float("nan"), float("nan"), margin, "no champion yet")
        else:
            if rescorer_for is None:
                from pipelines.rescoring import rescorer_for
            rescore = rescorer_for(challenger)
            challenger_score = rescore(f"models:/{name}/{challenger_number}")
            try:
                champion_score = rescore(f"models:/{name}/{champion_number}")
            except StorefrontError as exc:
                _blocked(client, name,
                         f"{name}: champion version {champion_number} cannot be scored on the test data of "
                         f"challenger version {challenger_number} ({exc}); promotion blocked. Compare them by hand "
                         f"and move the alias with `storefront promote --model {name} --force` if you are sure.",
                         entry=f"blocked v{challenger_number}: champion v{champion_number} cannot be scored on its "
                               "test data", cause=exc)
            verdict = compare_scores(challenger_score, champion_score, higher_is_better=higher, margin=margin,
                                     metric=metric, reference_name=f"champion v{champion_number}")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        client.set_model_version_tag(name, challenger_number, "promotion_verdict",
                                     f"{stamp} {'promoted' if verdict.challenger_wins else 'rejected'}: {verdict.reason}")
        if not verdict.challenger_wins:
            logger.info("%s: challenger v%s stays challenger: %s", name, challenger_number, verdict.reason)
            _append_history(client, name, f"kept v{champion_number}: challenger v{challenger_number} rejected: "
                                          f"{verdict.reason}")
            return PromotionOutcome(name, False, champion_number, challenger_number, None, verdict.reason)
        return _move_champion(client, name, challenger_number, champion_number, f"promoted: {verdict.reason}")


def force_promote(name: str, version: str | None = None) -> PromotionOutcome:
    """Make ``version`` (default: the challenger) champion without a comparison (recorded in the history).

    Forcing the current champion changes nothing and says so."""
    client = _client()
    with _promotion_lock(name):
        version = str(version) if version is not None else alias_number(name, CHALLENGER)
        if version is None:
            _blocked(client, name, f"{name} has no version with alias '{CHALLENGER}'")
        try:
            client.get_model_version(name, version)
        except MlflowException as exc:
            raise ConfigurationError(f"--version {version}: {name} has no such version") from exc
        current = alias_number(name, CHAMPION)
        if current == version:
            reason = f"version {version} is already the champion; nothing changed"
            _append_history(client, name, f"kept v{version}: forced, but it is already the champion")
            return PromotionOutcome(name, False, version, version, None, reason)
        return _move_champion(client, name, version, current, "forced by the user")


def rollback(name: str) -> PromotionOutcome:
    """Move ``champion`` back to the version recorded as ``previous_champion`` of the current champion.

    Never to the current version itself; a rollback that cannot be done is blocked (and recorded)."""
    client = _client()
    with _promotion_lock(name):
        champion = alias_version(name, CHAMPION)
        if champion is None:
            _blocked(client, name, f"{name} has no champion to roll back")
        current = str(champion.version)
        previous = champion.tags.get("previous_champion")
        if not previous or previous == current:
            _blocked(client, name, f"{name}: champion version {current} has no previous champion",
                     entry=f"rollback blocked: v{current} has no previous champion")
        try:
            client.get_model_version(name, previous)
        except MlflowException as exc:
            _blocked(client, name, f"{name}: previous champion version {previous} no longer exists", cause=exc)
        client.set_registered_model_alias(name, CHAMPION, previous)
        _append_history(client, name, f"rolled back champion from v{current} to v{previous}")
        client.set_model_version_tag(name, current, "rolled_back", "true")
        logger.info("%s: champion rolled back from version %s to %s", name, current, previous)
        return PromotionOutcome(name, True, previous, None, current, f"rolled back from v{current}")


def _blocked(client: mlflow.MlflowClient, name: str, message: str, entry: str | None = None,
             cause: Exception | None = None):
    """Record the blocked decision in the history (when the model exists) and raise :class:`PromotionBlocked`."""
    try:
        _append_history(client, name, f"blocked: {entry or message}")
    except MlflowException:  # no registered model yet: nothing to record it on
        pass
    raise PromotionBlocked(message) from cause


def _move_champion(client: mlflow.MlflowClient, name: str, version: str, old_version: str | None,
                   reason: str) -> PromotionOutcome:
    if old_version is not None and old_version != version:
        client.set_model_version_tag(name, version, "previous_champion", old_version)
    client.set_registered_model_alias(name, CHAMPION, version)
    _append_history(client, name, f"v{version} champion (was {('v' + old_version) if old_version else 'none'}): "
                                  f"{reason}")
    logger.info("%s: version %s is now champion (%s)", name, version, reason)
    return PromotionOutcome(name, True, version, version, old_version, reason)


def _append_history(client: mlflow.MlflowClient, name: str, line: str) -> None:
    """Promotion history: one tag per decision on the registered model, ``history.<n>``, oldest first (written
    inside the promotion lock, so two processes never take the same number on one machine)."""
    model = client.get_registered_model(name)
    n = sum(1 for key in model.tags if key.startswith("history."))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    client.set_registered_model_tag(name, f"history.{n + 1:04d}", f"{stamp} {line}")


def history(name: str) -> list[str]:
    model = _client().get_registered_model(name)
    return [model.tags[k] for k in sorted(k for k in model.tags if k.startswith("history."))]


URI_PREFIXES = ("models:/", "runs:/", "file:", "/", "mlflow-artifacts:", "s3://", "gs://", "wasbs://")


def latest_logged_model(family: families.Family) -> str | None:
    """URI of the newest model logged by a FINISHED run of the family's experiments."""
    client = _client()
    experiments = [client.get_experiment_by_name(name) for name in family.experiments]
    ids = [e.experiment_id for e in experiments if e is not None]
    if not ids:
        return None
    models = mlflow.search_logged_models(experiment_ids=ids, max_results=50, output_format="list",
                                         order_by=[{"field_name": "creation_timestamp", "ascending": False}])
    for model in models:
        if model.source_run_id and client.get_run(model.source_run_id).info.status == "FINISHED":
            return model.model_uri
    return None


def champion_or_latest(model: str, allowed: tuple[str, ...]) -> str:
    """The model URI a command's ``--model`` names.

    A URI is used as given. A family in ``allowed`` (or its registered name) or any registered name means
    ``models:/<name>@champion`` when that alias exists; for a family without a champion, the newest model
    logged by a finished run of its experiments. Anything else is a :class:`ConfigurationError`.
    """
    if model.startswith(URI_PREFIXES):
        return model
    family = families.find(model)
    family = family if family is not None and family.name in allowed else None
    registered = family.registered_model if family is not None else model
    if alias_version(registered, CHAMPION) is not None:
        return f"models:/{registered}@{CHAMPION}"
    if family is None:
        raise ConfigurationError(f"--model {model!r}: no registered model {registered!r} with a champion; "
                                 f"use {', '.join(allowed)} or a models:/ or runs:/ URI")
    uri = latest_logged_model(family)
    if uri is None:
        trainers = [families.get(m) for m in (family.members or (family.name,))]
        raise ConfigurationError(f"--model {model!r}: no champion of {registered} and no finished training run "
                                 f"in {', '.join(family.experiments)}; run `storefront {trainers[0].command}` first")
    return uri


def load_command_model(model: str, allowed: tuple[str, ...], what: str = "a model"):
    """``(uri, loaded pyfunc)`` of the model a command's ``--model`` names (:func:`champion_or_latest`)."""
    uri = champion_or_latest(model, allowed)
    try:
        return uri, mlflow.pyfunc.load_model(uri)
    except (MlflowException, OSError) as exc:
        raise ConfigurationError(f"--model {model!r}: cannot load {what} from {uri}: {exc}") from exc


def predict_for_command(loaded, uri: str, frame, params=None):
    """``loaded.predict``, with the model's 400-style refusals as a :class:`ConfigurationError` naming the model."""
    try:
        return loaded.predict(frame, params=params)
    except MlflowException as exc:
        raise ConfigurationError(f"{uri}: {exc.message}") from exc
