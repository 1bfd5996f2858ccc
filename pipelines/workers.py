"""Shared studies: one Optuna study, many worker processes, one result (``--workers``, ``storefront tune-worker``).

``storefront train-<family> --storage <database URL> --study-name S --workers N`` launches a *shared* study. The
launching process is one of the N workers and the only one that does anything but trials:

1. it opens its family's parent run and the study as usual, which creates the storage's schema once, before any
   other worker exists (two processes creating it together on a fresh PostgreSQL database collide with
   ``UniqueViolation``; :func:`pipelines.study.study_storage` also retries that race for workers started by hand);
2. it *queues the budget*: the study gets exactly ``--n-trials`` trials (the study's total, earlier trials of a
   resumed study included) as WAITING trials, the family's default trial first. Workers only ever run queued
   trials (:class:`SharedStorage` refuses to create one), and taking a queued trial is one atomic update in the
   database, so the study never runs more than ``--n-trials`` trials, whatever the number of workers;
3. it writes what a worker needs into the study's user attribute :data:`ATTR`: the parent run's id, the training
   command line (the storage URL in it redacted), the seed and the working folder;
4. its N-1 other workers (``storefront tune-worker`` processes on this machine) were started with the command
   (:func:`start_local_workers`), so they read the data while it did, and wait for the study that carries their
   token (:func:`resolve_join`); their seeds are ``--seed`` + 1 ... + N-1, so that their random start-up trials
   differ, and the sampler is TPE with ``constant_liar``, so running trials are not sampled twice. The launcher
   runs trials too, and, once no queued trial is left (or ``--timeout`` passed), *closes* the
   study (no worker takes a queued trial afterwards), waits for its workers to end and for every trial still
   RUNNING elsewhere to end or to be marked FAIL (a dead worker's trial: no heartbeat for
   2 x ``STOREFRONT_HEARTBEAT_SECONDS``, ``optuna.storages.fail_stale_trials``);
5. then, alone, it logs the study's outcome, refits the best trial, scores the test window and registers one
   version, as an ordinary training command does.

A worker (:func:`run`, ``storefront tune-worker --study-name S --storage URL``, on this machine or any other that
reaches the database and the tracking server) runs the same training command up to its study: it reads the same
data (``--data-dir`` to point at this machine's copy), computes the same objective, checks that the data's
digest is the parent run's, and then runs queued trials. Its own MLflow run (``role=worker``, the data it read)
and every trial run it writes are nested runs of the one parent run. It never refits or registers. A worker
that dies leaves its trial RUNNING until its heartbeat is stale; the others carry on, and that trial ends FAIL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from pipelines.errors import ConfigurationError

logger = logging.getLogger(__name__)

HELP = "join a shared Optuna study (started with `train-<family> --workers N`) as one more worker process"
DOCS = "README.md#shared-studies"
ATTR = "storefront.shared"  # the study user attribute a launcher writes for its workers
POLL_SECONDS = 1.0
STOP_SECONDS = 30.0  # how long a stopped launcher gives its workers to end after SIGTERM


class WorkerDone(BaseException):
    """Raised by :func:`pipelines.study.run_study` in a joining worker once it has no trial left to run: the
    training command stops there (no refit, no registration). Not an error (``BaseException``, so that no
    ``except Exception`` on the way turns it into one)."""

    def __init__(self, study_name: str, n_trials: int, parent_run_id: str):
        super().__init__(f"{n_trials} trial(s) of study {study_name}")
        self.study_name, self.n_trials, self.parent_run_id = study_name, n_trials, parent_run_id


class BudgetSpent(Exception):
    """A worker asked for a trial of a shared study and none is queued: its part is done."""


@dataclass(frozen=True)
class Joining:
    """This process is a worker of another process's shared study (``study_name`` and ``parent_run_id`` None: a
    launcher's own worker, started with ``token`` before the study exists; :func:`resolve_join` finds it)."""

    study_name: str | None
    storage: str
    parent_run_id: str | None
    seed: int | None
    token: str | None = None


_JOINING: Joining | None = None
COMMAND_ENV = "STOREFRONT_WORKER_COMMAND"  # a launcher's own workers read its command line here (JSON)


def current_join() -> Joining | None:
    """The shared study this process works for (``storefront tune-worker``), or None."""
    return _JOINING


def resolve_join() -> Joining | None:
    """:func:`current_join`, once its study exists: a launcher's own worker (which read the data while the launcher
    did) waits here for the launcher's study to carry its ``token``; an error if the launcher ends first."""
    global _JOINING
    join = _JOINING
    if join is None or join.parent_run_id is not None:
        return join
    import optuna

    from pipelines.study import study_storage

    storage = study_storage(join.storage, shared=True)
    launcher = os.getppid()
    while True:
        for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
            shared = summary.user_attrs.get(ATTR) or {}
            if shared.get("token") == join.token:
                _JOINING = Joining(summary.study_name, join.storage, shared["parent_run_id"], join.seed)
                return _JOINING
        if os.getppid() != launcher or launcher == 1:
            raise ConfigurationError("the launching process ended before its shared study started")
        time.sleep(POLL_SECONDS / 2)


@contextlib.contextmanager
def joining(join: Joining) -> Iterator[Joining]:
    global _JOINING
    previous, _JOINING = _JOINING, join
    try:
        yield join
    finally:
        _JOINING = previous


def shared_storage_class():
    """:class:`SharedStorage`'s class, defined on first use (importing Optuna at the top would slow
    ``storefront --help``)."""
    global _SHARED_STORAGE
    if _SHARED_STORAGE is not None:
        return _SHARED_STORAGE
    import optuna
    from optuna.trial import TrialState

    class SharedStorage(optuna.storages.RDBStorage):
        """An RDB storage for a shared study: a worker never creates a trial of its own (only queued, WAITING
        trials run, so the study's trial count is exactly its budget), and takes none once the launcher closed
        the study (:data:`ATTR` ``closed``; checked for the study bound with :func:`bind`)."""

        study_id: int | None = None

        def _create_new_trial(self, study_id: int, template_trial=None):
            # every trial is created here (create_new_trial and Optuna's cache both call it)
            if template_trial is None:  # Study.ask() found no queued trial
                raise BudgetSpent(f"study {self.get_study_name_from_id(study_id)}: no queued trial left")
            return super()._create_new_trial(study_id, template_trial)

        def set_trial_state_values(self, trial_id: int, state, values=None) -> bool:
            if state == TrialState.RUNNING and self.study_id is not None \
                    and self.get_study_user_attrs(self.study_id).get(ATTR, {}).get("closed"):
                return False  # taking a queued trial of a closed study: leave it queued
            return super().set_trial_state_values(trial_id, state, values)

    _SHARED_STORAGE = SharedStorage
    return SharedStorage


_SHARED_STORAGE = None


def bind(study) -> None:
    """Let the study's shared storage check that study's ``closed`` flag before a worker takes a trial."""
    backend = getattr(study._storage, "_backend", study._storage)  # Optuna wraps an RDB storage in a cache
    if isinstance(backend, shared_storage_class()):
        backend.study_id = study._study_id


def queue_budget(study, n_trials: int) -> int:
    """Queue WAITING trials until the study holds ``n_trials`` (all states); returns how many were queued."""
    missing = max(0, n_trials - len(study.get_trials(deepcopy=False)))
    for _ in range(missing):
        study.enqueue_trial({}, skip_if_exists=False)  # the sampler chooses every parameter when it runs
    return missing


def optimize(study, objective, timeout: float | None) -> None:
    """Run queued trials of a shared study until none is left (or ``timeout`` seconds passed)."""
    try:
        study.optimize(objective, timeout=timeout, catch=(Exception,))
    except BudgetSpent as done:
        logger.info("%s", done)


def _redact_argv(argv: list[str]) -> list[str]:
    from pipelines.study import redact

    out, hide = [], False
    for token in argv:
        if hide:
            out.append(redact(token))
            hide = False
        elif token == "--storage":
            out.append(token)
            hide = True
        elif token.startswith("--storage="):
            out.append(f"--storage={redact(token.split('=', 1)[1])}")
        else:
            out.append(token)
    return out


def _run_status(run_id: str) -> str | None:
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.MlflowClient().get_run(run_id).info.status
    except MlflowException:
        return None


THREADS_ENV = "STOREFRONT_THREADS"  # models.threads: threads per process for whole-catalogue work


def cores_each(workers: int) -> str:
    """The threads each of ``workers`` local worker processes uses (:mod:`models.threads`): the cores this process
    may use, shared out, at least 1. A trial of item-CF already fills every core on its own, so N workers on one
    machine split the cores instead of competing for all of them."""
    from models.threads import thread_count

    return str(max(1, thread_count() // max(1, workers)))


def _worker_env(workers: int) -> dict[str, str]:
    from pipelines.tracking import tracking_uri

    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri(), THREADS_ENV: cores_each(workers)}
    env.pop("MLFLOW_RUN_ID", None)
    return env


def _popen(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    # the worker's log goes where ours goes; its stdout (one closing line) too, so our stdout is the summary
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", *argv], env=env,
                            stdout=sys.__stderr__.fileno(), stderr=sys.__stderr__.fileno())


def stop_processes(procs: list[subprocess.Popen]) -> None:
    """SIGTERM (their runs end KILLED, their trials FAIL), then SIGKILL what still runs after :data:`STOP_SECONDS`."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class LocalWorkers:
    """A launcher's N-1 own workers, started before it trains (:func:`start_local_workers`)."""

    token: str
    procs: list[subprocess.Popen]

    def stop(self) -> None:
        stop_processes(self.procs)


_LOCAL: LocalWorkers | None = None


def start_local_workers(args) -> LocalWorkers | None:
    """For ``train-<family> --workers N`` (N > 1): start the N-1 other workers now, so that they read the data and
    build the objective while this process does; they wait for the study (:func:`resolve_join`). None for an
    ordinary command."""
    global _LOCAL
    from pipelines.options import check_workers

    count = check_workers(getattr(args, "workers", None), getattr(args, "storage", None))
    if not count or count < 2:
        return None
    import json
    import uuid

    from pipelines import cli, tracking

    # the tracking store and the family's experiment exist before any worker opens them: processes creating a
    # fresh MLflow database together collide in its migrations
    tracking.experiment_id(cli.TRAINERS[args.command].experiment)
    token = uuid.uuid4().hex
    env = {**_worker_env(count), COMMAND_ENV: json.dumps(list(args.argv))}
    procs = [_popen(["tune-worker", "--storage", args.storage, "--launch", token, "--seed", str(args.seed + i)], env)
             for i in range(1, count)]
    _LOCAL = LocalWorkers(token, procs)
    return _LOCAL


class Launch:
    """The launcher's side of a shared study (steps 2-4 of the module docstring)."""

    def __init__(self, study, options, parent_run_id: str, n_trials: int):
        self.study, self.options, self.parent_run_id, self.n_trials = study, options, parent_run_id, n_trials
        self.procs: list[subprocess.Popen] = []
        self.local = _LOCAL  # workers started by the command before it trained, if any

    def start(self) -> "Launch":
        study, options = self.study, self.options
        earlier = study.user_attrs.get(ATTR)
        if earlier and earlier.get("parent_run_id") != self.parent_run_id \
                and not earlier.get("closed") and _run_status(earlier["parent_run_id"]) == "RUNNING":
            raise ConfigurationError(
                f"--study-name {study.study_name}: this shared study is being run by run {earlier['parent_run_id']}; "
                f"join it with `storefront tune-worker --study-name {study.study_name} --storage ...` instead")
        queued = queue_budget(study, self.n_trials)
        study.set_user_attr(ATTR, {
            "parent_run_id": self.parent_run_id, "command": _redact_argv(list(options.command)),
            "n_trials": self.n_trials, "seed": options.seed, "workers": options.workers, "cwd": os.getcwd(),
            "launcher": f"{socket.gethostname()}:{os.getpid()}", "closed": False,
            "token": self.local.token if self.local else None})
        logger.info("shared study %s: %d trials in all (%d queued now), %d worker process(es) here; more join with "
                    "`storefront tune-worker --study-name %s --storage <url>`", study.study_name, self.n_trials,
                    queued, options.workers, study.study_name)
        if self.local is not None:  # started by the command, already reading the data
            self.procs = self.local.procs
        else:  # run_study called outside the command: start them now, on the study
            self.procs = [_popen(["tune-worker", "--study-name", study.study_name, "--storage", options.storage,
                                  "--seed", str(options.seed + i)], _worker_env(options.workers))
                          for i in range(1, options.workers)]
        # this process's trials share the cores with its local workers too; the refit afterwards gets them all back
        self._threads = os.environ.get(THREADS_ENV)
        os.environ[THREADS_ENV] = cores_each(options.workers)
        return self

    def _restore_threads(self) -> None:
        if not hasattr(self, "_threads"):
            return
        if self._threads is None:
            os.environ.pop(THREADS_ENV, None)
        else:
            os.environ[THREADS_ENV] = self._threads

    def close(self) -> None:
        """No worker takes a queued trial from now on."""
        attrs = dict(self.study.user_attrs.get(ATTR) or {})
        attrs["closed"] = True
        self.study.set_user_attr(ATTR, attrs)

    def finish(self) -> None:
        """Close the study, wait for the local workers and for every trial still RUNNING anywhere to end (a dead
        worker's trial is marked FAIL once its heartbeat is stale)."""
        import warnings

        import optuna
        from optuna.trial import TrialState

        self.close()
        self._restore_threads()
        last_note = 0.0
        while True:
            alive = [p for p in self.procs if p.poll() is None]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(self.study)  # logged by pipelines.study.stale_trial_failed
            running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if not alive and not running:
                break
            if time.monotonic() - last_note > 30:
                logger.info("shared study %s: waiting for %d worker process(es) and %d running trial(s)",
                            self.study.study_name, len(alive), len(running))
                last_note = time.monotonic()
            time.sleep(POLL_SECONDS)
        self._fail_dead_worker_runs()
        for proc in self.procs:
            if proc.returncode != 0:
                logger.warning("shared study %s: worker process %d ended with exit code %s (its trials count; a "
                               "trial it was running is FAIL)", self.study.study_name, proc.pid, proc.returncode)

    def _fail_dead_worker_runs(self) -> None:
        """A worker killed on this machine left its worker run RUNNING: mark it FAILED now, not at the next command."""
        import mlflow

        from pipelines.mlflow_logging import fail_dead_runs

        fail_dead_runs(mlflow.MlflowClient().get_run(self.parent_run_id).info.experiment_id)

    def stop(self) -> None:
        """The launcher failed or was stopped: close the study and stop its local workers (SIGTERM: their runs end
        KILLED and their trials FAIL), then kill any that still run after :data:`STOP_SECONDS`."""
        try:
            self.close()
        except Exception as exc:  # noqa: BLE001 - the storage may be what failed; the workers must stop anyway
            logger.warning("could not close shared study %s: %s", self.study.study_name, exc)
        self._restore_threads()
        stop_processes(self.procs)


# ---- the `storefront tune-worker` command ------------------------------------------------------------------------

def add_arguments(parser) -> None:
    import argparse

    from pipelines.options import whole_number

    parser.add_argument("--study-name", default=None, help="the shared study's name (required)")
    parser.add_argument("--storage", required=True,
                        help="the shared study's Optuna storage URL (postgresql+psycopg://user:password@host/db)")
    parser.add_argument("--family", default=None,
                        help="the study's model family (itemcf, svdpp, churn, segments, next_category): checked "
                             "against the study, to join only the study you mean")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="this machine's copy of the shop's tables (default: the launcher's --data-dir); its "
                             "digest must be the parent run's")
    parser.add_argument("--seed", type=whole_number, default=None,
                        help="this worker's sampler seed (default: random, so that workers' random trials differ)")
    # --launch TOKEN: a launcher's own worker (its command line in STOREFRONT_WORKER_COMMAND); not for users
    parser.add_argument("--launch", default=None, help=argparse.SUPPRESS)


def _with_data_dir(argv: list[str], data_dir: Path | None) -> list[str]:
    if data_dir is None:
        return argv
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
            continue
        if token == "--data-dir":
            skip = True
            continue
        if token.startswith("--data-dir="):
            continue
        out.append(token)
    return [*out, "--data-dir", str(data_dir)]


def open_shared_study(study_name: str, storage_url: str):
    """The shared study ``study_name`` of ``storage_url`` and its :data:`ATTR`; a clear error when there is none."""
    import optuna

    from pipelines.study import redact, study_storage

    storage = study_storage(storage_url, shared=True)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        raise ConfigurationError(f"--study-name {study_name}: no such study in {redact(storage_url)}; start it with "
                                 f"`storefront train-<family> --study-name {study_name} --storage ... --workers N`") \
            from None
    shared = study.user_attrs.get(ATTR)
    if not shared:
        raise ConfigurationError(f"--study-name {study_name}: the study was not started with --workers, so it has no "
                                 "parent run to join; start it with `storefront train-<family> --workers N`")
    return study, shared


def run(args) -> int:
    """``storefront tune-worker``: run queued trials of a shared study as one more worker (module docstring)."""
    import json

    from pipelines import cli

    if args.launch is not None:  # started by a launcher before its study exists: its command, its data
        parsed = cli.parse_args(json.loads(os.environ[COMMAND_ENV]))
        return _work(parsed, Joining(None, args.storage, None, args.seed, token=args.launch))
    if args.study_name is None:
        raise ConfigurationError("--study-name is required: the shared study to join")
    _, shared = open_shared_study(args.study_name, args.storage)
    argv = list(shared["command"])
    family = cli.TRAINERS.get(argv[0]) if argv else None
    if family is None:
        raise ConfigurationError(f"--study-name {args.study_name}: the study's command {argv[:1]} is not a training "
                                 "command")
    if args.family is not None and args.family.replace("-", "_") != family.name:
        raise ConfigurationError(f"--family {args.family}: study {args.study_name} tunes {family.name}")
    if shared.get("closed"):  # the launcher is finishing (or has finished): a late worker has nothing to do
        print(f"tune-worker: study {args.study_name} is closed (no trial left to run); nothing to do")
        return 0
    status = _run_status(shared["parent_run_id"])
    if status != "RUNNING":
        raise ConfigurationError(f"--study-name {args.study_name}: its parent run {shared['parent_run_id']} is "
                                 f"{status or 'not on this tracking server (MLFLOW_TRACKING_URI)'}: nothing to join")
    parsed = cli.parse_args(_with_data_dir(argv, args.data_dir))
    logger.info("joining shared study %s (%s, parent run %s) as worker %s:%d", args.study_name, family.name,
                shared["parent_run_id"], socket.gethostname(), os.getpid())
    return _work(parsed, Joining(args.study_name, args.storage, shared["parent_run_id"], args.seed))


def _work(parsed, join: Joining) -> int:
    """Run the training command ``parsed`` as a worker of ``join``'s study, up to the end of its trials."""
    import importlib

    from pipelines import cli

    module = importlib.import_module(cli.COMMANDS[parsed.command])
    with joining(join):
        try:
            module.train(module.config_from_args(parsed))
        except WorkerDone as done:
            print(f"tune-worker: ran {done.n_trials} trial(s) of study {done.study_name} (parent run "
                  f"{done.parent_run_id}); the launcher refits and registers")
            return 0
    raise RuntimeError(f"{parsed.command} ended without running its study")
