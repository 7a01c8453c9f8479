"""A stand-in for the `terraform` CLI, for running docs/migrate-from-terraform.md as written.

It knows the commands the guide uses and does them to ``terraform.tfstate`` (format 4) in the
working directory the way Terraform does: ``show -json`` prints the state in that shape,
``state pull`` prints the file, ``state list`` prints every address, ``state rm ADDRESS...`` forgets
those instances (an address that matches nothing is an error, as in Terraform; nothing is removed
then) and keeps a backup. No network, no providers: only the state file changes.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from reconciler.observe.tfstate import TfInstance, read_tfstate  # noqa: E402
from tests.observe.tfrig import Res, show_json  # noqa: E402

STATE = Path("terraform.tfstate")


def _address(resource: dict, instance: dict) -> str:
    return TfInstance(resource["mode"], resource["type"], resource["name"], resource.get("module", ""),
                      instance.get("index_key")).address


def main(argv: list[str]) -> int:
    text = STATE.read_text(encoding="utf-8")
    doc = json.loads(text)
    if argv == ["show", "-json"]:
        found = read_tfstate(text, str(STATE)).instances
        print(json.dumps(show_json([Res(i.type, i.name, dict(i.attributes), i.module, i.index, i.mode)
                                    for i in found])))
    elif argv == ["state", "pull"]:
        print(text, end="")
    elif argv == ["state", "list"]:
        for resource in doc["resources"]:
            for instance in resource["instances"]:
                print(_address(resource, instance))
    elif argv[:2] == ["state", "rm"] and len(argv) > 2:
        wanted = set(argv[2:])
        seen: set[str] = set()
        for resource in doc["resources"]:
            kept = [i for i in resource["instances"] if _address(resource, i) not in wanted]
            seen |= {_address(resource, i) for i in resource["instances"]} & wanted
            resource["instances"] = kept
        missing = sorted(wanted - seen)
        if missing:
            print(f"Error: Invalid target address: no resource instance {missing[0]} in the state", file=sys.stderr)
            return 1
        doc["resources"] = [r for r in doc["resources"] if r["instances"]]
        doc["serial"] += 1
        shutil.copyfile(STATE, STATE.with_name(f"{STATE.name}.backup"))
        STATE.write_text(json.dumps(doc, indent=2), encoding="utf-8")
        for address in argv[2:]:
            print(f"Removed {address}")
        print(f"Successfully removed {len(wanted)} resource instance(s).")
    else:
        print(f"fake terraform: {' '.join(argv)} is not one of the commands the migration guide uses",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
