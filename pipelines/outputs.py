"""What a command may write, in one place: the overwrite rule, a folder of tables swapped in as a set, and a
file renamed into place.

**The rule.** A command never deletes or overwrites a file it did not create:

* an output *file* that exists (``score-churn --output``) is refused unless ``--overwrite`` is given;
* an output *dataset folder* (``batch-score --engine spark --output``: Spark's Parquet part files) follows the
  folder rule below, with Spark's own file names (:func:`is_parquet_part`) as the project's files;
* an output *folder* of tables (``generate-data --output-dir``, ``ingest --output-dir``) is written when it is
  absent or empty. When it holds the project's own table files (the canonical tables, in either format) it is
  refused unless ``--overwrite`` is given, and then exactly that set is replaced. When it holds anything else
  (a file or a folder that is not one of those tables) it is refused, with ``--overwrite`` too: replacing the
  folder would lose those files, so choose an empty or new folder. Refusals raise
  :class:`~pipelines.errors.OutputPathError` (exit code 4) naming the path and what is in the way.

**All or nothing.** A folder's new contents are written into a temporary sibling folder
``.<name>.tmp-<pid>-<random>`` and then exchanged with the old folder in one atomic ``rename`` (Linux
``renameat2(RENAME_EXCHANGE)``; elsewhere, or on a file system without it, two renames: the old folder to
``.<name>.old-<pid>-<random>``, then the new one into place); the old set is deleted afterwards. A reader sees the
old set or the new one, never a mix. A file is written to ``.<name>.<random>.tmp`` beside it and renamed into
place. On an error or SIGTERM the temporary is removed before the command ends.

**Clean-up after a kill.** A writer killed with SIGKILL cannot clean up; it leaves its temporary sibling. The
next write to the same folder removes the temporaries of writers that are no longer running (the pid in the
name, on this host), and puts back an ``.old-`` folder when the kill fell between the two renames of the
fallback and the folder itself is missing.
"""

from __future__ import annotations

import ctypes
import errno
import glob
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable, TypeVar, Union

from pipelines.errors import OutputPathError

logger = logging.getLogger(__name__)

T = TypeVar("T")
OVERWRITE_HELP = ("replace an existing output (only the project's own table files are ever replaced; a folder "
                  "holding other files is refused)")
MAX_LISTED = 5
OwnFiles = Union[Iterable[str], Callable[[str], bool]]  # the names a command may replace, or a test of a name


def _owner(own_files: OwnFiles) -> Callable[[str], bool]:
    if callable(own_files):
        return own_files
    names = frozenset(own_files)
    return names.__contains__


def is_parquet_part(name: str) -> bool:
    """A file that Spark writes into a Parquet dataset folder (part files, ``_SUCCESS`` and their ``.crc``)."""
    name = name[1:-4] if name.startswith(".") and name.endswith(".crc") else name
    return name == "_SUCCESS" or (name.startswith("part-") and name.endswith(".parquet"))


def add_overwrite(parser, what: str = "the output") -> None:
    """The ``--overwrite`` option, with the same help everywhere (``--overwrite`` alone, or ``--overwrite true`` as
    MLproject passes it)."""
    from pipelines.options import bool_text

    parser.add_argument("--overwrite", type=bool_text, nargs="?", const=True, default=False,
                        help=f"{OVERWRITE_HELP}; without it {what} must not exist (default false)")


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    return shown + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


# --------------------------------------------------------------------------- checks


def check_output_folder(folder: str | Path, own_files: OwnFiles, overwrite: bool, option: str, *,
                        probe: bool = False) -> Path:
    """Refuse ``folder`` as an output folder unless the rule (module docstring) allows it; returns it resolved.

    ``own_files`` are the names the command writes and may replace (the project's table files), or a test of a
    name (:func:`is_parquet_part`). With ``probe``
    (a command's check before its work) the place is also tried for writing: a temporary folder is made beside
    it and removed at once, so a read-only place is refused before minutes of work, not after.
    """
    folder = Path(folder).expanduser()
    own = _owner(own_files)
    blocker = _file_in_the_way(folder)
    if blocker is not None:
        raise OutputPathError(f"{option} {folder}: {blocker} is a file, not a folder")
    if folder.is_dir():
        present = sorted(p.name for p in folder.iterdir())
        foreign = [name for name in present if not own(name) or not (folder / name).is_file()]
        if foreign:
            raise OutputPathError(
                f"{option} {folder}: holds files that are not storefront tables ({_listed(foreign)}); they would "
                f"be lost, so nothing was written: choose an empty or new folder")
        if present and not overwrite:
            raise OutputPathError(f"{option} {folder}: already holds tables ({_listed(present)}); pass "
                                  "--overwrite to replace them")
    if probe:
        _probe_writable(folder, option)
    return folder.resolve()


def check_output_file(path: str | Path, overwrite: bool, option: str, *, probe: bool = False) -> Path:
    """Refuse ``path`` as an output file when it is a folder, or exists without ``overwrite``; returns it. With
    ``probe``, also refuse a place that cannot be written (as :func:`check_output_folder`)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise OutputPathError(f"{option} {path}: is a folder, not a file")
    blocker = _file_in_the_way(path.parent)
    if blocker is not None:
        raise OutputPathError(f"{option} {path}: {blocker} is a file, not a folder")
    if path.exists() and not path.is_file():
        raise OutputPathError(f"{option} {path}: exists and is not a regular file")
    if path.exists() and not overwrite:
        raise OutputPathError(f"{option} {path}: already exists; pass --overwrite to replace it")
    if probe:
        _probe_writable(path, option)
    return path


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _file_in_the_way(folder: Path) -> Path | None:
    """``folder`` or the first of its ancestors that exists, when that is not a folder."""
    path = _nearest_existing(folder)
    return None if path.is_dir() else path


def _probe_writable(path: Path, option: str) -> None:
    """Make and remove a temporary folder where ``path``'s temporary will go (its nearest existing ancestor)."""
    place = _nearest_existing(path.absolute().parent)
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".storefront-probe-", dir=place))
    except OSError as exc:
        raise _cannot_write(option, path, place, exc) from None


def _cannot_write(option: str, path: Path, place: Path, exc: OSError) -> OutputPathError:
    return OutputPathError(f"{option} {path}: cannot write in {place} ({exc.strerror})")


def _mkdir(folder: Path, option: str, path: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cannot_write(option, path, folder, exc) from None


# --------------------------------------------------------------------------- writing


def write_folder(folder: str | Path, write: Callable[[Path], T], own_files: OwnFiles, *, overwrite: bool,
                 option: str = "--output-dir") -> T:
    """Write a folder's new contents with ``write(temporary_folder)`` and swap them in as a whole.

    Checks the rule first (:func:`check_output_folder`; again just before the swap, as the folder may have
    changed meanwhile); returns what ``write`` returned. Nothing of ``folder`` changes when ``write`` fails.
    """
    own = _owner(own_files)
    folder = check_output_folder(folder, own, overwrite, option)
    _mkdir(folder.parent, option, folder)
    clean_up_after_killed_writers(folder)
    folder = check_output_folder(folder, own, overwrite, option)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=_prefix(folder, "tmp"), dir=folder.parent))
    except OSError as exc:
        raise _cannot_write(option, folder, folder.parent, exc) from None
    try:
        result = write(tmp)
        written = sorted(p.name for p in tmp.iterdir())
        if not all(own(name) for name in written):
            raise AssertionError(f"write() made files it may not replace later: {written}")
        check_output_folder(folder, own, overwrite, option)
        _swap_in(tmp, folder)
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the old contents after a swap, or the unfinished new ones


def write_file(path: str | Path, write: Callable[[Path], None], *, overwrite: bool, option: str = "--output") -> Path:
    """Write ``path`` through ``write(temporary_path)`` and rename it into place (complete or absent)."""
    path = check_output_file(path, overwrite, option)
    _mkdir(path.parent, option, path)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _cannot_write(option, path, path.parent, exc) from None
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        check_output_file(path, overwrite, option)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _prefix(folder: Path, kind: str) -> str:
    return f".{folder.name}.{kind}-{os.getpid()}-"


def _swap_in(new: Path, folder: Path) -> None:
    """Put ``new`` at ``folder``; afterwards ``new`` holds the old contents (or is gone when there were none)."""
    if not folder.exists():
        os.rename(new, folder)  # atomic; fails if another writer created a non-empty folder meanwhile
        return
    if _exchange(new, folder):
        return
    old = Path(tempfile.mkdtemp(prefix=_prefix(folder, "old"), dir=folder.parent))
    os.rename(folder, old)  # replaces the empty placeholder
    os.rename(new, folder)
    os.rename(old, new)  # so the caller's clean-up removes the old contents


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with ``renameat2(RENAME_EXCHANGE)``; False when the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def clean_up_after_killed_writers(folder: Path) -> list[Path]:
    """Remove the temporary siblings of ``folder`` left by writers that are no longer running (module docstring);
    returns what was removed or put back."""
    done = []
    for kind in ("old", "tmp"):  # an old set first: it is put back when the folder is missing
        for path in sorted(folder.parent.glob(f".{glob.escape(folder.name)}.{kind}-*")):
            try:
                pid = int(path.name[len(f".{folder.name}.{kind}-"):].split("-", 1)[0])
            except ValueError:
                continue
            if pid == os.getpid() or _pid_alive(pid):
                continue
            if kind == "old" and not folder.exists():
                os.rename(path, folder)
                logger.warning("%s was missing after a killed write: put back the previous tables from %s",
                               folder, path.name)
            else:
                shutil.rmtree(path, ignore_errors=True)
                logger.info("removed %s, left by a killed writer (pid %d)", path, pid)
            done.append(path)
    return done
