"""Screenshots of how a storefront study reads in the MLflow UI (the pictures of the README and docs/img/).

    python docs/screenshots.py                                          # runs `storefront main --quick` in a temp home
    python docs/screenshots.py --store sqlite:////path/to/mlflow.db     # starts `mlflow ui` on that store
    python docs/screenshots.py --url http://127.0.0.1:5000              # an `mlflow ui` already up

Drives Debian's headless chromium with selenium and Debian's chromedriver (`apt-get install chromium
chromium-driver`; both come from one source package, so their versions always match; nothing is downloaded).
Saves four PNGs of the churn study (the family whose trials have the most hyperparameters):

* ``runs_trials_sorted.png``   the runs table: trials only, sorted by the objective (the experiment's shared
                               view ``trials`` when the study logged one, else the same filter and sort in the URL);
* ``study_overview.png``       the parent run's Overview (description, params under the trials' keys, model);
* ``compare_trials.png``       the compare page of the complete trials (parallel coordinates);
* ``registered_model.png``     the registered model ``storefront-churn`` with its aliases.

Every URL carries ``workflowType=machine_learning`` (MLflow 3.17 opens in its GenAI mode otherwise). The
function :func:`capture` returns, per page, the final URL and the page's text, so that a test can assert on
what a person sees (``tests/e2e/test_ui.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ML = "workflowType=machine_learning"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
               "--disable-dev-shm-usage", "--hide-scrollbars"]
# The MLflow Assistant panel opens by itself on a first load and takes a third of the width: mark it seen/closed.
# (Only these two keys: the training view must come from the URL, never from local storage.)
LOCAL_STORAGE = {"mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true", "mlflow.assistant.panelOpen_v1": "false"}


# ------------------------------------------------------------------------------------------- mlflow ui + REST
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def mlflow_ui(store: str, mlflow_bin: str | None = None, timeout: float = 180):
    """``mlflow ui --backend-store-uri <store>`` on a free loopback port; yields its base URL; stops it after."""
    port = free_port()
    exe = mlflow_bin or shutil.which("mlflow") or str(Path(sys.executable).with_name("mlflow"))
    env = {**os.environ, "PATH": f"{Path(exe).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = tempfile.NamedTemporaryFile("w+", prefix="mlflow-ui-", suffix=".log", delete=False)
    proc = subprocess.Popen([exe, "ui", "--backend-store-uri", store, "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow ui exited with {proc.returncode}: {Path(log.name).read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"mlflow ui not up after {timeout:.0f}s: {Path(log.name).read_text()[-2000:]}")
            time.sleep(1)
        yield url
    finally:
        import signal
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # its own process group: uvicorn and the job runner too
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def api(url: str, path: str, body: dict | None = None, **query) -> dict:
    """GET (``query``) or POST (``body``) ``/api/2.0/mlflow/<path>``."""
    full = f"{url}/api/2.0/mlflow/{path}"
    if query:
        full += "?" + urllib.parse.urlencode(query)
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(full, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def tags_of(entity: dict) -> dict:
    return {t["key"]: t.get("value", "") for t in entity.get("tags", []) or []}


@dataclass
class Study:
    experiment_id: str
    parent: dict
    trials: list[dict]
    objective_key: str  # e.g. "val_auc"
    ascending: bool
    shared_view: str | None
    model_name: str = "storefront-churn"
    metric_keys: list[str] = field(default_factory=list)


def find_study(url: str, experiment: str = "storefront-churn") -> Study:
    """The newest parent run of ``experiment`` and its trial runs, through the REST API."""
    exp = api(url, "experiments/get-by-name", experiment_name=experiment)["experiment"]
    exp_id = exp["experiment_id"]
    runs = api(url, "runs/search", {"experiment_ids": [exp_id], "max_results": 1000,
                                    "order_by": ["attributes.start_time DESC"]}).get("runs", [])
    parents = [r for r in runs if "mlflow.parentRunId" not in tags_of(r["data"])]
    if not parents:
        raise LookupError(f"no parent run in {experiment}")
    parent = parents[0]
    pid = parent["info"]["run_id"]
    trials = [r for r in runs if tags_of(r["data"]).get("mlflow.parentRunId") == pid]
    keys = sorted({m["key"] for t in trials for m in t["data"].get("metrics", [])})
    objective = next((k for k in keys if k.startswith("val_")), keys[0] if keys else "")
    shared = "trials" if "mlflow.sharedViewState.trials" in tags_of(exp) else None
    return Study(exp_id, parent, trials, objective, ascending=False, shared_view=shared, metric_keys=keys)


def page_urls(url: str, study: Study) -> dict[str, str]:
    """The four pages (file stem -> URL)."""
    base = f"{url}/#"
    exp, pid = study.experiment_id, study.parent["info"]["run_id"]
    if study.shared_view:
        runs = f"{base}/experiments/{exp}/runs?viewStateShareKey={study.shared_view}&{ML}"
    else:
        query = urllib.parse.urlencode({"searchFilter": "tags.role = 'trial'",
                                        "orderByKey": f"metrics.`{study.objective_key}`",
                                        "orderByAsc": str(study.ascending).lower()})
        runs = f"{base}/experiments/{exp}/runs?{query}&{ML}"
    complete = [t["info"]["run_id"] for t in study.trials
                if tags_of(t["data"]).get("trial_state", "COMPLETE") == "COMPLETE"]
    compare = (f"{base}/compare-runs?runs={urllib.parse.quote(json.dumps(complete))}"
               f"&experiments={urllib.parse.quote(json.dumps([exp]))}&{ML}")
    return {
        "runs_trials_sorted": runs,
        "study_overview": f"{base}/experiments/{exp}/runs/{pid}?{ML}",
        "compare_trials": compare,
        "registered_model": f"{base}/models/{study.model_name}?{ML}",
    }


# ---------------------------------------------------------------------------------------------------- chromium
@contextlib.contextmanager
def chromium(width: int = 1600, height: int = 1000):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in CHROME_ARGS + [f"--user-data-dir={profile}", f"--window-size={width},{height}"]:
        options.add_argument(arg)
    service = Service(executable_path=CHROMEDRIVER)  # an explicit driver: Selenium Manager is never asked
    driver = webdriver.Chrome(service=service, options=options)
    try:
        script = "".join(f"if (localStorage.getItem({json.dumps(k)}) === null) "
                         f"localStorage.setItem({json.dumps(k)}, {json.dumps(v)});" for k, v in LOCAL_STORAGE.items())
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": script})
        # --window-size includes the (invisible) browser frame: fix the page's viewport itself
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_text(driver, texts: list[str], timeout: float = 60) -> str:
    """Wait until the page shows every string of ``texts`` and the spinners are gone; return the page text."""
    deadline = time.monotonic() + timeout
    while True:
        body = driver.execute_script("return document.body ? document.body.innerText : ''") or ""
        busy = driver.execute_script(
            "return document.querySelectorAll('[data-testid*=\"spinner\"], .du-bois-light-spin, [aria-busy=\"true\"]').length")
        if all(t in body for t in texts) and not busy:
            return body
        if time.monotonic() > deadline:
            missing = [t for t in texts if t not in body]
            raise TimeoutError(f"{driver.current_url}: still missing {missing} after {timeout:.0f}s")
        time.sleep(0.5)


def capture(url: str, out: Path | None, study: Study | None = None, settle: float = 2.0) -> dict[str, dict]:
    """Open the four pages, save a PNG of each into ``out`` (when given); return {stem: {url, final_url, text}}."""
    study = study or find_study(url)
    urls = page_urls(url, study)
    trial_name = study.trials[0]["info"]["run_name"] if study.trials else ""
    expect = {
        "runs_trials_sorted": [trial_name, "Model registry"],
        "study_overview": [study.parent["info"]["run_name"], "Description", "Logged models"],
        "compare_trials": ["Parallel Coordinates Plot", "Run details"],
        "registered_model": [study.model_name, "Version 1"],
    }
    results = {}
    if out:
        out.mkdir(parents=True, exist_ok=True)
    with chromium() as driver:
        for stem, page_url in urls.items():
            driver.get(page_url)
            text = wait_text(driver, expect[stem])
            time.sleep(settle)  # charts animate in
            text = driver.execute_script("return document.body.innerText")
            if out:
                driver.save_screenshot(str(out / f"{stem}.png"))
            results[stem] = {"url": page_url, "final_url": driver.current_url, "text": text}
    return results


@contextlib.contextmanager
def quick_store():
    """A temporary project home holding the store of ``storefront main --quick``; yields its tracking URI."""
    with tempfile.TemporaryDirectory(prefix="storefront-shots-") as home:
        uri = f"sqlite:///{home}/mlflow.db"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env.update(STOREFRONT_HOME=home, MLFLOW_TRACKING_URI=uri,
                   PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        subprocess.run([str(Path(sys.executable).with_name("storefront")), "main", "--quick"], env=env, cwd=home,
                       check=True)
        yield uri


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--store", help="backend store URI: start `mlflow ui` on it (default: a `main --quick` store)")
    where.add_argument("--url", help="base URL of an `mlflow ui` that is already up")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "img")
    parser.add_argument("--mlflow", default=None, help="the mlflow executable (default: next to python)")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.url:
            url = args.url
        else:
            store = args.store or stack.enter_context(quick_store())
            url = stack.enter_context(mlflow_ui(store, args.mlflow))
        for stem, r in capture(url, args.out).items():
            print(f"{args.out / (stem + '.png')}  {r['url']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
