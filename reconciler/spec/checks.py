"""Value checks shared by the spec models and the config: hostnames, emails, slugs, env-var names.

Each check takes the raw value and returns the normalised one, or raises ``ValueError`` with a
message written for the person editing the YAML (pydantic turns it into a located issue).
"""

from __future__ import annotations

import re
import unicodedata

import idna
from email_validator import EmailNotValidError, validate_email

from reconciler.quantities import parse_quantity
from reconciler.spec.yamlsource import shorten

_LDH_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,126}[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_DAYS = {"d": 1.0, "h": 1 / 24, "w": 7.0}
# Scripts one label may combine (UTS #39 "highly restrictive"): Japanese, Korean, Chinese with Latin.
_SCRIPT_SETS = ({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}, {"LATIN", "HAN", "HANGUL"}, {"LATIN", "HAN", "BOPOMOFO"})
# Tab and line breaks are text (multi-line hook commands); other C0 controls (ESC starts terminal
# escape sequences) and bidi overrides are not. DEL and C1 controls pass: CPS stores Latin-1 text.
_BIDI_CONTROLS = {*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C}


def _script(char: str) -> str | None:
    """The Unicode script of a letter, from its character name (None for digits, hyphens, marks)."""
    if not char.isalpha():
        return None
    first = unicodedata.name(char, "").split(" ")[0]
    if "-" in first:  # e.g. KATAKANA-HIRAGANA PROLONGED SOUND MARK, shared by both
        return None
    return "HAN" if first == "CJK" else first or None


def _mixed_script(unicode_name: str) -> str | None:
    for label in unicode_name.split("."):
        scripts = {s for s in map(_script, label) if s}
        if len(scripts) > 1 and not any(scripts <= allowed for allowed in _SCRIPT_SETS):
            return f"label {label!r} mixes {' and '.join(sorted(scripts))} letters (a look-alike of another name?)"
    return None


def normalize_hostname(value: str) -> str:
    """Return ``value`` as a lower-case A-label hostname, keeping a leading ``*.`` wildcard label.

    Unicode names are converted to punycode (IDNA 2008 with UTS 46 mapping); names already in
    punycode must decode. A name needs at least two labels, no trailing dot, and letters, digits
    and hyphens only; ``*`` is allowed only as the whole leftmost label.
    """
    if not isinstance(value, str):  # pragma: no cover - pydantic checks the type first
        raise ValueError(f"{value!r} is not a valid hostname")
    wildcard = value.startswith("*.")
    rest = value[2:] if wildcard else value

    def bad(why: str) -> ValueError:
        return ValueError(f"{shorten(repr(value), 120)} is not a valid hostname ({shorten(why, 160)})")

    if not rest:
        raise bad("empty")
    if rest.endswith("."):
        raise bad("no trailing dot")
    if "*" in rest:
        raise bad("'*' is only allowed as the whole leftmost label, as in '*.example.com'")
    try:
        ascii_name = idna.encode(rest, uts46=True).decode("ascii")
        # An xn-- label that is not valid punycode/IDNA is rejected here.
        unicode_name = idna.decode(ascii_name)
    except (idna.IDNAError, UnicodeError) as exc:
        raise bad(str(exc).rstrip(".") or "invalid characters") from None
    if ascii_name.endswith("."):  # a trailing dot spelt another way, e.g. the ideographic full stop
        raise bad("no trailing dot")
    mixed = _mixed_script(unicode_name)
    if mixed:
        raise bad(mixed)
    labels = ascii_name.lower().split(".")
    if len(labels) < 2:
        raise bad("a fully qualified name needs at least two labels")
    for label in labels:
        if not _LDH_LABEL.match(label):
            raise bad(f"label {label!r} may only hold letters, digits and inner hyphens")
    if labels[-1].isdigit():
        raise bad("IP addresses are not hostnames")
    if len(ascii_name) > 253:
        raise bad("longer than 253 characters")
    return ("*." if wildcard else "") + ascii_name.lower()


def is_wildcard(hostname: str) -> bool:
    return hostname.startswith("*.")


def check_email(value: str) -> str:
    """Syntax check only; deliverability is never checked (that would need the network)."""
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"{value!r} is not a valid email address ({str(exc).rstrip('.')})") from None
    return value


def check_text(value: str) -> str:
    """Free text sent to CPS or run as a command: no control characters (beyond tab and line breaks)
    and no bidirectional overrides, which can make text display differently from what it is."""
    for index, char in enumerate(value):
        code = ord(char)
        if (code < 0x20 and char not in "\t\n\r") or code in _BIDI_CONTROLS:
            raise ValueError(f"contains the invisible control character U+{code:04X} at position {index + 1}; "
                             "remove it")
    return value


def check_slug(value: str) -> str:
    if not _SLUG.match(value):
        raise ValueError(
            f"{value!r} is not a valid name: use lower-case letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit (at most 128 characters)"
        )
    return value


def check_env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(
            f"{value!r} is not an environment variable name; give the NAME of a variable that holds "
            "the secret (e.g. RFC2136_TSIG_SECRET), never the secret itself"
        )
    return value


def check_country(value: str) -> str:
    if not _COUNTRY.match(value):
        raise ValueError(f"{value!r} is not a two-letter upper-case ISO 3166 country code (e.g. 'US')")
    return value


def parse_days(value: object) -> object:
    """``"30d"`` -> 30.0 days (also ``h`` hours, ``w`` weeks; a bare number is days); anything but a
    string passes through for pydantic to check."""
    return parse_quantity(value, _DAYS, "a number of days (e.g. 30d, 4w, 720h, or 30)")
