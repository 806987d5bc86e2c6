"""Free text the ledger records (beneficiaries, names, reasons): printable characters only."""

from __future__ import annotations

import unicodedata

from ledger.domain.errors import InvalidCommandError

# Bidi embeddings, overrides and isolates: they make a public name read as something else.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LINE_BREAKS = frozenset("\n\r\t")


def check_printable(what: str, text: str, *, multiline: bool = False,
                    error: type[Exception] = InvalidCommandError) -> None:
    """Raises ``error`` if ``text`` holds a control character (NUL among them: the
    PostgreSQL read model cannot store it), a lone surrogate or a bidi override. Line breaks
    and tabs are allowed only in ``multiline`` text."""
    for character in text:
        if multiline and character in _LINE_BREAKS:
            continue
        if character in _BIDI_CONTROLS or unicodedata.category(character) in ("Cc", "Cs"):
            raise error(
                f"{what} contains the control character U+{ord(character):04X}: "
                "only printable text is accepted")


def check_text(what: str, value: object, *, most: int, multiline: bool = False,
               error: type[Exception] = InvalidCommandError) -> str:
    """``value`` if it is text of 1 to ``most`` characters, not only blanks, and printable
    (as ``check_printable``); else raises ``error`` saying what is wrong with ``what``."""
    if not isinstance(value, str) or not value.strip():
        raise error(f"{what} is needed (1-{most} characters)")
    if len(value) > most:
        raise error(f"{what} is too long: {len(value):,} characters, at most {most}")
    check_printable(what, value, multiline=multiline, error=error)
    return value
