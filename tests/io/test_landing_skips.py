"""Nothing under landing/ is skipped without a word (hostile input round two, issue 20).

Every entry is ingested, rejected, or named in a notice that the run prints
and keeps in its manifest: a mistyped future year, a folder name that only
looks like a date, a link to nothing or out of the home, a named pipe.
"""

from __future__ import annotations

import os
import threading

import pytest
from deliveries import DELIVERY, good_frame, write_delivery

from monitor.io.ingest import ingest_landing
from monitor.io.lake import read_source
from monitor.io.landing import discover


def _with_a_good_delivery(home):
    write_delivery(home, "registry", good_frame("registry"))


def _notices(home) -> list[str]:
    report = ingest_landing(home, DELIVERY)
    assert len(read_source(home, "registry", DELIVERY)) == 3  # the good delivery, whole
    return report.notices


def test_a_delivery_dated_years_ahead_is_named_as_a_mistyped_year(home):
    _with_a_good_delivery(home)
    typo = DELIVERY.replace(year=DELIVERY.year + 36)
    write_delivery(home, "income", good_frame("income"), delivery=typo)
    notices = _notices(home)
    assert any(f"landing/income/{typo}" in notice and "mistyped year" in notice
               for notice in notices), notices


@pytest.mark.parametrize("name", ["20240630", "2024-6-30", "2024-W26-7"])
def test_a_folder_name_that_only_looks_like_a_date_is_named_not_read(home, name):
    _with_a_good_delivery(home)
    folder = home / "landing" / "income" / name
    folder.mkdir(parents=True)
    good_frame("income").to_csv(folder / "data.csv", index=False)
    notices = _notices(home)
    assert f"landing/income/{name}: folder name is not a delivery date YYYY-MM-DD, ignored" \
        in notices
    assert read_source(home, "income", DELIVERY).empty


def test_a_dangling_link_and_a_named_pipe_are_named_and_nothing_blocks(home):
    _with_a_good_delivery(home)
    folder = home / "landing" / "registry" / DELIVERY.isoformat()
    (folder / "gone.csv").symlink_to(home / "nowhere.csv")
    os.mkfifo(folder / "pipe.csv")
    result = {}
    reader = threading.Thread(target=lambda: result.update(notices=_notices(home)),
                              daemon=True)
    reader.start()
    reader.join(timeout=60)
    assert not reader.is_alive(), "the ingest blocked on the named pipe"
    notices = result["notices"]
    assert any("gone.csv: a link to nothing (dangling), ignored" in n for n in notices)
    assert any("pipe.csv: not a regular file" in n for n in notices)


def test_a_delivery_linked_from_outside_the_home_is_refused_unless_allowed(home, tmp_path,
                                                                           monkeypatch):
    _with_a_good_delivery(home)
    outside = tmp_path / "elsewhere" / DELIVERY.isoformat()
    outside.mkdir(parents=True)
    good_frame("income").to_csv(outside / "data.csv", index=False)
    (home / "landing" / "income").mkdir(parents=True)
    (home / "landing" / "income" / DELIVERY.isoformat()).symlink_to(outside)
    files, notices = discover(home, DELIVERY)
    assert not [f for f in files if f.source == "income"]
    assert any("outside the home: not followed" in n and "MONITOR_LANDING_LINKS" in n
               for n in notices)
    monkeypatch.setenv("MONITOR_LANDING_LINKS", "follow")
    files, notices = discover(home, DELIVERY)
    assert [f.source for f in files if f.source == "income"] == ["income"]


@pytest.mark.parametrize(("error", "words"), [
    (PermissionError(13, "Permission denied"), "cannot be read (Permission denied)"),
    (FileNotFoundError(2, "No such file or directory"), "(No such file or directory)"),
])
def test_a_file_the_account_cannot_read_is_named_and_the_night_goes_on(home, monkeypatch, error,
                                                                        words):
    """A file copied in with another user's permissions (or moved away) once failed the run."""
    import monitor.io.ingest

    _with_a_good_delivery(home)
    locked = write_delivery(home, "income", good_frame("income"), name="locked")
    hash_of = monitor.io.ingest.sha256_of

    def refuse(path):
        if path == locked:
            raise error
        return hash_of(path)

    monkeypatch.setattr(monitor.io.ingest, "sha256_of", refuse)
    notices = _notices(home)
    [said] = [notice for notice in notices if "locked.csv" in notice]
    assert said.startswith(f"landing/income/{DELIVERY}/locked.csv: ") and words in said
    assert said.endswith("not ingested; the other files are")
    assert read_source(home, "income", DELIVERY).empty
    # Readable again the next night: ingested then.
    monkeypatch.setattr(monitor.io.ingest, "sha256_of", hash_of)
    ingest_landing(home, DELIVERY)
    assert len(read_source(home, "income", DELIVERY)) == len(good_frame("income"))
