"""MLflow tracking setup, in one place.

* Tracking URI: ``MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<project root>/mlflow.db``.
* Project root: ``STOREFRONT_HOME`` when set, else the checkout this package lives in (the folder holding
  ``MLproject``), else ``~/.storefront``. It never depends on the current working directory.
* Experiments are created with an explicit artifact location, ``<project root>/mlartifacts/<experiment>``,
  when the tracking store is local (SQLite or a file store). Against a remote tracking server the server's
  artifact root is used (or ``STOREFRONT_ARTIFACT_ROOT`` when set), so the same code works unchanged.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import urlparse

logger = logging.getLogger(__name__)

def project_root() -> Path:
    """The folder that holds ``mlflow.db``, ``mlartifacts/`` and ``data/``."""
    env = os.environ.get("STOREFRONT_HOME")
    if env:
        return Path(env).expanduser().resolve()
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "MLproject").is_file():
        return checkout
    return (Path.home() / ".storefront").resolve()


def default_data_dir() -> Path:
    return project_root() / "data" / "generated"


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set, else the project's SQLite database."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{project_root() / 'mlflow.db'}"


def is_local_store(uri: str) -> bool:
    scheme = urlparse(uri).scheme
    return scheme in ("", "file", "sqlite") or (len(scheme) == 1 and uri[1:3] == ":\\")


def artifact_location(experiment_name: str, uri: str | None = None) -> str | None:
    """Explicit artifact location for a new experiment (None lets a remote server choose)."""
    root = os.environ.get("STOREFRONT_ARTIFACT_ROOT")
    if root:
        return f"{root.rstrip('/')}/{experiment_name}"
    if is_local_store(uri or tracking_uri()):
        return (project_root() / "mlartifacts" / experiment_name).as_uri()
    return None


def setup_tracking() -> str:
    """Point MLflow at the tracking URI (and the registry at the same place); return the URI."""
    import mlflow

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(os.environ.get("MLFLOW_REGISTRY_URI", uri))
    if is_local_store(uri):
        project_root().mkdir(parents=True, exist_ok=True)
    return uri


EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")  # training, not GenAI (older UIs read it)


def experiment_id(name: str) -> str:
    """Id of the experiment ``name``, created with an explicit artifact location when missing.

    A new experiment gets the project's description of it (``mlflow.note.content``, shown as a banner above the
    runs) and the experiment-kind tag; an existing one gets them if it lacks them. Also makes it the active
    experiment.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    setup_tracking()
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            exp_id = client.create_experiment(name, artifact_location=artifact_location(name))
        except MlflowException:  # another process created it first
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
            exp_id = exp.experiment_id
        else:
            logger.info("created experiment %s (artifacts: %s)", name, artifact_location(name) or "server default")
    else:
        exp_id = exp.experiment_id
    tags = {} if exp is None else exp.tags
    from pipelines.families import experiment_about

    about = experiment_about(name)
    if about and "mlflow.note.content" not in tags:
        client.set_experiment_tag(exp_id, "mlflow.note.content", about)
    if EXPERIMENT_KIND[0] not in tags:
        client.set_experiment_tag(exp_id, *EXPERIMENT_KIND)
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id
