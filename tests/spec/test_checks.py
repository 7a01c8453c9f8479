from __future__ import annotations

import pytest

from reconciler.spec.checks import check_country, check_email, check_env_name, check_slug, normalize_hostname


@pytest.mark.parametrize("raw,expected", [
    ("www.example.com", "www.example.com"), ("WWW.Example.COM", "www.example.com"),
    ("bücher.example", "xn--bcher-kva.example"), ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("*.example.com", "*.example.com"), ("a-b.c-d.example", "a-b.c-d.example"),
])
def test_valid_hostnames_are_normalised(raw: str, expected: str) -> None:
    assert normalize_hostname(raw) == expected


@pytest.mark.parametrize("raw,why", [
    ("exa mple.com", "U+0020"), ("a_b.example.com", "U+005F"), ("example.com.", "trailing dot"),
    ("localhost", "two labels"), ("a.*.example.com", "leftmost"), ("**.example.com", "leftmost"),
    ("-a.example.com", "hyphen"), ("a..example.com", ""), ("192.0.2.1", "IP addresses"),
    ("xn--zz.example", "A-label"), ("*.", "empty"), ("a" * 64 + ".example", "too long"), ("", ""),
])
def test_invalid_hostnames(raw: str, why: str) -> None:
    with pytest.raises(ValueError) as info:
        normalize_hostname(raw)
    assert f"{raw!r} is not a valid hostname" in str(info.value) and why.lower() in str(info.value).lower()


def test_email() -> None:
    assert check_email("ops@example.com") == "ops@example.com"
    with pytest.raises(ValueError, match="not a valid email"):
        check_email("ops@")
    # deliverability is never checked: a domain without mail servers is fine, offline
    assert check_email("ops@no-such-host.example.net") == "ops@no-such-host.example.net"


@pytest.mark.parametrize("good", ["www", "www-example-com", "a.b_c-1", "0"])
def test_slug_ok(good: str) -> None:
    assert check_slug(good) == good


@pytest.mark.parametrize("bad", ["WWW", "-x", "x-", "a b", "", "x" * 129, "ü"])
def test_slug_bad(bad: str) -> None:
    with pytest.raises(ValueError, match="not a valid name"):
        check_slug(bad)


def test_env_name_and_country() -> None:
    assert check_env_name("RFC2136_SECRET") == "RFC2136_SECRET"
    with pytest.raises(ValueError, match="never the secret itself"):
        check_env_name("c2VjcmV0+/==")
    assert check_country("US") == "US"
    for bad in ("us", "USA", "U"):
        with pytest.raises(ValueError, match="country code"):
            check_country(bad)
