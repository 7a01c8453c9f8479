"""Internationalised host names for people.

Specs, state and CPS hold every host name as lower-case A-labels (punycode, IDNA 2008), so that one
name has one spelling everywhere. People read the Unicode form: wherever a name with an ``xn--``
label is shown (plan and status, in text and markdown), its Unicode form goes beside it, as in
``xn--bcher-kva.example (bücher.example)``. Machine formats (JSON, saved plans, state) keep the
A-label only.
"""

from __future__ import annotations

import re

import idna

__all__ = ["unicode_name", "with_unicode"]

_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_HOST = re.compile(rf"(?<![\w.-])(?:\*\.)?{_LABEL}(?:\.{_LABEL})+(?![\w-])", re.IGNORECASE)


def unicode_name(name: str) -> str | None:
    """The Unicode form of ``name`` when it has an ``xn--`` label (a ``*.`` wildcard is kept);
    None for a plain ASCII name or one that does not decode."""
    if "xn--" not in name.lower():
        return None
    wildcard = name.startswith("*.")
    try:
        decoded = idna.decode(name[2:] if wildcard else name)
    except (idna.IDNAError, UnicodeError):
        return None
    return ("*." if wildcard else "") + decoded


def with_unicode(text: str) -> str:
    """``text`` with the Unicode form after every punycode host name in it."""
    def annotate(match: re.Match[str]) -> str:
        name = match.group(0)
        shown = unicode_name(name)
        return f"{name} ({shown})" if shown else name
    return _HOST.sub(annotate, text)
