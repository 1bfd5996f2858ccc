"""What every benchmark script shares: the machine line, GNU time parsing, writing results, verdict rows.

Scripts import it as ``reporting`` (they run with ``benchmarks/`` as their first path entry).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine_info() -> dict:
    """Date, platform, CPU count, Python version and the load average now (1, 5, 15 minutes)."""
    return {"date": dt.date.today().isoformat(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "load_average": os.getloadavg()}


def measured_line(machine: dict) -> str:
    """The results files' first line: when, where, and the load average when the figures were written
    (above 1.25 per CPU, a note that other processes shared the machine)."""
    load = float(machine["load_average"][0])
    shared = "; other processes shared the machine, so wall times are upper bounds" if load > 1.25 * machine["cpus"] else ""
    return (f"Measured {machine['date']} on {machine['platform']}, {machine['cpus']} CPUs, Python {machine['python']} "
            f"(load average at the end {load:.1f}{shared}).")


def parse_gnu_time(text: str) -> dict[str, float]:
    """Wall seconds and max RSS (GB) from ``/usr/bin/time -v`` output."""
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if not wall or not rss:
        raise RuntimeError(f"could not parse GNU time output:\n{text[-2000:]}")
    seconds = 0.0
    for part in wall.group(1).split(":"):
        seconds = seconds * 60 + float(part)
    return {"wall_s": round(seconds, 2), "max_rss_gb": round(int(rss.group(1)) / 1024**2, 3)}


def write_results(name: str, report: dict, markdown: str) -> None:
    """``results/<name>.json`` and ``results/<name>.md``, then the markdown on stdout."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
    print(markdown)


def verdict_rows(verdicts: dict[str, bool]) -> list[str]:
    """A markdown ``| target | met |`` table."""
    return ["| target | met |", "|---|---|"] + [f"| {name} | {'yes' if ok else 'no'} |"
                                                for name, ok in verdicts.items()]
