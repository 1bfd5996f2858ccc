"""The served segment model's contract (``storefront-segments``): one answer row per input row."""

from __future__ import annotations

from pathlib import Path

from models.segments.model import FEATURES
from models.contracts import Column, Contract

PYFUNC_FILE = Path(__file__).with_name("pyfunc.py")
_MEANING = {
    "total_spending": "amount spent before the reference date",
    "frequency_days": "distinct purchase days",
    "avg_spend_per_item": "amount per item bought",
    "recency_days": "days since the last purchase",
}

CONTRACT = Contract(
    name="segments",
    inputs=tuple(Column(name, "double", f"{_MEANING[name]} (a non-negative number)") for name in FEATURES),
    outputs=(
        Column("segment_id", "long", "the nearest centroid"),
        Column("segment_name", "string", "its name, e.g. `high spenders`"),
    ),
)
