"""Value checks shared by the spec models and the config: hostnames, emails, slugs, env-var names.

Each check takes the raw value and returns the normalised one, or raises ``ValueError`` with a
message written for the person editing the YAML (pydantic turns it into a located issue).
"""

from __future__ import annotations

import re

import idna
from email_validator import EmailNotValidError, validate_email

_LDH_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,126}[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


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
        return ValueError(f"{value!r} is not a valid hostname ({why})")

    if not rest:
        raise bad("empty")
    if rest.endswith("."):
        raise bad("no trailing dot")
    if "*" in rest:
        raise bad("'*' is only allowed as the whole leftmost label, as in '*.example.com'")
    try:
        ascii_name = idna.encode(rest, uts46=True).decode("ascii")
        # An xn-- label that is not valid punycode/IDNA is rejected here.
        idna.decode(ascii_name)
    except (idna.IDNAError, UnicodeError) as exc:
        raise bad(str(exc).rstrip(".") or "invalid characters") from None
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
