"""The documentation's contract tables are the contracts themselves (``models/<family>/contract.py``): each page
holds ``Contract.markdown()`` between ``<!-- contract <module>:<attribute> -->`` and ``<!-- /contract -->``."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"<!-- contract (?P<ref>[\w.]+:[\w()\"]+) -->\n(?P<table>.*?)\n<!-- /contract -->", re.S)
PAGES = ["README.md", "docs/recommenders.md", "docs/churn.md", "docs/sarima.md", "docs/analytics.md"]
EXPECTED = {"models.recommenders.contract:CONTRACT", "models.churn.contract:CONTRACT",
            "models.sarima.contract:CONTRACT", "models.segments.contract:CONTRACT",
            "models.next_category.contract:CONTRACT"}


def contract_blocks():
    for page in PAGES:
        for match in BLOCK.finditer((ROOT / page).read_text()):
            yield page, match["ref"], match["table"]


def test_every_served_model_has_its_contract_table_in_the_docs():
    assert {ref for page, ref, _ in contract_blocks() if page.startswith("docs/")} == EXPECTED


@pytest.mark.parametrize("page, ref, table", list(contract_blocks()), ids=lambda v: str(v)[:40])
def test_contract_tables_equal_the_contracts(page, ref, table):
    module, attribute = ref.split(":")
    contract = getattr(importlib.import_module(module), attribute)
    assert table == contract.markdown(), f"{page}: replace the block {ref} with\n{contract.markdown()}"
