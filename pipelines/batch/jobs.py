"""What a batch-scoring run sends to a model: which served contract the model follows, its request rows, its params.

The kind of model comes from its logged signature: its output columns are those of one of the served contracts
(:data:`models.recommenders.contract.CONTRACT`, :func:`models.churn.contract.contract` for either target,
:data:`models.sarima.contract.CONTRACT`). The request rows are the served model's input rows:

* recommender: one row per customer (``customer_id`` and the optional demographic columns): a CSV/Parquet file
  of them, or every customer of a data folder's ``customers`` table; params ``k`` and ``exclude_purchased``
  only when given (else the model's served defaults);
* churn: a file of served rows (``customer_id`` and the model's feature columns), or, for a data folder, the
  features of every customer active at ``--cutoff``, built by :func:`pipelines.churn.score.shop_requests` as
  ``score-churn`` builds them;
* SARIMA: a file of ``category`` (and optionally ``horizon``) rows, or, for a data folder, every category the model
  knows; ``--horizon`` fills a missing ``horizon`` column; param ``confidence`` only when given.

An option that the model's kind does not take (``--k`` for a churn model, ``--cutoff`` for a file) is a
:class:`~pipelines.errors.ConfigurationError` naming the option; an input file that cannot be read, lacks a column
the model needs or has no rows is a :class:`~pipelines.errors.DataValidationError` naming the file and the column.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from models.churn.contract import TARGETS, contract as churn_contract
from models.contracts import Column, Contract
from models.recommenders.contract import CONTRACT as RECOMMENDER, DEMOGRAPHICS, EXCLUDE_PURCHASED, K
from models.sarima.contract import CONFIDENCE, CONTRACT as SARIMA, HORIZON
from pipelines.errors import ConfigurationError, DataValidationError

logger = logging.getLogger(__name__)

KINDS = ("recommender", "churn", "sarima")
ID_COLUMNS = ("customer_id", "category")  # read as text from a CSV or Parquet file


@dataclass(frozen=True)
class Options:
    """The kind-specific options of ``batch-score`` (None: not given)."""

    k: int | None = None
    include_purchased: bool = False
    cutoff: str | None = None
    horizon: int = 12
    confidence: float | None = None


@dataclass
class BatchJob:
    """One batch: the model's kind and contract, its request rows (in the order of the output), the params."""

    kind: str
    contract: Contract
    requests: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # what the rows are, for the log

    @property
    def outputs(self) -> tuple[Column, ...]:
        return self.contract.outputs


def model_contract(model, uri: str) -> tuple[str, Contract]:
    """``(kind, contract)`` of a loaded pyfunc, from its signature's output columns (module docstring)."""
    schema = model.metadata.get_output_schema()
    names = schema.input_names() if schema is not None else []
    candidates = [("recommender", RECOMMENDER), ("sarima", SARIMA),
                  *(("churn", churn_contract(target)) for target in TARGETS)]
    for kind, candidate in candidates:
        if names == candidate.output_names:
            return kind, candidate
    raise ConfigurationError(f"--model: {uri} is not a recommender, churn or SARIMA model (its outputs are "
                             f"{', '.join(map(str, names)) or 'not declared'}); batch-score scores those three kinds")


def _text_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """Id columns as text (an integer id is read as its digits, as in a served request); nulls stay null."""
    for column in ID_COLUMNS:
        if column in frame.columns:
            frame[column] = [v if v is None or isinstance(v, str) or (isinstance(v, float) and v != v)
                             else str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
                             for v in frame[column].tolist()]
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def read_input_file(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file of request rows (ids as text; CSV numbers as numbers, empty cells as null)."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ConfigurationError(f"--input {path}: not a .csv or .parquet file, nor a folder of shop tables")
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype={c: str for c in ID_COLUMNS}, keep_default_na=False, na_values=[""])
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"--input {path}: cannot be read: {str(exc).splitlines()[0][:300]}") from None
    if frame.empty:
        raise DataValidationError(f"--input {path}: has no rows")
    return _text_ids(frame)


def served_columns(model, frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """The columns of ``frame`` that the model's signature takes (in its order); a required one missing is a
    :class:`DataValidationError` naming the file and the column."""
    schema = model.metadata.get_input_schema()
    specs = list(schema.inputs)
    missing = [s.name for s in specs if getattr(s, "required", True) and s.name not in frame.columns]
    if missing:
        raise DataValidationError(f"--input {path}: no column {', '.join(map(repr, missing))} (the model takes "
                                  f"{', '.join(s.name for s in specs)})")
    return frame[[s.name for s in specs if s.name in frame.columns]].reset_index(drop=True)


def _refuse(kind: str, given: dict[str, bool]) -> None:
    wrong = [option for option, present in given.items() if present]
    if wrong:
        raise ConfigurationError(f"{', '.join(wrong)}: not an option for a {kind} model")


def build_job(model, uri: str, input_path: Path, options: Options) -> BatchJob:
    """The :class:`BatchJob` for ``model`` over ``input_path`` (a CSV/Parquet file or a folder of shop tables)."""
    input_path = Path(input_path)
    if not input_path.exists():
        raise ConfigurationError(f"--input {input_path}: no such file or folder")
    kind, contract = model_contract(model, uri)
    folder = input_path.is_dir()
    common = {"--cutoff": options.cutoff is not None and not (kind == "churn" and folder)}
    if kind == "recommender":
        _refuse(kind, {**common, "--confidence": options.confidence is not None})
        params = {}
        if options.k is not None:
            params[K.name] = _checked(K, options.k, "--k")
        if options.include_purchased:
            params[EXCLUDE_PURCHASED.name] = False
        if folder:
            from pipelines.data.tables import load_tables

            customers = load_tables(input_path)["customers"]
            columns = ["customer_id", *(c.name for c in DEMOGRAPHICS if c.name in customers.columns)]
            columns = [c for c in columns if c == "customer_id" or customers[c].notna().any()]  # all-null: unknown
            requests = customers[columns].reset_index(drop=True).astype(object)
            requests = _text_ids(requests.where(requests.notna(), None))  # nulls as None, as in a JSON request
            source = f"every customer of {input_path}"
        else:
            requests, source = read_input_file(input_path), f"the customers of {input_path}"
        return BatchJob(kind, contract, served_columns(model, requests, input_path), params, source)
    if kind == "churn":
        _refuse(kind, {**common, "--k": options.k is not None, "--include-purchased": options.include_purchased,
                       "--confidence": options.confidence is not None})
        if folder:
            from pipelines.churn.score import shop_requests
            from pipelines.data.tables import load_tables

            requests, cutoff, _ = shop_requests(model, uri, uri, load_tables(input_path), input_path, options.cutoff)
            source = f"every customer of {input_path} active at {cutoff.date()}"
            return BatchJob(kind, contract, requests.reset_index(drop=True), {}, source)
        requests = read_input_file(input_path)
        return BatchJob(kind, contract, served_columns(model, requests, input_path), {}, f"the rows of {input_path}")
    _refuse(kind, {**common, "--k": options.k is not None, "--include-purchased": options.include_purchased})
    horizon = _checked_horizon(options.horizon)
    params = {} if options.confidence is None else {CONFIDENCE.name: _checked(CONFIDENCE, options.confidence,
                                                                              "--confidence")}
    if folder:
        categories = list(model.unwrap_python_model().categories)
        requests = pd.DataFrame({"category": categories, "horizon": [horizon] * len(categories)})
        source = f"every category of the model x {horizon} periods"
    else:
        requests = read_input_file(input_path)
        if "horizon" not in requests.columns:
            requests["horizon"] = horizon
        source = f"the categories of {input_path}"
    return BatchJob(kind, contract, served_columns(model, requests, input_path), params, source)


def _checked(param, value, option: str):
    try:
        return param.check(value, option)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def _checked_horizon(horizon) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, int) or not HORIZON.low <= horizon <= HORIZON.high:
        raise ConfigurationError(f"--horizon must be an integer from {HORIZON.low} to {HORIZON.high}, got {horizon!r}")
    return horizon
