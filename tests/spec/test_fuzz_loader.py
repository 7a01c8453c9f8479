"""Fuzzing the spec and config loaders: whatever the bytes, the only failure is a validation error.

Random bytes, YAML-ish text with jinja2 fragments, and random structures (keys drawn from the spec's
field names) dumped to YAML with fragments spliced in: ``load_specs`` may only raise ``SpecError``
(every issue naming its file) and ``load_config`` only ``ConfigError``, each example within the
deadline. Derandomized so CI sees the same examples on every run.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.config import load_config
from reconciler.errors import ConfigError, SpecError
from reconciler.spec.loader import load_specs

FUZZ = settings(max_examples=50, deadline=timedelta(seconds=3), derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])

CONFIG = """default_contract: ctr_1-FUZZ
variables: {domain: example.com, names: [a, b]}
defaults:
  admin_contact: {first_name: Ada, last_name: Lovelace, email: ada@example.com, phone: "1"}
  tech_contact: {first_name: Ada, last_name: Lovelace, email: ada@example.com, phone: "1"}
  organization: {name: X, phone: "1", address_line_one: a, city: b, region: c, postal_code: "1", country_code: US}
"""

FRAGMENTS = ["{{ domain }}", "{{ nope }}", "{% for n in names %}", "{% endfor %}", "{% if true %}", "{% endif %}",
             "{{ ''.__class__.__mro__ }}", "{{ cycler.__init__.__globals__ }}", "{% import 'os' as os %}",
             "{{ 1/0 }}", "{{ 'x' * 99999999 }}", "{{ 9 ** 99999 }}", "{% raw %}", "{% endraw %}", "{#", "#}",
             "{{", "}}", "{%", "%}", "&a", "*a", "<<: *a", "!!python/object:os.system", "\t", "\x00", "\ufeff",
             "---", "...", "? ", ": ", "- ", "xn--", "*.", "\u202e", "../../etc/passwd"]
FIELDS = ["name", "type", "common_name", "sans", "contract_id", "organization", "admin_contact", "validation",
          "publisher", "hook", "publish", "method", "certificates", "rsa", "ecdsa", "certificate", "trust_chain",
          "dual_stack", "network_configuration", "dns_names", "clone_dns_names", "sni_only", "signer", "command",
          "ocsp_stapling", "country_code", "email", "x"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                    st.sampled_from(["dv", "third-party", "www.example.com", "*.example.com", "b\u00fccher.example",
                                     "certs/a.pem", "hook", "dns-01", "on", "NO", "02142"]),
                    st.text(max_size=30))
STRUCTURES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.sampled_from(FIELDS), inner, max_size=6)), max_leaves=30)
YAMLISH = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(alphabet=":-[]{}&*!|>'\"#%@`,? \n\tabc01", max_size=12)),
                   max_size=40).map("".join)


class _Repo:
    """One temporary repository reused by every example (writing a file is the only per-example cost)."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="fuzz-specs-")
        self.root = Path(self._dir.name)
        (self.root / "specs").mkdir()
        (self.root / "reconcile.yaml").write_text(CONFIG)
        self.config = load_config(cwd=self.root)
        self.spec = self.root / "specs" / "fuzz.yaml"

    def load_spec(self, data: bytes) -> None:
        self.spec.write_bytes(data)
        try:
            load_specs(self.config)
        except SpecError as exc:
            assert exc.issues and all(issue.file and issue.message for issue in exc.issues)
            assert all(len(str(issue)) < 2000 for issue in exc.issues), "a message echoes too much input"

    def load_config(self, data: bytes) -> None:
        (self.root / "other.yaml").write_bytes(data)
        try:
            load_config(Path("other.yaml"), cwd=self.root)
        except ConfigError as exc:
            assert str(exc).startswith("other.yaml")


REPO = _Repo()


def _splice(text: str, fragments: list[tuple[int, str]]) -> str:
    for position, fragment in fragments:
        at = position % (len(text) + 1)
        text = text[:at] + fragment + text[at:]
    return text


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    REPO.load_spec(data)
    REPO.load_config(data)


@FUZZ
@given(YAMLISH)
def test_yamlish_text_with_template_fragments(text: str) -> None:
    REPO.load_spec(text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(STRUCTURES, st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(FRAGMENTS)), max_size=4))
def test_random_structures_dumped_with_template_fragments(data: Any, fragments: list[tuple[int, str]]) -> None:
    text = _splice(yaml.safe_dump(data, allow_unicode=True), fragments)
    REPO.load_spec(text.encode("utf-8", "surrogatepass"))
    REPO.load_config(text.encode("utf-8", "surrogatepass"))
