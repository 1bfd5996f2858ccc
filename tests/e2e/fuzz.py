"""A bounded HTTP fuzz of a real `mlflow models serve` server: a fixed corpus of malformed requests plus seeded
random mutations of a good one.

:func:`fuzz` sends every payload, and after each one checks ``/ping``. It asserts that no answer is a 5xx and that
no 400 is MLflow's "unexpected error while evaluating the model" (what MLflow answers when the model raises
anything but its own 400: a bug of the project's code that MLflow hides behind a 400). It returns the statuses
seen. MLflow's own 500s (a POST without ``Content-Type``, JSON nested about 1,000 deep) happen before the model
runs; :func:`mlflow_500s` sends exactly those and checks that the server keeps serving (README, "Serving").
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass

import requests

UNEXPECTED = "Encountered an unexpected error while evaluating the model"
ODD_VALUES = [None, True, False, 0, -1, 1.5, 2.5, 2.0, 1e308, -1e308, 10**30, "", " ", "?", "NaN", "inf", "text",
              "\u00e9\u00e8\u4e2d", "1" * 500, {"a": 1}, [1, 2], [], {}, [[1]], {"$gt": ""}]


@dataclass
class Payload:
    name: str
    body: bytes
    content_type: str | None = "application/json"
    expect: tuple[int, ...] = ()  # the statuses it may get (empty: any below 500)


def _json(name: str, obj, **kw) -> Payload:
    return Payload(name, json.dumps(obj).encode(), **kw)


def corpus(record: dict, params: dict | None = None, max_rows: int = 1000) -> list[Payload]:
    """The fixed corpus for a model whose good request row is ``record`` (and good ``params``)."""
    params = params or {}
    good = {"dataframe_records": [record], **({"params": params} if params else {})}
    out = [_json("good", good, expect=(200,)),
           _json("good, split orientation", {"dataframe_split": {"columns": list(record), "data": [list(record.values())]},
                                            **({"params": params} if params else {})}, expect=(200,)),
           _json("no rows", {"dataframe_records": []}),
           _json("rows over the limit", {"dataframe_records": [record] * (max_rows + 1)}, expect=(400,)),
           _json("an extra column", {"dataframe_records": [{**record, "zzz": 1}]}),
           _json("unknown param", {**good, "params": {**params, "zzz": 1}}),
           _json("params not an object", {**good, "params": [1]}),
           _json("records not a list", {"dataframe_records": record}),
           _json("rows not objects", {"dataframe_records": [1, 2]}),
           _json("unknown key", {"foo": [record]}, expect=(400,)),
           _json("top-level list", [record], expect=(400,)),
           _json("top-level string", "hello", expect=(400,)),
           _json("top-level null", None, expect=(400,)),
           _json("inputs (columnar)", {"inputs": {k: [v] for k, v in record.items()}}),
           _json("instances", {"instances": [record]}),
           Payload("empty body", b"", expect=(400,)),
           Payload("truncated JSON", json.dumps(good).encode()[:-3], expect=(400,)),
           Payload("not JSON", b"customer_id=C1", expect=(400,)),
           Payload("invalid UTF-8", b'{"dataframe_records": [{"\xff": 1}]}', expect=(400,)),
           Payload("nested 200 deep", b'{"dataframe_records": ' + b"[" * 200 + b"]" * 200 + b"}", expect=(400,)),
           Payload("charset latin-1", json.dumps(good).encode(), "application/json; charset=latin-1", expect=(415,)),
           Payload("form content type", json.dumps(good).encode(), "application/x-www-form-urlencoded", expect=(415,)),
           Payload("CSV body", (",".join(record) + "\n" + ",".join(map(str, record.values())) + "\n").encode(),
                   "text/csv"),
           Payload("CSV garbage", b"\x00\x01,\n\xff", "text/csv", expect=(400,)),
           Payload("Parquet garbage", b"PAR1", "application/vnd.apache.parquet", expect=(400,))]
    for column in record:
        missing = {k: v for k, v in record.items() if k != column}
        out.append(_json(f"without {column}", {"dataframe_records": [missing]}, expect=(400,)))
        for value in ODD_VALUES:
            out.append(_json(f"{column} = {json.dumps(value)[:30]}", {"dataframe_records": [{**record, column: value}]}))
        out.append(_json(f"{column} null in row 2 of 3",
                         {"dataframe_records": [record, record, {**record, column: None}]}))
    for name in params:
        for value in ODD_VALUES:
            out.append(_json(f"param {name} = {json.dumps(value)[:30]}", {**good, "params": {**params, name: value}}))
    return out


def mutations(record: dict, params: dict | None, seed: int, count: int) -> list[Payload]:
    """``count`` seeded random mutations of the good request: values swapped, columns dropped or renamed, rows
    repeated, params scrambled."""
    rng = random.Random(seed)
    params = dict(params or {})
    pool = ODD_VALUES + [rng.uniform(-1e6, 1e6) for _ in range(10)] + [rng.randint(-10**6, 10**6) for _ in range(10)]
    out = []
    for i in range(count):
        row = dict(record)
        for _ in range(rng.randint(1, 3)):
            column = rng.choice(list(record))
            action = rng.random()
            if action < 0.7:
                row[column] = rng.choice(pool)
            elif action < 0.85:
                row.pop(column, None)
            else:
                row[column + rng.choice(["_", "X", " "])] = row.pop(column, None)
        rows = [row] * rng.randint(1, 4)
        body = {"dataframe_records": rows}
        if params and rng.random() < 0.5:
            body["params"] = {k: (rng.choice(pool) if rng.random() < 0.5 else v) for k, v in params.items()}
        out.append(_json(f"mutation {i}", body))
    return out


def fuzz(url: str, payloads: list[Payload]) -> Counter:
    """Send each payload; assert no 5xx, no hidden project error, the expected status, ``/ping`` alive after each."""
    statuses: Counter = Counter()
    for p in payloads:
        headers = {"Content-Type": p.content_type} if p.content_type else {}
        answer = requests.post(f"{url}/invocations", data=p.body, headers=headers, timeout=60)
        statuses[answer.status_code] += 1
        assert answer.status_code < 500, (p.name, answer.status_code, answer.text[:500])
        assert UNEXPECTED not in answer.text, (p.name, answer.text[:2000])
        if p.expect:
            assert answer.status_code in p.expect, (p.name, answer.status_code, answer.text[:500])
        if answer.status_code == 400:
            assert answer.json()["message"], p.name
        assert requests.get(f"{url}/ping", timeout=10).status_code == 200, p.name
    return statuses


def mlflow_500s(url: str, good: dict) -> list[tuple[str, int, str]]:
    """The two requests MLflow 3.17's scoring server answers 500 before the model runs; the server keeps serving."""
    import http.client
    from urllib.parse import urlparse

    host = urlparse(url)
    seen = []
    for name, body, headers in (
        ("POST without Content-Type", json.dumps(good).encode(), {}),
        ("JSON nested 5,000 deep", b'{"dataframe_records": ' + b"[" * 5000 + b"]" * 5000 + b"}",
         {"Content-Type": "application/json"}),
    ):
        connection = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
        connection.request("POST", "/invocations", body=body, headers=headers)  # no default Content-Type
        answer = connection.getresponse()
        seen.append((name, answer.status, answer.read().decode()))
        connection.close()
        assert requests.get(f"{url}/ping", timeout=10).status_code == 200, name
    return seen
