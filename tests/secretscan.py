"""Test support: find credentials in anything a run leaves behind.

    from tests.secretscan import CANARY, assert_no_secrets, scan_for_secrets

    findings = scan_for_secrets(CANARY, paths=[repo, tmp_dir], texts={"stdout": out, "stderr": err})
    assert not findings, findings                     # or: assert_no_secrets(CANARY, paths=..., texts=...)

``secrets`` is a mapping ``label -> value`` (``CANARY``, or ``secrets_of(credentials)``) or a plain
iterable of values. Each value is looked for, byte for byte, in every file under ``paths``
(recursively, binary-safe, symlinks not followed) and in every text, in these forms:

- ``raw``: the value itself (UTF-8), and its UTF-16-LE spelling;
- ``url``: percent-encoded (``quote(value, safe='')``) and form-encoded (``quote_plus``);
- ``json``: as a JSON string literal would carry it (``\\/``, ``\\u002b`` escapes);
- ``base64`` / ``base64url``: the value encoded at each of the three byte alignments, so it is
  found inside a longer base64 text (an ``Authorization: Basic`` header, a pickled blob, a
  ``.env`` dump) and not only when it was encoded alone;
- ``hex``: lower- and upper-case;
- ``fragment``: the first and the second half of the value (>= 12 characters each), which catches
  a secret cut short by a truncating formatter or wrapped over two lines.

A ``Finding`` names the secret's label, the form, where and at which offset; it never contains the
secret itself, so a failing assertion does not leak it into CI logs either.

The canary credentials in ``CANARY`` are distinctive (``LEAKCANARY`` in each, ``+``/``/``/``=`` in
the secret so that encoded forms differ from the raw one): a hit means a leak, not a coincidence.
``write_canary_edgerc(data_dir)`` puts them where ``SandboxServer(data_dir=...)`` picks them up.
"""

from __future__ import annotations

import base64
import binascii
import configparser
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus

from reconciler.cps.credentials import Credentials

CANARY: dict[str, str] = {
    "client_token": "akab-c1ienttok3nleakcanary-q7w2e9r4t6y8u1i3",
    "client_secret": "LEAKCANARYsecret+9fJ2/kQ7vX4mZ8pW1rT6yB3nH5c=",
    "access_token": "akab-acc3sstok3nleakcanary-z5x8c1v4b7n2m9k6",
}
"""Distinctive credentials for scanned runs (lower-case tokens, as Akamai issues them)."""

MIN_FORM_LENGTH = 12
"""Encoded forms (and fragments) shorter than this are not searched: too likely by chance."""

EDGERC_SECTION = "sandbox"


@dataclass(frozen=True)
class Finding:
    """One place where a secret (in some form) was found. Never holds the secret itself."""

    secret: str
    form: str
    where: str
    offset: int

    def __str__(self) -> str:
        return f"{self.where}@{self.offset}: {self.secret} ({self.form})"


def secrets_of(credentials: Credentials) -> dict[str, str]:
    """The three secret values of ``credentials``, labelled."""
    return {"client_token": credentials.client_token, "client_secret": credentials.client_secret,
            "access_token": credentials.access_token}


def canary_credentials(host: str) -> Credentials:
    """``CANARY`` as client ``Credentials`` for ``host``."""
    return Credentials(host=host, **CANARY)


def write_canary_edgerc(data_dir: Path, section: str = EDGERC_SECTION) -> Path:
    """Seed ``data_dir/.edgerc`` with ``CANARY`` so a ``SandboxServer(data_dir=data_dir)`` uses them.

    The sandbox keeps existing credentials of its section and only rewrites ``host``.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    edgerc = data_dir / ".edgerc"
    parser = configparser.ConfigParser(interpolation=None)
    parser[section] = {"host": "127.0.0.1", **CANARY}
    fd = os.open(edgerc, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        parser.write(handle)
    return edgerc


def _base64_cores(data: bytes, *, urlsafe: bool) -> Iterator[bytes]:
    """The part of ``data``'s base64 that is the same wherever ``data`` sits in a longer input."""
    encoder = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    for shift in range(3):
        padded = b"\0" * shift + data
        encoded = encoder(padded).rstrip(b"=")
        # Leading characters mix in the alignment bytes; the trailing one mixes in what follows.
        start = -(-shift * 4 // 3) if shift else 0
        usable = (len(padded) * 8) // 6  # characters carrying only known bits
        yield encoded[start:usable]


def secret_forms(value: str) -> dict[str, bytes]:
    """Every searched spelling of ``value``, by form name (forms too short are left out)."""
    raw = value.encode("utf-8")
    forms: dict[str, bytes] = {
        "raw": raw,
        "utf-16": value.encode("utf-16-le"),
        "url": quote(value, safe="").encode(),
        "url-form": quote_plus(value).encode(),
        "json": json.dumps(value).encode()[1:-1],
        "json-slash": json.dumps(value).replace("/", "\\/").encode()[1:-1],
        "json-ascii-escapes": "".join(c if c.isalnum() else f"\\u{ord(c):04x}" for c in value).encode(),
        "hex": binascii.hexlify(raw),
        "hex-upper": binascii.hexlify(raw).upper(),
    }
    for urlsafe, name in ((False, "base64"), (True, "base64url")):
        for index, core in enumerate(_base64_cores(raw, urlsafe=urlsafe)):
            forms[f"{name}/{index}"] = core
    half = len(value) // 2
    if half >= MIN_FORM_LENGTH:
        forms["fragment-head"] = value[:half].encode()
        forms["fragment-tail"] = value[half:].encode()
    return {name: form for name, form in forms.items() if len(form) >= MIN_FORM_LENGTH}


def _labelled(secrets: Mapping[str, str] | Iterable[str]) -> dict[str, str]:
    if isinstance(secrets, Mapping):
        labelled = dict(secrets)
    else:
        labelled = {f"secret#{i}": value for i, value in enumerate(secrets)}
    short = [label for label, value in labelled.items() if len(value) < MIN_FORM_LENGTH]
    if short:
        raise ValueError(f"secret(s) {', '.join(short)} shorter than {MIN_FORM_LENGTH} characters: "
                         "a scan for them would find noise; use distinctive values")
    return labelled


def _files(paths: Iterable[Path | str], exclude: set[Path]) -> Iterator[Path]:
    for given in paths:
        root = Path(given)
        if root.resolve() in exclude or root.is_symlink():
            continue
        if root.is_file():
            yield root
            continue
        for directory, dirnames, filenames in os.walk(root, followlinks=False):
            here = Path(directory)
            dirnames[:] = [d for d in dirnames if (here / d).resolve() not in exclude]
            for filename in filenames:
                path = here / filename
                if path.is_symlink() or path.resolve() in exclude or not path.is_file():
                    continue
                yield path


def _search(haystack: bytes, needles: dict[tuple[str, str], bytes], where: str) -> list[Finding]:
    found = []
    for (label, form), needle in needles.items():
        offset = haystack.find(needle)
        if offset >= 0:
            found.append(Finding(label, form, where, offset))
    return found


def scan_for_secrets(secrets: Mapping[str, str] | Iterable[str], *, paths: Iterable[Path | str] = (),
                     texts: Mapping[str, str | bytes] | Iterable[str | bytes] = (),
                     exclude: Iterable[Path | str] = ()) -> list[Finding]:
    """Every place a secret shows up in the files under ``paths`` or in ``texts``.

    ``texts`` is a mapping ``label -> text`` (``{"stdout": out}``) or an iterable (labelled
    ``text#i``). ``exclude`` lists files or directories deliberately holding the secrets (the
    ``.edgerc`` itself). One finding per secret, form and artefact (the first offset).
    """
    needles = {(label, form): spelled for label, value in _labelled(secrets).items()
               for form, spelled in secret_forms(value).items()}
    findings: list[Finding] = []
    items = texts.items() if isinstance(texts, Mapping) else ((f"text#{i}", t) for i, t in enumerate(texts))
    for label, text in items:
        data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else bytes(text)
        findings.extend(_search(data, needles, label))
    excluded = {Path(p).resolve() for p in exclude}
    for path in _files(paths, excluded):
        try:
            data = path.read_bytes()
        except OSError:
            continue  # removed while walking (a lock file, a temporary)
        findings.extend(_search(data, needles, str(path)))
    return findings


def assert_no_secrets(secrets: Mapping[str, str] | Iterable[str], *, paths: Iterable[Path | str] = (),
                      texts: Mapping[str, str | bytes] | Iterable[str | bytes] = (),
                      exclude: Iterable[Path | str] = ()) -> None:
    """``scan_for_secrets`` that fails the test listing every finding (never the secret values)."""
    findings = scan_for_secrets(secrets, paths=paths, texts=texts, exclude=exclude)
    if findings:
        raise AssertionError("credentials leaked:\n  " + "\n  ".join(str(f) for f in findings))


class SecretScan:
    """Collects artefacts during a test and scans them for ``secrets`` (the ``secret_scan`` fixture).

    ``add_secrets`` adds values (``secrets_of(server.credentials)``); ``add_path`` files or
    directories; ``add_text`` captured output; ``exclude`` what legitimately holds the secrets.
    ``check()`` asserts nothing leaked; the fixture calls it at teardown if the test did not.
    """

    def __init__(self, secrets: Mapping[str, str] | None = None) -> None:
        self.secrets: dict[str, str] = dict(secrets or {})
        self.paths: list[Path] = []
        self.texts: dict[str, str | bytes] = {}
        self.excluded: list[Path] = []
        self.checked = False

    def add_secrets(self, secrets: Mapping[str, str] | Credentials) -> None:
        values = secrets_of(secrets) if isinstance(secrets, Credentials) else secrets
        self.secrets.update(values)

    def add_path(self, *paths: Path | str) -> None:
        self.paths.extend(Path(p) for p in paths)

    def add_text(self, label: str, text: str | bytes) -> None:
        key, n = label, 1
        while key in self.texts:
            n += 1
            key = f"{label}#{n}"
        self.texts[key] = text

    def exclude(self, *paths: Path | str) -> None:
        self.excluded.extend(Path(p) for p in paths)

    def findings(self) -> list[Finding]:
        return scan_for_secrets(self.secrets, paths=self.paths, texts=self.texts, exclude=self.excluded)

    def check(self) -> None:
        self.checked = True
        if not self.secrets:
            raise AssertionError("secret scan has no secrets to look for: call add_secrets first")
        assert_no_secrets(self.secrets, paths=self.paths, texts=self.texts, exclude=self.excluded)
