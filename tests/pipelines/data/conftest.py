"""Fixtures for the ingest tests: tiny hand-written shop files in ``tmp_path``.

Line numbers in the tests refer to these texts: the header is line 1, the first row line 2.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CANONICAL = {
    "customers.csv": (
        "customer_id,signup_date,gender,age,location\n"
        "C1,2023-01-05,F,34,Berlin\n"
        "C2,2023-02-10,M,41,Paris\n"
    ),
    "products.csv": (
        "product_id,category,product_name,base_price\n"
        "P1,Books,Novel,12.5\n"
        "P2,Electronics,Headphones,59.9\n"
    ),
    "transactions.csv": (
        "transaction_id,customer_id,product_id,quantity,amount,purchase_date\n"
        "T1,C1,P1,1,12.5,2023-03-01 10:00:00\n"
        "T2,C2,P2,2,119.8,2023-03-02 11:30:00\n"
        "T3,C1,P2,1,59.9,2023-03-05 09:15:00\n"
    ),
    "events.csv": (
        "customer_id,product_id,event_type,event_date\n"
        "C1,P1,product_view,2023-03-01 09:55:00\n"
        "C2,P2,add_to_cart,2023-03-02 11:20:00\n"
    ),
}

# The UCI "Online Retail" layout. Rows (by line): 2-6, 12, 13, 15 kept; 7, 8 C-invoices and 9 negative
# quantity without customer (returns); 10, 11 no CustomerID; 14 zero UnitPrice.
ONLINE_RETAIL = (
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850,United Kingdom\n"
    "536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850,United Kingdom\n"
    '536365,22752,"SET 7 BABUSHKA NESTING BOXES, LARGE",2,12/1/2010 8:26,7.65,17850,United Kingdom\n'
    "536366,22633,HAND WARMER UNION JACK,6,12/1/2010 8:28,1.85,17850,United Kingdom\n"
    "536367,84879,ASSORTED COLOUR BIRD ORNAMENT,32,12/1/2010 8:34,1.69,13047,United Kingdom\n"
    "C536379,D,Discount,-1,12/1/2010 9:41,27.50,14527,United Kingdom\n"
    "C536383,35004C,SET OF 3 COLOURED  FLYING DUCKS,-1,12/1/2010 9:49,4.65,15311,United Kingdom\n"
    "536384,22469,HEART OF WICKER SMALL,-3,12/1/2010 9:53,1.65,,United Kingdom\n"
    "536414,22139,,56,12/1/2010 11:52,0,,United Kingdom\n"
    "536544,21773,DECORATIVE ROSE BATHROOM BOTTLE,1,12/1/2010 14:32,2.51,,United Kingdom\n"
    "536370,22728,ALARM CLOCK BAKELIKE PINK,24,12/1/2010 8:45,3.75,12583,France\n"
    "536370,22727,ALARM CLOCK BAKELIKE RED ,24,12/1/2010 8:45,3.75,12583,France\n"
    "537197,22841,ROUND CAKE TIN VINTAGE GREEN,1,12/5/2010 14:02,0,12647,Germany\n"
    "536367,84879,ASSORTED COLOUR BIRD ORNAMENT,8,12/1/2010 8:34,1.69,13047,United Kingdom\n"
)

EXAMPLE_MAP = Path(__file__).resolve().parents[3] / "examples" / "column_maps" / "online_retail.yaml"


@pytest.fixture
def write_shop(tmp_path):
    """``write_shop(changes, base=CANONICAL, folder="shop")``: write the files (a None text leaves one out)."""

    def write(changes: dict[str, str | bytes | None] | None = None, *, base=CANONICAL, folder: str = "shop") -> Path:
        folder_path = tmp_path / folder
        folder_path.mkdir(parents=True, exist_ok=True)
        for name, text in {**base, **(changes or {})}.items():
            if isinstance(text, bytes):
                (folder_path / name).write_bytes(text)
            elif text is not None:
                (folder_path / name).write_text(text, encoding="utf-8")
        return folder_path

    return write


@pytest.fixture
def example_map() -> Path:
    """The shipped column map for the UCI Online Retail layout."""
    return EXAMPLE_MAP


@pytest.fixture
def shop_texts() -> dict[str, str]:
    """The canonical files' texts (a copy, to edit)."""
    return dict(CANONICAL)


@pytest.fixture
def online_retail_text() -> str:
    return ONLINE_RETAIL


@pytest.fixture
def online_retail_dir(write_shop) -> Path:
    """A folder with only ``online_retail.csv`` (the file name the example column map expects)."""
    return write_shop({"online_retail.csv": ONLINE_RETAIL}, base={}, folder="online_retail")
