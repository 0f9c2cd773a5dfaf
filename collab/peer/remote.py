"""One WebRTC connection to one remote y-webrtc peer: a small per-remote state machine.

:class:`RemotePeer` owns an aiortc ``RTCPeerConnection`` and processes that remote's
signals one at a time (offer / answer / trickled candidates / re-announce). It implements
y-webrtc's glare rule (when both sides offered, the larger ``token`` wins), buffers ICE
candidates until the remote description is applied, never re-offers while its own offer is
outstanding (re-offers are debounced), and gives up after ``connect_timeout``. When the data
channel opens it hands a :class:`collab.peer.datachannel.DataChannel` to the room, which
serves it with the sync room.

States: ``new`` → ``offering`` (we sent an offer) | ``answering`` (we received one) →
``connecting`` → ``open`` → ``closed``.
"""

from __future__ import annotations

import logging
import math
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceCandidate,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.exceptions import InvalidAccessError, InvalidStateError, OperationError

from collab.errors import ProtocolError, TransportError
from collab.peer.config import PeerConfig
from collab.peer.datachannel import (
    DataChannel,
    sctp_rtt,
    selected_candidate_types,
    watch_peer_connection,
)
from collab.peer.large_sync import per_client_requests
from collab.peer.sctp_tuning import install as install_sctp_tuning
from collab.peer.sdp import check_description, parse_candidate
from collab.protocol import SyncStep1, decode_message, decode_state_vector

__all__ = ["ConnectionStats", "RemotePeer", "parse_candidate", "rtc_configuration"]
# parse_candidate lives in collab.peer.sdp (with the description checks); re-exported here

log = logging.getLogger(__name__)

SendSignal = Callable[[str, float, dict[str, Any]], Awaitable[None]]
"""``send_signal(to, token, signal)`` publishes a y-webrtc ``signal`` message."""
ServeChannel = Callable[["RemotePeer", DataChannel], Awaitable[None]]
"""``serve_channel(remote, channel)`` runs the sync room on an open channel until it closes."""

_MAX_INBOX = 256
_MAX_MDNS_CANDIDATES = 4
"""``.local`` candidates handled per connection: each blocks ``addIceCandidate`` for up to 1 s
(aioice resolves it by multicast DNS), one after another."""


def rtc_configuration(config: PeerConfig) -> RTCConfiguration:
    """The aiortc configuration for ``config`` (never aiortc's implicit Google STUN), built
    for each new connection (``ice_servers_factory`` mints fresh TURN credentials)."""
    factory = config.ice_servers_factory
    servers = factory() if factory is not None else config.ice_servers
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(urls=s.urls, username=s.username, credential=s.credential) for s in servers
        ],
        iceTransportPolicy=RTCIceTransportPolicy(config.ice_transport_policy),
    )


def _token() -> float:
    """Our glare token: deliberately far below y-webrtc's ``Date.now() + Math.random()``.

    In glare the larger token wins. If a browser wins, it rejects our offer and we answer
    its offer on a fresh connection — clean. If *we* won, simple-peer would have to answer our
    offer on its own initiator connection (implicit rollback plus two in-band data channels),
    which was measured to leave the pair connected-but-dead about half the time. So the
    Python peer always yields to browsers; between two Python peers the (random) tokens
    still order the offers.
    """
    return random.uniform(1.0, 1_000_000.0)


@dataclass(slots=True)
class ConnectionStats:
    """A snapshot of one connection (``WebrtcRoom.stats()``)."""

    remote_id: str
    state: str
    """``new``/``offering``/``answering``/``connecting``/``open``/``closed``."""
    initiator: bool
    connection_state: str
    """aiortc ``connectionState``."""
    ice_state: str
    rtt: float | None
    """Smoothed SCTP round-trip time in seconds (None before the first SACK)."""
    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    transport_bytes_in: int = 0
    """DTLS bytes received (all SCTP traffic incl. retransmissions and acks)."""
    transport_bytes_out: int = 0
    max_message_size: int = 0
    """The remote's advertised max-message-size (0 while unknown)."""
    opened_after: float | None = None
    """Seconds from the connection's (re)start to the open data channel."""
    restarts: int = 0
    candidate_types: tuple[str, str] | None = None
    """``(local, remote)`` ICE candidate types of the pair in use (``("relay", "relay")``:
    both sides relay through TURN); None until ICE selected a pair."""
    extra: dict[str, int] = field(default_factory=dict)


class RemotePeer:
    """The connection to one remote peer id in one room (see the module docstring).

    Args:
        remote_id: the remote's y-webrtc peer id.
        initiator: True to offer as soon as :meth:`run` starts (after its ``announce``).
        config: ICE servers, timeouts, limits.
        send_signal: publishes our offer/answer to the room.
        serve_channel: runs the sync room on the open channel.
        local_state_vector: our document's state vector (enables piecewise pulls of large
            documents from stock peers, see :mod:`collab.peer.large_sync`).
    """

    def __init__(
        self,
        remote_id: str,
        *,
        initiator: bool,
        config: PeerConfig,
        send_signal: SendSignal,
        serve_channel: ServeChannel,
        local_state_vector: Callable[[], bytes] | None = None,
    ) -> None:
        self.remote_id = remote_id
        self.initiator = initiator
        self.config = config
        self.state = "new"
        self.close_reason = ""
        self.restarts = 0
        self.glare_rejected = 0
        self.signals_ignored = 0
        self.offers_throttled = 0
        self._mdns_candidates = 0
        self._send_signal = send_signal
        self._serve_channel = serve_channel
        self._local_state_vector = local_state_vector
        self.piecewise_requests = 0
        self._pc: RTCPeerConnection | None = None
        self._channel: DataChannel | None = None
        self._remote_set = False
        self._pending: list[RTCIceCandidate | None] = []
        self._token: float | None = None
        self._started_at = time.monotonic()
        self._last_restart = -math.inf
        self._restart_due: float | None = None
        self._opened_after: float | None = None
        self._offer_tokens = float(config.offer_burst)
        self._offer_refill = time.monotonic()
        self._inbox_send, self._inbox_recv = anyio.create_memory_object_stream[
            tuple[str, Any, Any]
        ](_MAX_INBOX)
        self._scope: anyio.CancelScope | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._closed = anyio.Event()
        self._open = anyio.Event()

    # ------------------------------------------------------------------ public
    @property
    def is_open(self) -> bool:
        """True while the data channel is open."""
        return self.state == "open"

    @property
    def pending(self) -> bool:
        """True while the connection is being set up (not open, not closed): it holds
        sockets without serving anyone yet (see :mod:`collab.peer.budget`)."""
        return self.state not in ("open", "closed")

    @property
    def pending_since(self) -> float:
        """``time.monotonic()`` when the current connection attempt started."""
        return self._started_at

    @property
    def channel(self) -> DataChannel | None:
        """The current data channel adapter, if any."""
        return self._channel

    def deliver(self, kind: str, payload: Any = None, token: Any = None) -> None:
        """Queue a signal (``kind`` = ``signal``/``announce``/``restart``) for sequential
        processing."""
        try:
            self._inbox_send.send_nowait((kind, payload, token))
        except anyio.WouldBlock:
            self.signals_ignored += 1
            log.warning("%s: signal inbox full, dropped a %s", self.remote_id, kind)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.signals_ignored += 1

    def close(self, reason: str) -> None:
        """Close this connection (idempotent; teardown finishes inside :meth:`run`)."""
        if self.state != "closed":
            log.info("%s: closing connection: %s", self.remote_id, reason)
            self.close_reason = reason
            self.state = "closed"
        self._inbox_send.close()
        if self._scope is not None:
            self._scope.cancel()

    async def wait_open(self) -> None:
        """Wait until the data channel is open (or the connection closed)."""
        await self._open.wait()

    async def wait_closed(self) -> None:
        """Wait until :meth:`run` has torn everything down."""
        await self._closed.wait()

    async def stats(self) -> ConnectionStats:
        """A snapshot of state, RTT and traffic counters."""
        pc = self._pc
        channel = self._channel
        s = ConnectionStats(
            remote_id=self.remote_id,
            state=self.state,
            initiator=self.initiator,
            connection_state=str(pc.connectionState) if pc else "closed",
            ice_state=str(pc.iceConnectionState) if pc else "closed",
            rtt=sctp_rtt(pc) if pc else None,
            opened_after=self._opened_after,
            restarts=self.restarts,
            candidate_types=selected_candidate_types(pc) if pc else None,
        )
        if channel is not None:
            c = channel.counters
            s.messages_in, s.messages_out = c.messages_in, c.messages_out
            s.bytes_in, s.bytes_out = c.bytes_in, c.bytes_out
            s.max_message_size = channel.max_message_size if channel.is_open else 0
            s.extra = {"dropped_in": c.dropped_in, "send_waits": c.send_waits}
        s.extra["glare_rejected"] = self.glare_rejected
        s.extra["piecewise_requests"] = self.piecewise_requests
        s.extra["signals_ignored"] = self.signals_ignored
        if pc is not None and pc.sctp is not None:
            dtls = pc.sctp.transport
            get = getattr(dtls, "_get_stats", None)
            if get is not None:
                for report in get().values():
                    s.transport_bytes_in = int(getattr(report, "bytesReceived", 0) or 0)
                    s.transport_bytes_out = int(getattr(report, "bytesSent", 0) or 0)
        return s

    # ------------------------------------------------------------------ main loop
    async def run(self) -> None:
        """Process this remote's signals until the connection closes; always cleans up."""
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                if self.state == "closed":
                    scope.cancel()
                async with anyio.create_task_group() as tg:
                    self._tg = tg
                    tg.start_soon(self._watchdog)
                    if self.initiator:
                        await self._offer()
                    async for kind, payload, token in self._inbox_recv:
                        await self._handle(kind, payload, token)
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                if self.state != "closed":
                    self.state = "closed"
                    self.close_reason = self.close_reason or "stopped"
                await self._drop_pc()
                self._inbox_send.close()
                self._inbox_recv.close()
                self._open.set()
                self._closed.set()

    async def _handle(self, kind: str, payload: Any, token: Any) -> None:
        """Process one signal. This is the per-remote error boundary: whatever the remote
        sent, an exception here closes only this connection (or is ignored), never the room."""
        try:
            if kind == "announce":
                await self._on_reannounce()
            elif kind == "restart":
                await self._restart()
            elif kind == "signal":
                await self._on_signal(payload, token)
        except ProtocolError as e:
            self.signals_ignored += 1
            log.warning("%s: ignored a bad signal: %s", self.remote_id, e)
            if self.state == "new" and self._pc is None:
                self.close(e.code)  # nothing usable ever arrived from this remote
        except (InvalidStateError, InvalidAccessError) as e:
            # signals race (an answer to an offer we replaced, glare): start over cleanly
            self.signals_ignored += 1
            log.info("%s: signal out of order (%s), restarting later", self.remote_id, e)
            await self._drop_pc()
            self.state = "new"
        except (TransportError, OperationError, OSError) as e:
            self.signals_ignored += 1
            log.warning("%s: connection set-up failed: %s", self.remote_id, e)
            self.close("setup-failed")
        except Exception:
            # aiortc raised on input our checks let through (KeyError, AssertionError, ...):
            # contained here, with its traceback, so it can be fixed at the validator.
            self.signals_ignored += 1
            log.exception("%s: aiortc failed on a signal; closing this connection", self.remote_id)
            self.close("bad-signal")

    async def _watchdog(self) -> None:
        while True:
            remaining = self._started_at + self.config.connect_timeout - time.monotonic()
            if self.state == "open":
                await self._wait_not_open()
                continue
            if remaining <= 0:
                self.close("connect-timeout")
                return
            await anyio.sleep(remaining)

    async def _wait_not_open(self) -> None:
        while self.state == "open":
            channel = self._channel
            if channel is None:
                return
            await channel.wait_closed()
            if self.state == "open":
                self.close("channel closed")

    # ------------------------------------------------------------------ signals
    async def _on_signal(self, signal: Any, token: Any) -> None:
        if not isinstance(signal, dict):
            raise ProtocolError("bad-signal", "signal is not an object")
        remote_token: float | None = None
        if isinstance(token, int | float) and not isinstance(token, bool):
            remote_token = float(token) if math.isfinite(token) else None
        kind = signal.get("type")
        if kind == "offer":
            await self._on_offer(check_description(signal.get("sdp"), "offer"), remote_token)
        elif kind == "answer":
            # our offers come from aiortc: one data-channel section, mid "0"
            answer = check_description(signal.get("sdp"), "answer", offer_mid="0")
            await self._on_answer(answer)
        elif kind == "candidate":
            await self._on_candidate(parse_candidate(signal.get("candidate")))
        elif kind in ("renegotiate", "transceiverRequest"):
            self.signals_ignored += 1
            log.debug("%s: ignored %s (data-only peer)", self.remote_id, kind)
        else:
            raise ProtocolError("bad-signal", f"unknown signal type {str(kind)[:20]!r}")

    def _take_offer_token(self) -> bool:
        now = time.monotonic()
        cfg = self.config
        self._offer_tokens = min(
            float(cfg.offer_burst), self._offer_tokens + (now - self._offer_refill) * cfg.offer_rate
        )
        self._offer_refill = now
        if self._offer_tokens < 1:
            return False
        self._offer_tokens -= 1
        return True

    async def _on_offer(self, sdp: str, remote_token: float | None) -> None:
        if not self._take_offer_token():
            # every offer rebuilds the connection (new sockets): a remote re-offering in a loop
            # is throttled instead of churning file descriptors
            self.signals_ignored += 1
            self.offers_throttled += 1
            log.info("%s: offers too frequent, ignored one", self.remote_id)
            return
        if (
            self.state == "offering"
            and self._token is not None
            and remote_token is not None
            and self._token > remote_token
        ):
            # y-webrtc's rule: the larger token wins; ours is larger, so theirs is rejected
            # and the remote will answer our offer instead.
            self.glare_rejected += 1
            log.info("%s: glare, rejected their offer (our token is larger)", self.remote_id)
            return
        if self.state in ("offering", "open", "connecting", "answering"):
            log.info("%s: accepting a new offer in state %s", self.remote_id, self.state)
            self.restarts += 1
        await self._drop_pc(keep_pending=True)
        self.initiator = False
        self.state = "answering"
        self._started_at = time.monotonic()
        pc = self._new_pc()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await self._remote_description_applied(pc)
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        if pc is not self._pc:
            return
        self._token = _token()
        self.state = "connecting"
        await self._send_signal(
            self.remote_id, self._token, {"type": "answer", "sdp": pc.localDescription.sdp}
        )

    async def _on_answer(self, sdp: str) -> None:
        pc = self._pc
        if self.state != "offering" or pc is None or pc.signalingState != "have-local-offer":
            self.signals_ignored += 1
            log.info("%s: ignored an answer in state %s", self.remote_id, self.state)
            return
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        self._token = None  # like y-webrtc: an answered conn no longer competes in glare
        self.state = "connecting"
        await self._remote_description_applied(pc)

    async def _on_candidate(self, candidate: RTCIceCandidate | None) -> None:
        if candidate is not None and candidate.ip.endswith(".local"):
            self._mdns_candidates += 1
            if self._mdns_candidates > _MAX_MDNS_CANDIDATES:
                self.signals_ignored += 1
                return  # each costs up to 1 s of this connection's signal processing
            log.debug("%s: mDNS candidate (aioice resolves it)", self.remote_id)
        pc = self._pc
        if pc is None or not self._remote_set:
            if len(self._pending) >= self.config.max_pending_candidates:
                self.signals_ignored += 1
                log.warning("%s: too many early candidates, dropped one", self.remote_id)
                return
            self._pending.append(candidate)
            return
        await self._add_candidate(pc, candidate)

    async def _add_candidate(
        self, pc: RTCPeerConnection, candidate: RTCIceCandidate | None
    ) -> None:
        try:
            await pc.addIceCandidate(candidate)
        except (ValueError, OSError) as e:
            # after end-of-candidates / no matching transport; OSError: aioice could not bind
            # its mDNS resolver (port 5353 taken) for a .local candidate
            self.signals_ignored += 1
            log.info("%s: candidate not added: %s", self.remote_id, e)

    async def _remote_description_applied(self, pc: RTCPeerConnection) -> None:
        self._remote_set = True
        pending, self._pending = self._pending, []
        for candidate in pending:
            if pc is not self._pc:
                return
            await self._add_candidate(pc, candidate)

    async def _on_reannounce(self) -> None:
        if self.state == "open":
            return  # y-webrtc re-announces to the whole room whenever any of its conns closes
        # A re-announce while we are not open means the remote dropped its side. y-webrtc
        # announces once for 'error' and again for 'close', and its 'close' handler deletes
        # whatever conn is then registered for our id — so restarting between the two would
        # orphan the new conn. Restart once the announces have been quiet for
        # ``reannounce_settle`` seconds, and at most once per ``reannounce_debounce``.
        now = time.monotonic()
        if now - self._last_restart < self.config.reannounce_debounce:
            self.signals_ignored += 1
            return
        first = self._restart_due is None
        self._restart_due = now + self.config.reannounce_settle
        if first and self._tg is not None:
            self._tg.start_soon(self._restart_when_quiet)

    async def _restart_when_quiet(self) -> None:
        # a deadline that later announces push back (not a condition poll)
        while self._restart_due is not None and time.monotonic() < self._restart_due:  # noqa: ASYNC110
            await anyio.sleep(self._restart_due - time.monotonic())
        self.deliver("restart")

    async def _restart(self) -> None:
        self._restart_due = None
        if self.state == "open":
            return
        self._last_restart = time.monotonic()
        log.info("%s: re-announced while we are %s: starting over", self.remote_id, self.state)
        self.restarts += 1
        await self._offer()

    # ------------------------------------------------------------------ offers
    async def _offer(self) -> None:
        await self._drop_pc()
        self.initiator = True
        self._started_at = time.monotonic()
        pc = self._new_pc()
        rtc_channel = pc.createDataChannel(secrets.token_hex(20))
        self._adopt(pc, rtc_channel)
        offer = await pc.createOffer()
        await pc.setLocalDescription(offer)  # aiortc gathers all candidates here
        if pc is not self._pc:
            return
        self._token = _token()
        self.state = "offering"
        await self._send_signal(
            self.remote_id, self._token, {"type": "offer", "sdp": pc.localDescription.sdp}
        )

    # ------------------------------------------------------------------ peer connection
    def _new_pc(self) -> RTCPeerConnection:
        install_sctp_tuning()  # delayed, bundled SACKs (collab.peer.sctp_tuning), idempotent
        pc = RTCPeerConnection(rtc_configuration(self.config))
        self._pc = pc
        self._remote_set = False

        def on_state(state: str) -> None:
            if pc is self._pc and state in ("failed", "closed"):
                self.close(f"connection {state}")

        def on_datachannel(rtc_channel: RTCDataChannel) -> None:
            if pc is self._pc and self._channel is None:
                self._adopt(pc, rtc_channel)
            else:
                log.info("%s: ignored an extra data channel", self.remote_id)
                rtc_channel.close()

        watch_peer_connection(pc, on_state=on_state, on_datachannel=on_datachannel)
        return pc

    def _adopt(self, pc: RTCPeerConnection, rtc_channel: RTCDataChannel) -> None:
        cfg = self.config
        channel = DataChannel(
            rtc_channel,
            label=self.remote_id,
            high_water=cfg.send_high_water,
            low_water=cfg.send_low_water,
            max_inbox=cfg.max_inbox,
            max_incoming=cfg.max_incoming_message,
            on_receive=self._watch_step1 if self._local_state_vector is not None else None,
        )
        self._channel = channel
        if self._tg is not None:
            self._tg.start_soon(self._serve, pc, channel)

    def _watch_step1(self, message: bytes) -> None:
        # [0, 0, sv]: the remote's sync step 1 (every y-webrtc peer sends one per connection)
        if not message.startswith(b"\x00\x00") or self._local_state_vector is None:
            return
        try:
            decoded = decode_message(message)
            if not isinstance(decoded, SyncStep1):
                return
            remote_sv = decode_state_vector(decoded.state_vector)
            local_sv = decode_state_vector(self._local_state_vector())
        except ProtocolError as e:
            log.info("%s: unreadable sync step 1 (%s), left to the sync room", self.remote_id, e)
            return
        requests = per_client_requests(
            remote_sv, local_sv, threshold=self.config.large_sync_threshold
        )
        channel = self._channel
        if requests and channel is not None and self._tg is not None:
            self.piecewise_requests += len(requests)
            log.info(
                "%s: large remote document, asking %d clients one by one",
                self.remote_id,
                len(requests),
            )
            self._tg.start_soon(self._send_requests, channel, requests)

    async def _send_requests(self, channel: DataChannel, requests: list[bytes]) -> None:
        for request in requests:
            try:
                await channel.send(request)
            except (TransportError, ProtocolError) as e:
                log.info("%s: piecewise request not sent: %s", self.remote_id, e)
                return
            await anyio.lowlevel.checkpoint()  # pace a burst (send need not yield)

    async def _serve(self, pc: RTCPeerConnection, channel: DataChannel) -> None:
        try:
            await channel.wait_open()
        except TransportError:
            return
        if pc is not self._pc or self.state == "closed":
            return
        self.state = "open"
        self._opened_after = time.monotonic() - self._started_at
        self._token = None
        self._open.set()
        log.info("%s: data channel open after %.3f s", self.remote_id, self._opened_after)
        try:
            await self._serve_channel(self, channel)
        finally:
            await channel.close()
            if channel is self._channel and self.state == "open":
                self.close(channel.close_reason or "served")

    async def _drop_pc(self, *, keep_pending: bool = False) -> None:
        pc, channel = self._pc, self._channel
        self._pc = None
        self._channel = None
        self._remote_set = False
        if not keep_pending:
            self._pending = []
        if channel is not None:
            await channel.close()
        if pc is not None:
            try:
                await pc.close()
            except Exception:  # aiortc can fail to close a half-built connection
                log.exception("%s: closing a peer connection failed", self.remote_id)
