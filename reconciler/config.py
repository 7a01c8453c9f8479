"""reconcile.yaml: where credentials, specs and state live, and what every spec shares.

The directory holding reconcile.yaml is the repository root: relative paths in the file
(``specs_dir``, ``state_path``, ``edgerc``, ``ca_bundle``) and in specs (certificate files) are
resolved against it. Without ``--config``, reconcile.yaml is looked for the way git looks for
``.git``: in the current directory, then each parent, stopping at the root of the git repository
(a directory holding ``.git``) or of the file system. Without one the current directory is the
root and every setting has its default. After ``load_config`` every path field is absolute.

Example (every key optional)::

    edgerc: ~/.edgerc             # default: AKAMAI_EDGERC or ~/.edgerc (the CPS client decides)
    edgerc_section: default       # default: AKAMAI_EDGERC_SECTION or "default"
    account_switch_key: null
    default_contract: ctr_1-AB123 # used by specs without contract_id
    specs_dir: specs
    state_path: state/reconcile-state.json
    ca_bundle: null               # extra CA file to trust (e.g. the sandbox's)
    parallelism: 10
    safety: {max_update_fraction: 0.3, max_delete_fraction: 0.3, min_managed: 10}
    variables: {domain: example.com}            # jinja2 variables for specs
    defaults: {admin_contact: {...}}            # deep-merged under every spec (spec wins)
    publishers: {hook: {publish: "..."}}        # merged under validation.<publisher> of DV specs
    dns_check: {timeout: 10m, interval: 5s, nameservers: [], resolver: null}   # DV propagation check
    http_check: {timeout: 2m, interval: 5s, connect_to: null}
    state: {backend: file}        # or {backend: postgres, dsn_env: RECONCILE_STATE_DSN, workspace: NAME}

Durations are seconds (a number) or a number with a unit: ``90s``, ``10m``, ``1h``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from reconciler.errors import ConfigError
from reconciler.quantities import parse_quantity

__all__ = ["CONFIG_FILE", "Config", "DnsCheckConfig", "FileStateConfig", "HttpCheckConfig", "PostgresStateConfig",
           "PublisherDefaults", "SafetyConfig", "StateConfig", "load_config"]

CONFIG_FILE = "reconcile.yaml"

_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _seconds(value: Any) -> Any:
    """``"10m"`` -> 600.0; numbers pass through; anything else is left for pydantic to refuse."""
    return parse_quantity(value, _SECONDS, "a duration (seconds, or a number with s, m, h or ms: 90s, 10m)")


Duration = Annotated[float, BeforeValidator(_seconds), Field(ge=0)]


class SafetyConfig(BaseModel):
    """Mass-change brakes: a plan touching too large a share of managed enrollments is refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_update_fraction: float = Field(
        0.3, ge=0, le=1, description="Refuse plans updating more than this share of managed enrollments. "
        "Default: 0.3.")
    max_delete_fraction: float = Field(
        0.3, ge=0, le=1, description="Refuse plans deleting more than this share. Default: 0.3.")
    min_managed: int = Field(
        10, ge=0, description="Fractions apply only when at least this many enrollments are managed. Default: 10.")


class PublisherDefaults(BaseModel):
    """Settings per DV publisher, merged under ``validation.<publisher>`` of DV specs using it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hook: dict[str, Any] | None = Field(None, description="Defaults for validation.hook.")
    rfc2136: dict[str, Any] | None = Field(None, description="Defaults for validation.rfc2136.")
    edgedns: dict[str, Any] | None = Field(None, description="Defaults for validation.edgedns.")


class DnsCheckConfig(BaseModel):
    """How apply checks dns-01 challenges are served before acknowledging them (docs/dv-challenges.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout: Duration = Field(600.0, description="How long apply waits for every nameserver to serve the "
                              "records before the enrollment waits (exit 3). Default: 10m.")
    interval: Duration = Field(5.0, description="Between two looks. Default: 5s.")
    nameservers: list[str] = Field(
        default_factory=list, description="Ask exactly these servers (ip, ip:port, [v6]:port or host) instead "
        "of the zone's authoritative nameservers found by SOA/NS lookup: split horizon, tests. Default: discover.",
        examples=[["192.0.2.53", "[2001:db8::53]:5353"]])
    resolver: str | None = Field(
        None, description="Recursive resolver (host or host:port) used to find zones and nameservers. "
        "Default: the system's.")


class HttpCheckConfig(BaseModel):
    """How apply checks http-01 challenges are served before acknowledging them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout: Duration = Field(120.0, description="How long apply waits for the token to be served. Default: 2m.")
    interval: Duration = Field(5.0, description="Between two looks. Default: 5s.")
    connect_to: str | None = Field(
        None, description="Send the checks to this host:port, keeping the challenge's name as Host (like curl "
        "--connect-to). Default: the challenge URL's host.")


class FileStateConfig(BaseModel):
    """The state as files under ``state_path``, committed with the specs (docs/state.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["file"] = Field("file", description="file: the state lives in the repository (default).")


_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"


class PostgresStateConfig(BaseModel):
    """The state in a PostgreSQL database shared by runners (docs/state.md, "PostgreSQL backend")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["postgres"] = Field(description="postgres: the state lives in a PostgreSQL database.")
    workspace: str = Field(pattern=_NAME, description="This repository's (or environment's) state in the "
                           "database; several workspaces share one database, isolated from each other.",
                           examples=["prod"])
    dsn_env: str = Field("RECONCILE_STATE_DSN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                         description="Environment variable holding the connection string (it carries the "
                         "password: it is never read from this file). Default: RECONCILE_STATE_DSN.")
    schema_name: str = Field("reconcile", pattern=r"^[a-z_][a-z0-9_]{0,62}$",
                             description="Database schema holding reconcile's tables (created on first use). "
                             "Default: reconcile.")


StateConfig = Annotated[FileStateConfig | PostgresStateConfig, Field(discriminator="backend")]


class Config(BaseModel):
    """Everything reconcile.yaml says, with defaults applied and paths made absolute."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    root: Path = Field(description="Repository root: the directory of reconcile.yaml (or the cwd).")
    file: Path | None = Field(None, description="The reconcile.yaml that was read, if any.")
    edgerc: Path | None = Field(None, description="EdgeGrid credentials file. Default: unset (~/.edgerc).")
    edgerc_section: str | None = Field(None, description="Section in the .edgerc. Default: unset (default).")
    account_switch_key: str | None = Field(None, description="Act on another account. Default: none.")
    default_contract: str | None = Field(None, description="Contract for specs without contract_id.",
                                         examples=["ctr_1-AB123"])
    specs_dir: Path = Field(Path("specs"), description="Where specs live. Default: specs.")
    state_path: Path = Field(Path("state/reconcile-state.json"),
                             description="State file. Default: state/reconcile-state.json.")
    ca_bundle: Path | None = Field(None, description="Extra CA bundle to trust for HTTPS. Default: none.")
    parallelism: int = Field(10, ge=1, le=100, description="Enrollments worked on at once. Default: 10.")
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    variables: dict[str, Any] = Field(default_factory=dict, description="Variables for spec templates.",
                                      examples=[{"domain": "example.com", "regions": ["eu", "us"]}])
    defaults: dict[str, Any] = Field(default_factory=dict, description="Deep-merged under every spec.",
                                     examples=[{"validation": {"method": "dns-01", "publisher": "hook"}}])
    publishers: PublisherDefaults = Field(default_factory=PublisherDefaults)
    dns_check: DnsCheckConfig = Field(default_factory=DnsCheckConfig)
    http_check: HttpCheckConfig = Field(default_factory=HttpCheckConfig)
    state: StateConfig = Field(default_factory=FileStateConfig,
                               description="Where the state is kept: file (default) or postgres.")

    # The same data as `defaults`/`publishers`, but as loaded (with line marks) for error reporting.
    _marked: dict[str, Any] = PrivateAttr(default_factory=dict)
    # Where reconcile.yaml was looked for, when none was given nor found (for "not found" messages).
    _searched: tuple[Path, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _absolute_paths(self) -> Config:
        root = self.root.expanduser().resolve()
        object.__setattr__(self, "root", root)
        for name in ("edgerc", "ca_bundle", "specs_dir", "state_path"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, (root / Path(value).expanduser()).resolve())
        return self

    def marked(self, key: str) -> Any:
        """``defaults`` or ``publishers`` as loaded, with line marks when read from a file."""
        if key in self._marked:
            return self._marked[key]
        value = getattr(self, key)
        return value.model_dump(exclude_none=True) if isinstance(value, BaseModel) else value

    def searched(self) -> str | None:
        """Where reconcile.yaml was looked for in vain ("in /a/b or a parent up to /a"), else None."""
        if not self._searched:
            return None
        first, last = self._searched[0], self._searched[-1]
        where = str(first) if first == last else f"{first} or a parent up to {last}"
        return f"no {CONFIG_FILE} in {where}"

    def relative(self, path: Path) -> str:
        """``path`` for display: relative to the root when inside it."""
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)


def find_config(start: Path) -> tuple[Path | None, tuple[Path, ...]]:
    """The nearest reconcile.yaml at or above ``start`` (None if there is none), and the directories
    looked in. The search stops at a git repository's root: a reconcile.yaml above it belongs to
    something else."""
    searched: list[Path] = []
    for folder in (start, *start.parents):
        searched.append(folder)
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate, tuple(searched)
        if (folder / ".git").exists():
            break
    return None, tuple(searched)


def load_config(path: Path | None = None, cwd: Path | None = None) -> Config:
    """Read reconcile.yaml (``path``, or the nearest one at or above ``cwd``; else all defaults).

    Raises ``ConfigError`` naming file, line and key for anything unusable.
    """
    from reconciler.spec.hints import describe_validation_error
    from reconciler.spec.yamlsource import MarkedDict, YamlProblem, load_documents, lookup, read_source

    base = (cwd or Path.cwd()).resolve()
    if path is None:
        found, searched = find_config(base)
        if found is None:
            config = Config(root=base)
            config._searched = searched
            return config
        path = found
    elif not path.is_absolute():
        path = base / path
    if not path.is_file():
        raise ConfigError(f"{path}: no such configuration file")
    try:
        display = str(path.relative_to(base))
    except ValueError:
        display = str(path)
    try:
        docs = load_documents(read_source(path), display)
    except YamlProblem as exc:
        where = f"{display}:{exc.line}" if exc.line else display
        raise ConfigError(f"{where}: {exc.message}") from None
    if len(docs) > 1:
        raise ConfigError(f"{display}:{docs[1][1]}: only one YAML document is allowed in {CONFIG_FILE}")
    data: Any = docs[0][0] if docs else MarkedDict()
    if not isinstance(data, dict):
        line = docs[0][1] if docs else 1
        raise ConfigError(f"{display}:{line}: {CONFIG_FILE} must be a mapping of settings")
    if "root" in data or "file" in data:
        key = "root" if "root" in data else "file"
        mark = lookup(data, (key,))
        raise ConfigError(f"{display}:{mark.line if mark else 1}: {key}: is implied by the file's location; remove it")
    try:
        config = Config.model_validate({**data, "root": path.parent, "file": path})
    except ValidationError as exc:
        located = []
        for loc, message in describe_validation_error(exc, Config):
            mark = lookup(data, loc)
            where = f"{display}:{mark.line}" if mark else display
            field = ".".join(str(p) for p in loc)
            located.append((mark.line if mark else 0, f"{where}: {field}: {message}"))
        raise ConfigError("\n".join(text for _, text in sorted(located, key=lambda item: item[0]))) from None
    for key in ("defaults", "publishers"):
        if isinstance(data.get(key), dict):
            config._marked[key] = data[key]
    return config
