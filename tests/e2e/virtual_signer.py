"""A customer CA for renewal tests: signs each CSR at the sandbox's *virtual* time, as a real CA
signs at CPS's real time (a certificate signed at the runner's real time would already be old, or
not yet valid, once the test has moved the sandbox's clock by months).

Run by apply as the spec's signer (env RECONCILE_CSR_FILE, _CERT_FILE, _CHAIN_FILE); reads the
sandbox's address from SANDBOX_URL and trusts RECONCILE_CA_BUNDLE. Its CA lives in quick-ca.json.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.request
from datetime import datetime
from pathlib import Path

from reconciler.sandbox.ca import CertificateAuthority


def main() -> None:
    context = ssl.create_default_context(cafile=os.environ["RECONCILE_CA_BUNDLE"])
    with urllib.request.urlopen(os.environ["SANDBOX_URL"] + "/_sandbox/time", context=context) as answer:
        now = datetime.fromisoformat(json.load(answer)["now"].replace("Z", "+00:00"))
    state = Path("quick-ca.json")
    ca = CertificateAuthority.from_json(json.loads(state.read_text())) if state.exists() else CertificateAuthority("Quick")
    state.write_text(json.dumps(ca.to_json()))
    leaf, chain = ca.sign_csr(Path(os.environ["RECONCILE_CSR_FILE"]).read_text(), now=now)
    Path(os.environ["RECONCILE_CERT_FILE"]).write_text(leaf)
    Path(os.environ["RECONCILE_CHAIN_FILE"]).write_text(chain)


if __name__ == "__main__":
    main()
