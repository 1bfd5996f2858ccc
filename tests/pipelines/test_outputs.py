"""The overwrite rule and the all-or-nothing writes of :mod:`pipelines.outputs`, with real writers killed midway."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from pipelines import outputs
from pipelines.data.tables import TABLE_FILES, TABLE_NAMES, write_tables
from pipelines.errors import OutputPathError

ROOT = Path(__file__).resolve().parents[2]


def tables(value: int, rows: int = 3) -> dict[str, pd.DataFrame]:
    return {name: pd.DataFrame({"id": [f"{name}{i}" for i in range(rows)], "value": [value] * rows})
            for name in TABLE_NAMES}


def contents(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}."))


def test_new_or_empty_folder_is_written(tmp_path):
    written = write_tables(tables(1), tmp_path / "new" / "data")
    assert [p.name for p in written] == [f"{n}.parquet" for n in TABLE_NAMES]
    (tmp_path / "empty").mkdir()
    write_tables(tables(1), tmp_path / "empty", "csv")
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == sorted(f"{n}.csv" for n in TABLE_NAMES)
    assert siblings(tmp_path / "empty") == []


def test_existing_tables_need_overwrite_and_are_replaced_as_a_set(tmp_path):
    folder = tmp_path / "data"
    write_tables(tables(1), folder, "csv")
    before = contents(folder)
    with pytest.raises(OutputPathError, match=r"--output-dir .*data: already holds tables \(customers.csv, "
                                              r"events.csv, products.csv, transactions.csv\); pass --overwrite"):
        write_tables(tables(2), folder, "parquet")
    assert contents(folder) == before
    write_tables(tables(2), folder, "parquet", overwrite=True)
    # the CSV set goes with the swap (a stale CSV beside the Parquet files would be a mixed set)
    assert sorted(contents(folder)) == sorted(f"{n}.parquet" for n in TABLE_NAMES)
    assert pd.read_parquet(folder / "events.parquet")["value"].tolist() == [2, 2, 2]
    assert siblings(folder) == []


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_with_other_files_is_refused_even_with_overwrite(tmp_path, overwrite):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "customers.csv").write_text("customer_id\nC1\n")  # a user's table, and a file of theirs
    (folder / "notes.txt").write_text("keep me")
    (folder / "archive").mkdir()
    before = {p.name for p in folder.iterdir()}
    with pytest.raises(OutputPathError, match=r"holds files that are not storefront tables \(archive, notes.txt\)"):
        write_tables(tables(1), folder, overwrite=overwrite)
    assert {p.name for p in folder.iterdir()} == before
    assert (folder / "notes.txt").read_text() == "keep me"
    assert (folder / "customers.csv").read_text() == "customer_id\nC1\n"


def test_a_file_where_a_folder_belongs_and_the_reverse(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputPathError, match=r"--output-dir .*file: .*file is a file, not a folder"):
        write_tables(tables(1), tmp_path / "file")
    with pytest.raises(OutputPathError, match=r"file is a file, not a folder"):
        write_tables(tables(1), tmp_path / "file" / "below")
    with pytest.raises(OutputPathError, match=r"--output .*: is a folder, not a file"):
        outputs.check_output_file(tmp_path, True, "--output")


def test_an_output_file_is_replaced_only_with_overwrite(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text("mine")
    with pytest.raises(OutputPathError, match=r"--output .*scores.csv: already exists; pass --overwrite"):
        outputs.write_file(path, lambda tmp: tmp.write_text("new"), overwrite=False)
    assert path.read_text() == "mine"
    outputs.write_file(path, lambda tmp: tmp.write_text("new"), overwrite=True)
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]


def test_a_failed_write_changes_nothing_and_leaves_no_temporary(tmp_path):
    folder = tmp_path / "data"
    write_tables(tables(1), folder)
    before = contents(folder)

    def fail(tmp: Path):
        (tmp / "customers.parquet").write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        outputs.write_folder(folder, fail, TABLE_FILES, overwrite=True)
    assert contents(folder) == before and siblings(folder) == []


def test_a_place_that_cannot_be_written_is_refused_before_the_work(tmp_path):
    with pytest.raises(OutputPathError, match=r"--output-dir /proc/storefront-test: cannot write in /proc"):
        outputs.check_output_folder("/proc/storefront-test", TABLE_FILES, False, "--output-dir", probe=True)


# --- writers killed with SIGKILL --------------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys, time
    import pandas as pd
    sys.path.insert(0, {root!r})
    from pipelines import outputs
    from pipelines.data.tables import TABLE_NAMES, write_tables
    pause = float(sys.argv[2])
    real_to_parquet = pd.DataFrame.to_parquet

    def slow_to_parquet(self, path, *args, **kwargs):  # one table at a time, so a kill lands between files
        real_to_parquet(self, path, *args, **kwargs)
        print("wrote", path, flush=True)
        time.sleep(pause)

    pd.DataFrame.to_parquet = slow_to_parquet
    if sys.argv[3] == "two-renames":  # the fallback of systems without renameat2(RENAME_EXCHANGE)
        import os
        outputs._exchange = lambda a, b: False
        real_rename = os.rename

        def rename(src, dst):
            real_rename(src, dst)
            if ".old-" in str(dst):
                print("between the renames", flush=True)
                time.sleep(60)

        outputs.os.rename = rename
    frames = {{name: pd.DataFrame({{"id": [f"{{name}}{{i}}" for i in range(200)], "value": [2] * 200}})
              for name in TABLE_NAMES}}
    write_tables(frames, sys.argv[1], overwrite=True)
    print("done", flush=True)
""")


def start_writer(folder: Path, pause: float, mode: str = "exchange") -> subprocess.Popen:
    code = WRITER.format(root=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", code, str(folder), str(pause), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def kill_after(proc: subprocess.Popen, marker: str, count: int = 1) -> list[str]:
    """SIGKILL ``proc`` once it printed ``marker`` ``count`` times; returns its lines."""
    lines = []
    deadline = time.monotonic() + 60
    while sum(marker in line for line in lines) < count:
        line = proc.stdout.readline()
        assert line or proc.poll() is None, (lines, proc.stderr.read())
        lines.append(line)
        assert time.monotonic() < deadline, lines
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)  # reaps it and closes the pipes
    assert proc.returncode == -signal.SIGKILL
    return lines


def values(folder: Path) -> set[int]:
    return {int(v) for name in TABLE_NAMES for v in pd.read_parquet(folder / f"{name}.parquet")["value"]}


@pytest.mark.parametrize("files_written", [1, 4])  # after the first table; all written, not swapped in
def test_a_writer_killed_midway_leaves_the_old_set_and_the_next_write_cleans_up(tmp_path, files_written):
    folder = tmp_path / "data"
    write_tables(tables(1), folder)
    old = contents(folder)
    kill_after(start_writer(folder, pause=2.0), "wrote", files_written)  # killed 2 s before its next step
    assert contents(folder) == old and values(folder) == {1}  # the old set, whole
    left = siblings(folder)
    assert len(left) == 1 and left[0].startswith(".data.tmp-")  # the killed writer's temporary
    write_tables(tables(3), folder, overwrite=True)  # the next write removes it (its pid is dead)
    assert values(folder) == {3} and siblings(folder) == []


def test_a_writer_killed_after_the_swap_leaves_the_new_set(tmp_path):
    folder = tmp_path / "data"
    write_tables(tables(1), folder)
    proc = start_writer(folder, pause=0.0)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "done" in out, err
    assert values(folder) == {2} and siblings(folder) == []


def test_a_kill_between_the_two_renames_of_the_fallback_is_repaired_by_the_next_write(tmp_path):
    folder = tmp_path / "data"
    write_tables(tables(1), folder)
    old = contents(folder)
    kill_after(start_writer(folder, pause=0.0, mode="two-renames"), "between the renames")
    assert not folder.exists()  # the only moment the fallback has no folder: the old set waits beside it
    assert any(name.startswith(".data.old-") for name in siblings(folder))
    repaired = outputs.clean_up_after_killed_writers(folder)
    assert repaired and contents(folder) == old
    assert siblings(folder) == []
    write_tables(tables(3), folder, overwrite=True)
    assert values(folder) == {3}


def test_temporaries_of_a_running_writer_are_left_alone(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    mine = tmp_path / f".data.tmp-{os.getpid()}-abc"
    mine.mkdir()
    dead = tmp_path / ".data.tmp-999999999-abc"  # above any pid_max: not running
    dead.mkdir()
    assert outputs.clean_up_after_killed_writers(folder) == [dead]
    assert mine.exists() and not dead.exists()
