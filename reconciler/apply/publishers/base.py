"""The DV challenge publisher contract.

A publisher puts Let's Encrypt challenges where the CA will look for them (a DNS TXT record
or an HTTP token) and takes them away again afterwards. The workflow calls it like this:

1. ``publish(records)`` once per change step, with every challenge CPS still wants answered
   (pending, on a domain not yet validated) for the spec's method. The base class checks the
   method is supported and calls the subclass hook ``_publish``.
2. When the result is ``ready``, the workflow tells CPS the challenges are in place
   (``lets-encrypt-challenges-completed``). When it is not ready, the enrollment stops with
   ``waiting_for`` as its reason, and the next ``apply`` calls ``publish`` again.
3. Once CPS has moved past domain validation, the workflow calls ``cleanup(records)`` with the
   records it published earlier (read back from the challenge ledger, so a cleanup survives a
   crash between publish and validation).

Subclasses override only the two hooks, whose docstrings say what they may do.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from reconciler.errors import PublisherError

DNS_01 = "dns-01"
HTTP_01 = "http-01"


@dataclass(frozen=True)
class ChallengeRecord:
    """One challenge to publish, in the words a publisher needs (not the CPS wire shape).

    ``record_name`` is the DNS owner name with a trailing dot (dns-01, e.g.
    ``_acme-challenge.www.example.com.``) and empty for http-01; ``path`` is the full URL the CA
    fetches (http-01) and empty for dns-01; ``value`` is what must be served there (the TXT value
    or the HTTP response body).
    """

    enrollment: str
    domain: str
    type: str
    token: str
    value: str
    record_name: str = ""
    path: str = ""
    expires: str | None = None

    def to_data(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ChallengeRecord:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Identity of the record: the same key means the same thing published at the same place."""
        return (self.type, self.record_name or self.path, self.value, self.domain)


@dataclass(frozen=True)
class PublishResult:
    """What a publish achieved: ``ready`` means CPS may be told the challenges are in place."""

    ready: bool
    waiting_for: str | None = None
    details: list[str] = field(default_factory=list)


class Publisher(ABC):
    """Base class for DV challenge publishers; owns the algorithm, subclasses fill two hooks."""

    kind: ClassVar[str] = "base"
    methods: ClassVar[frozenset[str]] = frozenset({DNS_01, HTTP_01})

    async def publish(self, records: Sequence[ChallengeRecord]) -> PublishResult:
        """Publish every record; an empty list is trivially ready."""
        if not records:
            return PublishResult(ready=True)
        self._check_methods(records)
        return await self._publish(list(records))

    async def cleanup(self, records: Sequence[ChallengeRecord]) -> None:
        """Remove records published earlier; failures raise PublisherError."""
        if records:
            self._check_methods(records)
            await self._cleanup(list(records))

    def _check_methods(self, records: Sequence[ChallengeRecord]) -> None:
        wrong = sorted({r.type for r in records} - self.methods)
        if wrong:
            raise PublisherError(
                f"{records[0].enrollment}: publisher {self.kind!r} cannot publish {', '.join(wrong)} "
                f"challenges (it supports {', '.join(sorted(self.methods))})"
            )

    @abstractmethod
    async def _publish(self, records: list[ChallengeRecord]) -> PublishResult:
        """Hook: make every record visible to the CA.

        May: call external systems, write files, take as long as its own timeout allows.
        Must not: talk to CPS or touch the state file (the workflow does both).
        Returns ready=True only when every record is in place; otherwise ready=False with a
        short human ``waiting_for`` (e.g. "DNS publication of 2 TXT records"). Raises
        PublisherError on failure, with a message that names the record and never a secret.
        """

    async def _cleanup(self, records: list[ChallengeRecord]) -> None:  # noqa: B027 (optional hook)
        """Hook: remove records this publisher put in place earlier. Default: nothing to remove.

        Must tolerate records that are already gone (cleanup can run twice after a crash).
        """
