"""Free text the registry records: 1 to N printable characters, said plainly when not."""

import pytest

from ledger.domain.errors import InvalidCommandError
from ledger.domain.text import check_text


class Refused(Exception):
    pass


def test_text_within_its_length_is_returned_as_given():
    assert check_text("the name", "  Café Tambopata ", most=20) == "  Café Tambopata "


@pytest.mark.parametrize("value", [None, "", "   ", 42, b"bytes"])
def test_missing_blank_or_non_text_values_are_refused_as_needed(value):
    with pytest.raises(Refused, match=r"^the name is needed \(1-20 characters\)$"):
        check_text("the name", value, most=20, error=Refused)


def test_too_long_text_is_refused_with_its_length():
    with pytest.raises(InvalidCommandError, match="the name is too long: 21 characters, at most 20"):
        check_text("the name", "x" * 21, most=20)


def test_exactly_the_most_is_accepted():
    assert check_text("the name", "x" * 20, most=20) == "x" * 20


@pytest.mark.parametrize("value", ["a\x00b", "a\u202eb", "a\nb"])
def test_control_characters_and_bidi_overrides_are_refused(value):
    with pytest.raises(Refused, match="control character"):
        check_text("the name", value, most=20, error=Refused)


def test_line_breaks_only_where_multiline_text_is_asked_for():
    assert check_text("the reason", "one\ntwo", most=20, multiline=True) == "one\ntwo"
    with pytest.raises(Refused, match=r"U\+0000"):
        check_text("the reason", "one\x00", most=20, multiline=True, error=Refused)
