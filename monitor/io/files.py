"""Files written atomically: under a temporary name first, moved into place when complete.

One scheme for every writer under the home (lake, quarantine, state, the
ingest manifest): a reader never sees half a file, and a killed process
leaves only a hidden temporary that :func:`monitor.io.outputs.remove_leftovers`
recognises by the process id in its name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def temporary_path(target: Path) -> Path:
    """The name a file has while it is written: hidden, with the writer's process id.

    Two processes never share one; readers never look at it (it lacks the
    ``.parquet`` suffix), and :func:`monitor.io.outputs.remove_leftovers`
    removes a dead process's.
    """
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a :func:`temporary_path` for ``target``; move it into place if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(target)
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            temporary.unlink()


def write_table(table: pa.Table, target: Path, row_group_size: int | None = None) -> None:
    """Write an Arrow table to Parquet atomically (``row_group_size``: rows per row group)."""
    with atomic_path(target) as temporary:
        pq.write_table(table, temporary, row_group_size=row_group_size)


def write_parquet(frame: pd.DataFrame, target: Path, row_group_size: int | None = None) -> None:
    """Write a DataFrame to Parquet atomically (``row_group_size``: rows per row group)."""
    write_table(pa.Table.from_pandas(frame, preserve_index=False), target, row_group_size)
