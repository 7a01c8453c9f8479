from __future__ import annotations

import re

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


@pytest.mark.parametrize("raw,expected", [
    ("пример.рф", "xn--e1afmkfd.xn--p1ai"), ("日本語テキスト.jp", "xn--nckya0bk5909dcvb2w6i.jp"),
    ("ﾃｽﾄabc.example", None), ("한국abc.example", None),  # Japanese/Korean with Latin: one label, allowed
])
def test_single_script_and_cjk_latin_labels_pass(raw: str, expected: str | None) -> None:
    result = normalize_hostname(raw)
    assert result == expected or expected is None


@pytest.mark.parametrize("raw", ["p\u0430ypal.example.com", "g\u03bfogle.example.com", "xn--pypal-4ve.example.com",
                                 "www.example.com\u3002"])
def test_look_alike_labels_and_disguised_trailing_dots_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="mixes|trailing dot"):
        normalize_hostname(raw)


def test_text_refuses_controls_and_bidi_overrides_but_keeps_line_breaks() -> None:
    from reconciler.spec.checks import check_text

    assert check_text("line one\n\tline two\r\n") == "line one\n\tline two\r\n"
    assert check_text("Zürich Straße \x7f") == "Zürich Straße \x7f"  # DEL and Latin-1 pass: CPS stores them
    for bad, code in (("a\x1b[2J", "U+001B"), ("Ada\u202eecalevol", "U+202E"), ("x\u2066y", "U+2066")):
        with pytest.raises(ValueError, match=re.escape(code)):
            check_text(bad)
    assert "more characters" in str(pytest.raises(ValueError, normalize_hostname, "a" * 5000 + ".com").value)
