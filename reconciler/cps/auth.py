"""EdgeGrid (EG1-HMAC-SHA256) request signing for httpx, delegated to edgegrid-python.

The signing algorithm is edgegrid-python's ``EdgeGridAuthHeaders``; this module only presents an
``httpx.Request`` in the shape that class reads (``method``, ``url``, ``headers``, ``body``), adds
the account switch key to the query before signing (the signature covers the query), and keeps
edgegrid-python's debug logging, which prints the derived signing key and the tokens, out of logs
(as well as the switch key from httpx's request log).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Generator, Sequence
from dataclasses import dataclass

import httpx
from akamai.edgegrid import edgegrid as _edgegrid

from reconciler.cps.credentials import Credentials

ACCOUNT_SWITCH_PARAM = "accountSwitchKey"


class _DropDebug(logging.Filter):
    """edgegrid-python logs the signing key and the unsigned header (with tokens) at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


class _RedactSwitchKey(logging.Filter):
    """httpx logs each request URL at INFO; the account switch key in its query stays out."""

    _pattern = re.compile(rf"({ACCOUNT_SWITCH_PARAM}=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if ACCOUNT_SWITCH_PARAM in message:
            record.msg, record.args = self._pattern.sub(r"\1<hidden>", message), None
        return True


def _install(logger_name: str, log_filter: logging.Filter) -> None:
    logger = logging.getLogger(logger_name)
    if not any(type(f) is type(log_filter) for f in logger.filters):
        logger.addFilter(log_filter)


_install(_edgegrid.__name__, _DropDebug())
_install("httpx", _RedactSwitchKey())


@dataclass
class _SignableRequest:
    """What ``EdgeGridAuthHeaders.make_auth_header`` reads from a request."""

    method: str
    url: str
    headers: httpx.Headers
    body: bytes


class EdgeGridAuth(httpx.Auth):
    """``httpx.Auth`` that signs every request with the given ``Credentials``.

    ``headers_to_sign`` lists extra headers covered by the signature (none for CPS). The timestamp
    and nonce come from edgegrid-python's own ``eg_timestamp`` and ``new_nonce``, looked up at call
    time so that tests can pin them for both signers at once.
    """

    requires_request_body = True

    def __init__(self, credentials: Credentials, *, headers_to_sign: Sequence[str] = ()) -> None:
        self._switch_key = credentials.account_switch_key
        self._signer = _edgegrid.EdgeGridAuthHeaders(
            credentials.client_token,
            credentials.client_secret,
            credentials.access_token,
            headers_to_sign=tuple(headers_to_sign),
            max_body=credentials.max_body,
        )

    def __repr__(self) -> str:
        return "EdgeGridAuth(<credentials hidden>)"

    def sign(self, request: httpx.Request) -> None:
        """Add the account switch key (if any) and the ``Authorization`` header, in place."""
        if self._switch_key and ACCOUNT_SWITCH_PARAM not in request.url.params:
            request.url = request.url.copy_merge_params({ACCOUNT_SWITCH_PARAM: self._switch_key})
        signable = _SignableRequest(
            method=request.method,
            url=str(request.url),
            # A copy: edgegrid-python may add a User-Agent to the headers it is given.
            headers=httpx.Headers(request.headers),
            body=request.content,
        )
        request.headers["Authorization"] = self._signer.make_auth_header(
            signable, _edgegrid.eg_timestamp(), _edgegrid.new_nonce()
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request
