"""Serving contracts: what a served model takes and answers, declared once per model.

Every served model declares its :class:`Contract` (input columns and types, params with defaults and limits,
output columns) in ``models/<family>/contract.py``. The MLflow signature is built from it, the pyfunc reads its
params and limits from it, the command-line checks use the same :class:`Param` and :class:`Column` objects, and
the documentation's tables are :meth:`Contract.markdown` (a test keeps the docs equal to it). This module is
light (no pandas or MLflow at import), so the command line can read limits without slowing ``--help``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping


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
    required: bool = True

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
        from mlflow.types.schema import AnyType

        def specs(columns):
            # An optional column is declared AnyType: MLflow's typed checks reject real requests with optional
            # columns (a JSON 34 for a double, a row without the value for a long); the model checks the values.
            return [ColSpec(c.type, c.name) if c.required else ColSpec(AnyType(), c.name, required=False)
                    for c in columns]

        return ModelSignature(
            inputs=Schema(inputs if inputs is not None else specs(self.inputs)),
            outputs=Schema(outputs if outputs is not None else specs(self.outputs)),
            params=ParamSchema([ParamSpec(p.name, p.type, defaults.get(p.name, p.default)) for p in self.params])
            if self.params else None,
        )

    def markdown(self) -> str:
        """The contract as the Markdown table the documentation shows."""
        rows = ["| part | name | type | meaning |", "|---|---|---|---|"]
        rows += [f"| input | `{c.name}` | {c.describe()} | {c.doc} |" for c in self.inputs]
        if self.dynamic_inputs:
            rows.append(f"| input | ... | | {self.dynamic_inputs} |")
        rows += [f"| param | `{p.name}` | {p.describe()} | {p.doc} |" for p in self.params]
        rows += [f"| output | `{c.name}` | {c.describe()} | {c.doc} |" for c in self.outputs]
        if self.dynamic_outputs:
            rows.append(f"| output | ... | | {self.dynamic_outputs} |")
        return "\n".join(rows)
