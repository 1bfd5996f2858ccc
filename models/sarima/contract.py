"""The served sales forecast's contract (``storefront-sarima`` and models of a user's own series).

One request row per series and horizon; one answer row per forecast step.
"""

from __future__ import annotations

from pathlib import Path

from models.contracts import Column, Contract, Param

PYFUNC_FILE = Path(__file__).with_name("pyfunc.py")
HORIZON = Column("horizon", "long", "periods ahead, a whole number", low=1, high=36)
CONFIDENCE = Param("confidence", "double", 0.95, "coverage of the interval", low=0.0, high=1.0)

CONTRACT = Contract(
    name="sarima",
    inputs=(Column("category", "string", "a series the model knows (the shop's categories and `All`, or the "
                                         "series of a `--series` file)"), HORIZON),
    params=(CONFIDENCE,),
    outputs=(
        Column("category", "string", "as sent"),
        Column("period", "string", "ISO date of the period's start, in the series' frequency (a month, "
                                     "quarter, year, week from Monday or day)"),
        Column("step", "long", "1 for the next period"),
        Column("forecast", "double", "the point forecast"),
        Column("lower", "double", "lower end of the interval"),
        Column("upper", "double", "upper end of the interval"),
    ),
)
