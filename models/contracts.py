"""Serving contracts: what a served model takes and answers, declared once per model.

Every served model declares its :class:`Contract` (input columns and types, params with defaults and limits,
output columns) in ``models/<family>/contract.py``. The MLflow signature is built from it, the pyfunc reads its
params and limits from it, the command-line checks use the same :class:`Param` and :class:`Column` objects, and
the documentation's tables are :meth:`Contract.markdown` (a test keeps the docs equal to it). This module is
light (no pandas or MLflow at import), so the command line can read limits without slowing ``--help``.

Limits every served model shares, in one place:

* :data:`MAX_ROWS`: rows per request (1,000; a recommender then answers at most 100,000 rows at ``k=100``). A
  larger request answers HTTP 400 naming the limit. A model logged with ``model_config={"max_rows": N}``
  (``pipelines.mlflow_logging.log_pyfunc_model(max_rows=N)``) uses N; ``STOREFRONT_MAX_ROWS=N`` at serve time
  overrides both (:func:`row_limit`).
* :data:`MAX_NUMBER`: the largest magnitude of a number in a request (1e15: above 2**53 doubles no longer hold
  every integer, and no feature of a shop is that large); with :func:`number_problem`, a request number must be
  a finite int or float, never a boolean.

How MLflow's scoring server treats a column before the model sees it decides its signature type
(:meth:`Column.colspec`): a ``string`` column passes JSON values through as they are (the model checks them); a
``long`` column would be cast (2.5 becomes 2, ``true`` 1, ``"3"`` 3) and a ``double`` column would turn ``true``
into 1.0 and ``"3"`` into 3.0, so numeric inputs are declared ``Any`` and checked by the model. A whole-number
*param* is declared ``double`` (:attr:`Param.signature_type`): MLflow refuses 2.0 for a ``long`` param, and
passes 2.5 on to the model, which refuses it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Mapping

MAX_ROWS = 1000
MAX_ROWS_ENV = "STOREFRONT_MAX_ROWS"
MAX_NUMBER = 1e15


def checked_row_limit(value, origin: str = "max_rows") -> int:
    """``value`` as a row limit: a whole number >= 1, else a ``ValueError`` naming ``origin``."""
    try:
        limit = int(str(value).strip())
    except ValueError:
        limit = 0
    if limit < 1:
        raise ValueError(f"{origin} must be a whole number of rows >= 1, got {value!r}")
    return limit


def row_limit(model_config: Mapping[str, Any] | None = None) -> int:
    """The per-request row limit of a served model: ``STOREFRONT_MAX_ROWS``, else the logged ``max_rows``, else
    :data:`MAX_ROWS`. A bad value is a ``ValueError`` (the model does not load, so the server does not start)."""
    env = os.environ.get(MAX_ROWS_ENV, "").strip()
    if env:
        return checked_row_limit(env, MAX_ROWS_ENV)
    return checked_row_limit((model_config or {}).get("max_rows", MAX_ROWS))


def number_problem(value) -> str | None:
    """What keeps ``value`` (a request's cell) from being a number of a served model, or None when it is one:
    a finite int or float (NumPy's too) of magnitude at most :data:`MAX_NUMBER`; never a boolean or text."""
    import numpy as np

    if isinstance(value, (bool, np.bool_)):
        return "a boolean, not a number"
    if not isinstance(value, (int, float, np.integer, np.floating)):
        return "text, not a number" if isinstance(value, str) else f"a {type(value).__name__}, not a number"
    if not math.isfinite(value):
        return "not a finite number"
    if abs(value) > MAX_NUMBER:
        return f"beyond the largest magnitude a request may send ({MAX_NUMBER:g})"
    return None


def _bad_request(message: str):
    from models.serving import bad_request

    return bad_request(message)


@dataclass(frozen=True)
class Column:
    """One column of a served model's input or output: its name, MLflow type, meaning and, for whole numbers,
    the inclusive range a request may send (checked by :meth:`whole_number`). An input column with
    ``required=False`` may be left out of a request, or be null in some rows."""

    name: str
    type: str  # an MLflow column type: string, long, double, boolean
    doc: str = ""
    low: int | None = None
    high: int | None = None
    nullable: bool = False  # an input the model imputes: a request may send null (else null is a 400)
    required: bool = True  # False: an optional input, which a request may leave out or send as null (unknown)

    def whole_number(self, value, row: int) -> int:
        """``value`` of this column in request row ``row`` as an int within the limits (2.0 is 2; 2.5, true,
        text and missing values are a 400 naming the column and the row)."""
        import numpy as np

        if isinstance(value, (bool, np.bool_)) or value is None:
            number = None
        elif isinstance(value, (int, np.integer)):
            number = int(value)
        elif isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
            number = int(value)
        else:
            number = None
        if number is None or not self.low <= number <= self.high:
            raise _bad_request(f"column {self.name!r} in row {row} must be an integer from {self.low} to "
                              f"{self.high}, got {value!r}")
        return number

    def describe(self) -> str:
        limits = f" ({self.low}..{self.high})" if self.low is not None else ""
        return f"{self.type}{limits}{'' if self.required else ', optional'}"

    @property
    def null(self) -> str:
        """What a null in this input column gets: unknown (an optional input), imputed, or HTTP 400."""
        if not self.required:
            return "unknown"
        return "imputed" if self.nullable else "400"

    def colspec(self):
        """The MLflow ``ColSpec`` of this column as a request input (module docstring: numbers are ``Any``)."""
        from mlflow.types import ColSpec
        from mlflow.types.schema import AnyType

        if not self.required:  # MLflow's typed checks would refuse a row without it: the model checks it
            return ColSpec(AnyType(), self.name, required=False)
        return ColSpec(AnyType() if self.type in ("long", "double") else self.type, self.name)


@dataclass(frozen=True)
class Param:
    """One inference parameter of a served model: name, MLflow type, default and limits.

    ``long`` limits are inclusive; ``double`` limits are exclusive (a probability in (0, 1)).
    """

    name: str
    type: str  # long, double, boolean
    default: Any
    doc: str = ""
    low: float | None = None
    high: float | None = None

    def read(self, params: Mapping[str, Any] | None):
        """The parameter's value in a request's ``params`` (the default when absent), or a 400 naming it."""
        value = (params or {}).get(self.name, self.default)
        if value is None:
            return self.default
        return {"long": self._whole, "double": self._number, "boolean": self._flag}[self.type](value)

    def _whole(self, value) -> int:
        number = None
        if not isinstance(value, bool) and isinstance(value, (int, float, str)):
            try:
                number = int(value) if not isinstance(value, float) or value.is_integer() else None
            except ValueError:
                number = None
        if number is None or not self.low <= number <= self.high:
            raise _bad_request(f"param {self.name!r} must be an integer from {self.low:g} to {self.high:g}, "
                              f"got {value!r}")
        return number

    def _number(self, value) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        if isinstance(value, bool) or number is None or not self.low < number < self.high:
            raise _bad_request(f"param {self.name!r} must be a number strictly between {self.low} and {self.high}, "
                              f"got {value!r}")
        return number

    def _flag(self, value) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _bad_request(f"param {self.name!r} must be true or false, got {value!r}")

    def check(self, value, option: str | None = None):
        """The same check for a command-line value; raises ``ValueError`` naming ``option`` (or the param)."""
        from mlflow.exceptions import MlflowException

        try:
            return self.read({self.name: value})
        except MlflowException as exc:
            message = exc.message
            if option:
                message = message.replace(f"param {self.name!r}", option)
            raise ValueError(message) from None

    @property
    def signature_type(self) -> str:
        """The type of the param in the MLflow signature: ``double`` for a whole number (module docstring)."""
        return "double" if self.type == "long" else self.type

    def describe(self) -> str:
        if self.type == "long":
            return f"integer {self.low:g}..{self.high:g}, default {self.default}"
        if self.type == "double":
            return f"number in ({self.low:g}, {self.high:g}), default {self.default}"
        return f"true or false, default {str(self.default).lower()}"


@dataclass(frozen=True)
class Contract:
    """A served model's contract: input columns, inference params and output columns, in one place.

    The signature is built from it (:meth:`signature`), the pyfunc reads its params and limits from it, the
    command-line checks use the same :class:`Param` and :class:`Column` objects, and the documentation's
    tables are :meth:`markdown` (a test keeps the docs equal to it). ``dynamic_inputs`` says which further
    input columns a fitted model adds (e.g. the churn features); ``dynamic_outputs`` the same for outputs.
    """

    name: str
    inputs: tuple[Column, ...]
    params: tuple[Param, ...] = ()
    outputs: tuple[Column, ...] = ()
    dynamic_inputs: str = ""
    dynamic_outputs: str = ""
    dynamic_null: str = "400"  # what a null in a dynamic input column gets

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)

    def column(self, name: str) -> Column:
        return next(c for c in (*self.inputs, *self.outputs) if c.name == name)

    @property
    def input_names(self) -> list[str]:
        return [c.name for c in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [c.name for c in self.outputs]

    def signature(self, inputs=None, outputs=None, defaults: Mapping[str, Any] | None = None):
        """The MLflow ``ModelSignature``: these columns (or the given ``ColSpec`` lists) and the params (with the
        ``defaults`` a trained model overrides, e.g. the ``k`` it was tuned for)."""
        defaults = dict(defaults or {})
        from mlflow.models import ModelSignature
        from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

        def value(param: Param):
            default = defaults.get(param.name, param.default)
            return float(default) if param.signature_type == "double" else default

        return ModelSignature(
            inputs=Schema(inputs if inputs is not None else [c.colspec() for c in self.inputs]),
            outputs=Schema(outputs if outputs is not None else [ColSpec(c.type, c.name) for c in self.outputs]),
            params=ParamSchema([ParamSpec(p.name, p.signature_type, value(p)) for p in self.params])
            if self.params else None,
        )

    def markdown(self) -> str:
        """The contract as the Markdown table the documentation shows (``null``: what a null input gets)."""
        rows = ["| part | name | type | null | meaning |", "|---|---|---|---|---|"]
        rows += [f"| input | `{c.name}` | {c.describe()} | {c.null} | {c.doc} |" for c in self.inputs]
        if self.dynamic_inputs:
            rows.append(f"| input | ... | | {self.dynamic_null} | {self.dynamic_inputs} |")
        rows += [f"| param | `{p.name}` | {p.describe()} | default | {p.doc} |" for p in self.params]
        rows += [f"| output | `{c.name}` | {c.describe()} | | {c.doc} |" for c in self.outputs]
        if self.dynamic_outputs:
            rows.append(f"| output | ... | | | {self.dynamic_outputs} |")
        return "\n".join(rows)
