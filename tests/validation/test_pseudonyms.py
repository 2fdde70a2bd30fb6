"""Pseudonymised mode: no full id number in the lake, and the same referral files as plain mode.

The same deliveries go into two homes, the trained sample county (plain) and
a new one with ``MONITOR_PSEUDONYM_KEY`` set, and each runs the nightly job
once with the same model.
"""

from __future__ import annotations

import datetime as dt
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.contract.sources import SOURCES
from monitor.validation.idcard import mask_id_numbers
from monitor.validation.pseudonyms import pseudonym_key

DAY = dt.date(2026, 6, 30)
SECRET = "correct horse battery staple 渝"
runner = CliRunner()
PERSON_SOURCES = [name for name, source in SOURCES.items()
                  if "id_number" in {spec.name for spec in source.columns}]


def run(home, monkeypatch, secret):
    if secret is None:
        monkeypatch.delenv("MONITOR_PSEUDONYM_KEY", raising=False)
    else:
        monkeypatch.setenv("MONITOR_PSEUDONYM_KEY", secret)
    return runner.invoke(app, ["run", "--home", str(home), "--date", DAY.isoformat()])


@pytest.fixture(scope="module")
def homes(trained_home, tmp_path_factory):
    """The trained sample county (plain), and a new home of its deliveries and model."""
    plain, day = trained_home
    assert day == DAY
    pseudo = tmp_path_factory.mktemp("pseudonyms") / "pseudo"
    for folder in ("landing", "models"):
        # The model reads no id number: the same one scores both homes.
        shutil.copytree(plain / folder, pseudo / folder)
    with pytest.MonkeyPatch.context() as patch:
        for home, secret in ((plain, None), (pseudo, SECRET)):
            result = run(home, patch, secret)
            assert result.exit_code == 0, result.output
    return plain, pseudo


def referral_files(home):
    folder = home / "out" / DAY.isoformat() / "referrals"
    return {path.relative_to(folder).as_posix(): path.read_bytes()
            for path in sorted(folder.glob("*/*.csv"))}


def lake_ids(home, source):
    return pd.read_parquet(home / "lake" / source, columns=["id_number"])["id_number"].dropna()


def test_pseudonymised_mode_gives_the_same_referral_files(homes):
    plain, pseudo = homes
    files = referral_files(plain)
    assert len(files) >= 2
    assert referral_files(pseudo) == files
    warnings = [pd.read_parquet(home / "out" / DAY.isoformat() / "warnings.parquet")
                for home in homes]
    columns = ["household_id", "rule", "level", "warning_id", "person_id_masked"]
    assert warnings[1][columns].equals(warnings[0][columns])


def test_the_pseudonymised_lake_holds_no_full_id_number(homes):
    plain, pseudo = homes
    for source in PERSON_SOURCES:
        real, hidden = lake_ids(plain, source), lake_ids(pseudo, source)
        assert len(hidden) == len(real) > 0, source
        assert not set(hidden) & set(real), source
        assert not hidden.str.fullmatch(r"[0-9]{17}[0-9X]").any(), source
        # What a referral file may show survives: the masked number.
        assert sorted(mask_id_numbers(hidden)) == sorted(mask_id_numbers(real)), source
    # One person, one pseudonym, in every source.
    registry = set(lake_ids(pseudo, "registry"))
    assert set(lake_ids(pseudo, "assistance")) <= registry


def test_the_key_is_written_nowhere(homes):
    _, pseudo = homes
    secrets = [SECRET.encode(), pseudonym_key(SECRET).encode("latin-1")]
    for path in pseudo.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert not any(secret in content for secret in secrets), path


def test_a_run_without_the_key_or_with_another_is_refused(homes, monkeypatch):
    plain, pseudo = homes
    missing = run(pseudo, monkeypatch, None)
    assert missing.exit_code == 1
    assert "run not started" in missing.output and "set MONITOR_PSEUDONYM_KEY" in " ".join(
        missing.output.split())
    other = run(pseudo, monkeypatch, "another secret of enough length")
    assert other.exit_code == 1 and "is not the key" in " ".join(other.output.split())
    mixed = run(plain, monkeypatch, SECRET)
    assert mixed.exit_code == 1 and "already holds plain id numbers" in " ".join(
        mixed.output.split())
    short = run(plain, monkeypatch, "short")
    assert short.exit_code == 1 and "shorter than 16" in " ".join(short.output.split())
