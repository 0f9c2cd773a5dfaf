"""Pulling a large document out of a stock y-webrtc peer, one client at a time.

Stock y-webrtc answers a sync step 1 with ONE sync step 2 message; when that is larger than the
SCTP ``max-message-size`` (256 KiB in Chromium), ``send`` throws, y-webrtc swallows the error,
and the asking peer never gets the document. A sync step 1 carries a state vector, and Yjs
answers with every struct of every client whose clock is *above* the asked one — so a step 1
that claims to already hold every client but one asks for that one client's structs only.

:func:`per_client_requests` builds those step 1s from the remote's own state vector (which it
sends us first on every connection). This recovers documents whose content is spread over
several clients (every editing session in Yjs gets a new client id), as long as each client's
share fits in one message. A single client holding more than ~256 KiB cannot be pulled through
y-webrtc's protocol at all: a state vector only sets a lower bound per client.

Example:
    >>> msgs = per_client_requests({1: 300_000, 2: 200_000}, {}, threshold=100_000)
    >>> len(msgs)
    2
    >>> per_client_requests({1: 10}, {}, threshold=100_000)
    []
"""

from __future__ import annotations

from collab.protocol import encode_state_vector, encode_sync_step1

__all__ = ["per_client_requests"]


def per_client_requests(
    remote_sv: dict[int, int], local_sv: dict[int, int], *, threshold: int
) -> list[bytes]:
    """Sync step 1 messages asking ``remote`` for one client's missing structs each.

    Returns ``[]`` when we lack fewer than ``threshold`` clocks in total (the ordinary step 2
    fits), when ``threshold <= 0``, or when only one client is missing (nothing to gain).
    """
    if threshold <= 0:
        return []
    missing = {c: clock for c, clock in remote_sv.items() if clock > local_sv.get(c, 0)}
    if len(missing) < 2 or sum(c - local_sv.get(k, 0) for k, c in missing.items()) < threshold:
        return []
    requests = []
    for client in sorted(missing, key=lambda c: missing[c] - local_sv.get(c, 0)):
        sv = {**local_sv, **remote_sv}  # claim to hold everything the remote has ...
        sv[client] = local_sv.get(client, 0)  # ... except this one client's structs
        requests.append(encode_sync_step1(encode_state_vector(sv)))
    return requests
