"""Read a Terraform state document into resource instances, whichever of its two shapes it has.

``read_tfstate(text, source)`` accepts what ``terraform state pull`` prints (the ``terraform.tfstate``
file) and what ``terraform show -json`` prints, tells them apart by shape, and returns every
resource instance with the address Terraform itself prints for it:

=============================================  =================================================
document                                       read as
=============================================  =================================================
``{"version": 4, "resources": [...]}``         state file, format 4 (Terraform 0.12 and later):
                                               ``module`` + ``type`` + ``name`` per resource,
                                               ``index_key`` per instance (int: ``count``,
                                               string: ``for_each``), ``attributes``,
                                               ``sensitive_attributes``
``{"format_version": "1.x", "values": ...}``   ``terraform show -json``: ``root_module`` and its
                                               ``child_modules`` walked recursively,
                                               ``address``/``index``/``values``,
                                               ``sensitive_values``
``{"format_version": "1.x"}`` without values   ``show -json`` of an empty state: no resources
``{"version": 3}`` (or any other version)      refused: name the version, say how to get format 4
``planned_values`` / ``resource_changes``      refused: that is a plan, not state
anything else                                  refused: not Terraform state (JSON errors name
                                               line and column)
=============================================  =================================================

Addresses: ``[module.A.][module.B.][data.]TYPE.NAME[INDEX]`` with ``[0]`` for ``count`` and
``["key"]`` for ``for_each`` (the key JSON-quoted, as Terraform prints it).

Sensitive values are never carried: an instance reports only the *paths* of its attributes that
Terraform marks sensitive (``admin_contact.0.phone``), for the caller to refuse or warn about by
name. Nothing here knows about CPS; ``tfcps`` picks out the ``akamai_cps_*`` resources.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import ReconcileError

__all__ = ["TfInstance", "TfStateError", "TfStateFile", "read_tfstate"]

STATE_FORMAT = 4


class TfStateError(ReconcileError):
    """The document is not Terraform state this tool can read; nothing was imported."""


@dataclass(frozen=True)
class TfInstance:
    """One resource instance: its address parts, attribute values and sensitive attribute paths."""

    mode: str  # "managed" or "data"
    type: str
    name: str
    module: str = ""  # "module.a.module.b", "" for the root module
    index: int | str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict, repr=False)
    sensitive: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        """The address as Terraform prints it (and as ``terraform state rm`` takes it)."""
        parts = [self.module] if self.module else []
        parts.append(f"data.{self.type}" if self.mode == "data" else self.type)
        return ".".join([*parts, self.name]) + index_suffix(self.index)


@dataclass(frozen=True)
class TfStateFile:
    """What was read: which shape it had (``tfstate`` or ``show-json``) and every instance."""

    shape: str
    terraform_version: str | None
    instances: tuple[TfInstance, ...]


def index_suffix(index: int | str | None) -> str:
    """``[0]`` for ``count``, ``["key"]`` for ``for_each``, ``""`` for neither."""
    if index is None:
        return ""
    if isinstance(index, bool) or not isinstance(index, int | str):
        raise TfStateError(f"an instance index must be a number or a string, not {index!r}")
    return f"[{index}]" if isinstance(index, int) else f"[{json.dumps(index)}]"


def read_tfstate(text: str, source: str) -> TfStateFile:
    """The resource instances in ``text`` (read from ``source``, named in errors)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TfStateError(f"{source}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg}); give a terraform.tfstate "
                           "(`terraform state pull > FILE`) or the output of `terraform show -json`") from None
    if not isinstance(doc, dict):
        raise TfStateError(f"{source}: not Terraform state (a JSON object was expected)")
    if "planned_values" in doc or "resource_changes" in doc:
        raise TfStateError(f"{source}: this is a Terraform plan, not state; run `terraform show -json` without a "
                           "plan file (or `terraform state pull`)")
    if "format_version" in doc:
        return _show_json(doc, source)
    if "version" in doc:
        return _state_file(doc, source)
    raise TfStateError(f"{source}: not Terraform state (neither a \"version\" nor a \"format_version\" key)")


def _state_file(doc: dict[str, Any], source: str) -> TfStateFile:
    version = doc.get("version")
    if version != STATE_FORMAT:
        raise TfStateError(
            f"{source}: Terraform state format version {version!r}; this reads format {STATE_FORMAT} (Terraform "
            "0.12 and later). Upgrade the state with a current Terraform (`terraform init && terraform refresh`), "
            "or give the output of `terraform show -json` instead")
    resources = doc.get("resources") or []
    if not isinstance(resources, list):
        raise TfStateError(f"{source}: \"resources\" is not a list")
    found: list[TfInstance] = []
    for n, resource in enumerate(resources):
        where = f"{source}: resources[{n}]"
        mode, rtype, name = _head(resource, where)
        module = resource.get("module") or ""
        if not isinstance(module, str):
            raise TfStateError(f"{where}: \"module\" is not a string")
        for i, instance in enumerate(resource.get("instances") or []):
            if not isinstance(instance, dict):
                raise TfStateError(f"{where}.instances[{i}]: not an object")
            attributes = instance.get("attributes")
            if attributes is None and "attributes_flat" in instance:
                raise TfStateError(f"{where}.instances[{i}]: flat attributes (a schema older than format 4 "
                                   "uses); refresh the state with a current Terraform first")
            found.append(TfInstance(mode=mode, type=rtype, name=name, module=module,
                                    index=instance.get("index_key"), attributes=_mapping(attributes, where),
                                    sensitive=tuple(_v4_sensitive(instance.get("sensitive_attributes")))))
    return TfStateFile("tfstate", _text(doc.get("terraform_version")), tuple(found))


def _show_json(doc: dict[str, Any], source: str) -> TfStateFile:
    version = str(doc.get("format_version"))
    if version.split(".")[0] != "1":
        raise TfStateError(f"{source}: `terraform show -json` format version {version}; this reads 1.x")
    values = doc.get("values") or {}
    root = values.get("root_module") or {} if isinstance(values, dict) else {}
    found = list(_walk_module(root, f"{source}: values.root_module"))
    return TfStateFile("show-json", _text(doc.get("terraform_version")), tuple(found))


def _walk_module(module: Any, where: str) -> Iterator[TfInstance]:
    if not isinstance(module, dict):
        raise TfStateError(f"{where}: not an object")
    prefix = module.get("address") or ""
    for n, resource in enumerate(module.get("resources") or []):
        here = f"{where}.resources[{n}]"
        mode, rtype, name = _head(resource, here)
        index = resource.get("index")
        yield TfInstance(mode=mode, type=rtype, name=name, module=str(prefix), index=index,
                         attributes=_mapping(resource.get("values"), here),
                         sensitive=tuple(_marked(resource.get("sensitive_values"), ())))
    for n, child in enumerate(module.get("child_modules") or []):
        yield from _walk_module(child, f"{where}.child_modules[{n}]")


def _head(resource: Any, where: str) -> tuple[str, str, str]:
    if not isinstance(resource, dict):
        raise TfStateError(f"{where}: not an object")
    mode, rtype, name = resource.get("mode"), resource.get("type"), resource.get("name")
    if mode not in ("managed", "data") or not isinstance(rtype, str) or not isinstance(name, str):
        raise TfStateError(f"{where}: a resource needs mode (managed or data), type and name")
    return mode, rtype, name


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TfStateError(f"{where}: attributes are not an object")
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _v4_sensitive(paths: Any) -> Iterator[str]:
    """Format 4 lists each sensitive attribute as a path of steps ``[{"type": "get_attr",
    "value": "admin_contact"}, {"type": "index", "value": {"value": 0, "type": "number"}}, ...]``."""
    for path in paths or []:
        parts: list[str] = []
        for step in path if isinstance(path, list) else []:
            value = step.get("value") if isinstance(step, dict) else None
            if isinstance(value, dict):  # an index step wraps its key
                value = value.get("value")
            parts.append(str(value))
        yield ".".join(parts) or "?"


def _marked(marks: Any, path: tuple[str, ...]) -> Iterator[str]:
    """``show -json`` mirrors the values with ``true`` where a value is sensitive."""
    if marks is True:
        yield ".".join(path) or "?"
    elif isinstance(marks, dict):
        for key, value in marks.items():
            yield from _marked(value, (*path, str(key)))
    elif isinstance(marks, list):
        for i, value in enumerate(marks):
            yield from _marked(value, (*path, str(i)))
