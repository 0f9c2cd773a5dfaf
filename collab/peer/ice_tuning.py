"""Our own ICE consent checks (RFC 7675), less frequent than aioice's: the one change we make
to aioice's behaviour, contained here and applied explicitly.

**What aioice does.** Once ICE completed, every connection runs ``Connection.query_consent``:
a STUN Binding request on the nominated pair every 5 s (4–6 s), never retransmitted, and the
connection is closed after 6 checks in a row went unanswered (≈ 30 s). Each check costs the
sender a task wake-up, a STUN transaction (future, timer, HMAC-SHA1, CRC-32, ``sendto``) and
the response's parse and integrity check — on an idle replica holding hundreds of
connections, our own checks were about a third of all the ICE work (the answers to the
remote's checks are the rest).

**What this changes**, only for connections whose ICE completed inside a
:func:`consent_policy` block (a context variable, so other connections of the process —
test peers, a :class:`~collab.peer.WebrtcPeer` without the option — keep aioice's loop):

* our checks go out every :attr:`ConsentPolicy.interval` seconds (randomised ±20 % like
  aioice), 15 s for the replica;
* an unanswered check is retransmitted (STUN's 0.5 s RTO, doubling, ``retransmissions``
  times) and then retried at once with a new transaction, so one lost datagram costs a
  retransmission, not a 15 s gap;
* consent expires — and the connection closes, as with aioice — once no response arrived for
  :attr:`ConsentPolicy.timeout` seconds (30 s: RFC 7675's consent lifetime), so a vanished
  peer is still detected in about 30 s.

**What it does not change.** We still answer every check the remote sends (aioice's
``request_received``): a browser stops sending after 30 s without consent responses
(RFC 7675 §5.1), and Chromium checks its selected pair every few seconds whatever we do.
RFC 7675 recommends a 5 s default interval for the *sender's* checks; a longer one only
delays how soon *we* notice that the remote is gone, which the 30 s timeout bounds. STUN
keeps NAT bindings alive in both directions either way (the remote's checks and our
answers cross the same 5-tuple every few seconds).

Example:
    >>> install()
    >>> with consent_policy(ConsentPolicy(interval=15.0)):
    ...     pass  # connections that complete ICE in here (and in tasks started here) use it
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Coroutine, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import aioice.ice
from aioice import stun

__all__ = ["ConsentPolicy", "consent_checks", "consent_policy", "install", "installed"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConsentPolicy:
    """How our own consent checks are sent (see the module docstring)."""

    interval: float = 15.0
    """Mean seconds between two of our checks while the remote answers (randomised ±20 %)."""
    timeout: float = 30.0
    """Seconds without any consent response after which the connection is closed."""
    retransmissions: int = 3
    """Retransmissions of one unanswered check (0.5, 1, 2 s apart; it fails after 7.5 s)."""

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.timeout <= 0:
            raise ValueError("ConsentPolicy: interval and timeout must be positive")
        if self.retransmissions < 0:
            raise ValueError("ConsentPolicy: retransmissions must be >= 0")


_policy: ContextVar[ConsentPolicy | None] = ContextVar("collab_consent_policy", default=None)
_original: Callable[[aioice.ice.Connection], Coroutine[Any, Any, None]] | None = None


def installed() -> bool:
    """Whether :func:`install` ran in this process."""
    return _original is not None


def install() -> None:
    """Route aioice's consent loop through :func:`consent_policy` (idempotent).

    Replaces ``aioice.ice.Connection.query_consent`` by a method that runs our loop when the
    connection's ICE completed inside a :func:`consent_policy` block and aioice's own loop
    otherwise: installing alone changes nothing.
    """
    global _original
    if _original is not None:
        return
    original = aioice.ice.Connection.query_consent
    _original = original

    def query_consent(self: aioice.ice.Connection) -> Coroutine[Any, Any, None]:
        # called by connect() in the task that completes ICE: read the policy of its context
        policy = _policy.get()
        if policy is None:
            return original(self)
        return _query_consent(self, policy)

    aioice.ice.Connection.query_consent = query_consent  # type: ignore[method-assign]


@contextlib.contextmanager
def consent_policy(policy: ConsentPolicy | None) -> Iterator[None]:
    """Use ``policy`` for the connections whose ICE completes in this context (and in the
    tasks started from it); ``None`` restores aioice's loop.

    Raises:
        RuntimeError: :func:`install` was not called (the policy would silently not apply).
    """
    if policy is not None and _original is None:
        raise RuntimeError("call collab.peer.ice_tuning.install() before consent_policy(...)")
    token = _policy.set(policy)
    try:
        yield
    finally:
        _policy.reset(token)


@contextlib.contextmanager
def consent_checks(interval: float | None) -> Iterator[None]:
    """:func:`install` and use ``ConsentPolicy(interval)`` in this context; nothing at all
    when ``interval`` is None (``PeerConfig.consent_interval``'s default: aioice's loop)."""
    if interval is None:
        yield
        return
    install()
    with consent_policy(ConsentPolicy(interval=interval)):
        yield


async def _query_consent(connection: aioice.ice.Connection, policy: ConsentPolicy) -> None:
    """Our consent loop for one connection (replaces aioice's ``query_consent``)."""
    assert connection.remote_password is not None  # connect() checked it
    key = connection.remote_password.encode("utf8")
    loop = asyncio.get_running_loop()
    last_ok = loop.time()
    answered = True
    while True:
        if answered:  # after a failed check, the next one starts at once
            await asyncio.sleep(policy.interval * (0.8 + 0.4 * random.random()))
        pairs = list(connection._nominated.values())
        if not pairs:  # nothing nominated (aioice never expires consent then either)
            answered = True
            continue
        answered = False
        for pair in pairs:
            request = connection.build_request(pair, nominate=False)
            try:
                await pair.protocol.request(
                    request,
                    pair.remote_addr,
                    integrity_key=key,
                    retransmissions=policy.retransmissions,
                )
                answered = True
            except stun.TransactionError:
                pass
        if answered:
            last_ok = loop.time()
        elif loop.time() - last_ok >= policy.timeout:
            log.info("ICE consent expired (no response for %.0f s): closing", policy.timeout)
            connection._query_consent_task = None  # close() must not cancel us
            await connection.close()
            return
