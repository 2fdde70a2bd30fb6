"""GB 11643-1999 id numbers: the published examples, legacy upgrade, decoding, masking."""

import pandas as pd
import pytest

from monitor.validation import idcard


@pytest.mark.parametrize("number", ["11010519491231002X", "440524188001010014"])
def test_published_examples_are_valid(number):
    assert idcard.check_character(number[:17]) == number[-1]
    assert idcard.is_valid_id_number(number)


@pytest.mark.parametrize("number", ["110105194912310021", "440524188001010015"])
def test_a_wrong_check_character_is_caught(number):
    _, reason = idcard.normalize_id_numbers(pd.Series([number]))
    assert reason.tolist() == [idcard.ID_CHECK_DIGIT]


def test_legacy_15_digit_number_is_upgraded():
    normalized, reason = idcard.normalize_id_numbers(pd.Series(["110105491231002"]))
    assert normalized.tolist() == ["11010519491231002X"]
    assert reason.isna().all()
    upgraded = idcard.upgrade_legacy_id_number("440524800101001")
    assert upgraded[:17] == "44052419800101001"
    assert idcard.is_valid_id_number(upgraded)


def test_lowercase_x_and_spaces_are_normalised():
    normalized, reason = idcard.normalize_id_numbers(pd.Series([" 11010519491231002x "]))
    assert normalized.tolist() == ["11010519491231002X"]
    assert reason.isna().all()


@pytest.mark.parametrize(("number", "why"), [
    ("1101051949123100", idcard.ID_FORMAT),        # 16 characters
    ("11010519491231002Y", idcard.ID_FORMAT),      # not a check character
    ("110105194902300023", idcard.ID_BIRTH_DATE),  # 30 February
    ("110105491331002", idcard.ID_BIRTH_DATE),     # legacy number, month 13
])
def test_malformed_numbers_have_a_reason(number, why):
    first17 = number[:17]
    if len(number) == idcard.ID_LENGTH and why == idcard.ID_BIRTH_DATE:
        number = first17 + idcard.check_character(first17)
    _, reason = idcard.normalize_id_numbers(pd.Series([number]))
    assert reason.tolist() == [why]


def test_birth_date_and_sex_come_from_the_number():
    numbers = pd.Series(["11010519491231002X", "440524188001010014"])
    assert idcard.birth_dates(numbers).dt.strftime("%Y-%m-%d").tolist() == [
        "1949-12-31", "1880-01-01"]
    assert idcard.sexes(numbers).tolist() == ["女", "男"]


def test_masking_keeps_first_six_and_last_four():
    masked = idcard.mask_id_numbers(pd.Series(["11010519491231002X"])).iloc[0]
    assert masked == "110105********002X"
    assert len(masked) == idcard.ID_LENGTH
