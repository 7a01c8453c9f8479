"""``python -m reconciler.docs_gen [--check] [ROOT]``: write (or check) the generated reference pages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reconciler.docs_gen import stale, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reconciler.docs_gen", description=__doc__)
    parser.add_argument("root", nargs="?", type=Path, default=Path.cwd(), help="the checkout (default: cwd)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page is stale")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    if args.check:
        outdated = stale(root)
        for path in outdated:
            sys.stderr.write(f"stale: {path.relative_to(root)} (run: python -m reconciler.docs_gen)\n")
        return 1 if outdated else 0
    for path in write(root):
        sys.stderr.write(f"wrote {path.relative_to(root)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
