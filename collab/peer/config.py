"""Configuration of the Python WebRTC peer (ICE servers, limits, timers).

Example:
    >>> from collab.peer.config import IceServer, PeerConfig
    >>> cfg = PeerConfig(ice_servers=[IceServer("stun:stun.example.org:3478")])
    >>> cfg.max_conns
    20

TURN (coturn) — what a working set-up needs, on both the browser and the Python side::

    PeerConfig(ice_servers=[
        IceServer("stun:turn.example.org:3478"),
        IceServer("turn:turn.example.org:3478?transport=udp",
                  username="alice", credential="s3cret"),
    ])

    # /etc/turnserver.conf
    listening-port=3478
    realm=turn.example.org
    lt-cred-mech                 # static users:  user=alice:s3cret
    # or: use-auth-secret + static-auth-secret=...  (time-limited REST credentials:
    #     username = "<unix-expiry>:<name>", credential = base64(HMAC-SHA1(secret, username)))
    external-ip=203.0.113.10     # public IP (or "public/private" behind 1:1 NAT)
    min-port=49160
    max-port=49200               # open this UDP relay range in the firewall, plus 3478 udp+tcp
    fingerprint
    no-cli

The browser side needs the same entry in ``peerOpts: {config: {iceServers: [...]}}`` of
``WebrtcProvider``; a ``stun:`` URL never carries credentials, a ``turn:`` URL always does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["IceServer", "PeerConfig"]


@dataclass(frozen=True, slots=True)
class IceServer:
    """One STUN or TURN server (the WebRTC ``RTCIceServer`` dictionary)."""

    urls: str | list[str]
    """``"stun:host:3478"`` or ``"turn:host:3478?transport=udp"`` (or a list of them)."""
    username: str | None = None
    """TURN username (``lt-cred-mech`` user, or ``expiry:name`` for ``use-auth-secret``)."""
    credential: str | None = None
    """TURN password / REST credential."""

    def __post_init__(self) -> None:
        urls = [self.urls] if isinstance(self.urls, str) else list(self.urls)
        if not urls:
            raise ValueError("IceServer needs at least one URL")
        for url in urls:
            if not url.startswith(("stun:", "stuns:", "turn:", "turns:")):
                raise ValueError(f"ICE server URL must start with stun:/turn: — got {url!r}")
            if url.startswith("turn") and (self.username is None or self.credential is None):
                raise ValueError(f"TURN server {url!r} needs username= and credential=")

    @property
    def is_turn(self) -> bool:
        """Whether any of its URLs is a ``turn:``/``turns:`` URL."""
        urls = [self.urls] if isinstance(self.urls, str) else self.urls
        return any(url.startswith("turn") for url in urls)


@dataclass(frozen=True, slots=True)
class PeerConfig:
    """Options of a :class:`collab.peer.WebrtcRoom` / :class:`collab.peer.WebrtcPeer`."""

    ice_servers: list[IceServer] = field(default_factory=list)
    """STUN/TURN servers. Empty (the default) means host candidates only — fine on one LAN or
    in tests; add a STUN server (and TURN for symmetric NATs) for the internet. Unlike aiortc's
    own default, nothing is contacted unless it is listed here. aiortc uses the first STUN URL
    and the first ``turn:`` URL (``?transport=udp`` or ``tcp``) only."""
    ice_servers_factory: Callable[[], list[IceServer]] | None = None
    """Called for every new connection; what it returns replaces ``ice_servers``. For
    time-limited TURN credentials (coturn's ``use-auth-secret``, see ``collabd.turn``), so a
    long-running peer never offers an expired one."""
    ice_transport_policy: Literal["all", "relay"] = "all"
    """``"relay"``: gather and use only TURN relay candidates — no host or server-reflexive
    ones (the browser's ``RTCConfiguration.iceTransportPolicy``, which aiortc implements:
    aioice then skips host addresses and ignores remote mDNS names). Hides this peer's
    addresses from the remotes; needs a TURN server."""
    max_conns: int = 20
    """Initiate connections to newly announced peers only below this many (like y-webrtc's
    ``maxConns``). Incoming offers are always answered, as y-webrtc does."""
    max_remotes: int = 200
    """Hard cap on connections (any state) per room, incoming offers included: offers from
    further peer ids are ignored, so a flood of offers cannot exhaust the process."""
    connect_timeout: float = 20.0
    """Seconds a connection may take from offer to open data channel before it is dropped."""
    reannounce_debounce: float = 1.0
    """Minimum seconds between two restarts of the connection to the same remote peer."""
    reannounce_settle: float = 0.25
    """A remote that re-announces while we are not connected is offered to again once its
    announces have been quiet this long (y-webrtc sends bursts: one for 'error', one for
    'close')."""
    ping_interval: float = 15.0
    """Seconds between ``{"type":"ping"}`` keepalives on the signaling socket (lib0 uses 15)."""
    signaling_timeout: float = 30.0
    """Reconnect the signaling socket when nothing arrived for this long (lib0 uses 30)."""
    reconnect_min: float = 0.1
    """First reconnect delay after losing signaling, seconds (doubles up to ``reconnect_max``)."""
    reconnect_max: float = 2.5
    """Largest reconnect delay, seconds (lib0 caps at 2.5 s)."""
    max_signaling_message: int = 1 << 20
    """Largest signaling frame accepted, bytes."""
    max_subscribe_frame: int = 64 * 1024
    """Largest ``subscribe`` frame sent when (re)subscribing many topics at once: well under
    the signaling servers' frame limits (ours: 256 KiB), so a process following thousands of
    rooms re-subscribes in several frames instead of being closed for one huge frame."""
    max_pending: int = 16
    """Connections per room that are not open yet (offered, answering, connecting). Each holds
    UDP sockets (file descriptors) until it opens or times out; at the cap the oldest one older
    than ``pending_min_age`` is evicted for a newcomer, otherwise the new offer is ignored."""
    max_pending_total: int = 64
    """The same cap across every room of the process (a :class:`ConnectionBudget`)."""
    pending_min_age: float = 1.0
    """A pending connection younger than this is never evicted (a real browser needs a moment
    to finish ICE and DTLS), so a flood cannot starve legitimate connections."""
    offer_burst: int = 4
    """Offers accepted at once from one remote peer id (each rebuilds its connection)."""
    offer_rate: float = 0.5
    """Sustained offers per second accepted from one remote peer id; more are ignored."""
    fd_reserve: float = 0.25
    """Fraction of the process's file-descriptor limit (``ulimit -n``) kept free: no new
    connection is started while fewer descriptors than that remain."""
    max_pending_candidates: int = 64
    """ICE candidates buffered per remote before its description is known; more are dropped."""
    send_high_water: int = 1 << 20
    """Data-channel ``bufferedAmount`` above which ``send`` waits."""
    send_low_water: int = 256 * 1024
    """``bufferedAmountLowThreshold``: sending resumes once the buffer drains below this."""
    max_inbox: int = 10_000
    """Received messages queued per channel before the connection is closed as overloaded."""
    max_incoming_message: int = 262_144
    """Largest incoming data-channel message (our advertised ``a=max-message-size``)."""
    consent_interval: float | None = None
    """Mean seconds between our own ICE consent checks (RFC 7675 STUN requests on each open
    connection); the connection closes after 30 s without a response either way. None keeps
    aioice's loop (every 5 s). The archival replica uses 15 s: see
    :mod:`collab.peer.ice_tuning` (the remote's checks are always answered)."""
    large_sync_threshold: int = 100_000
    """When the remote's state vector shows we lack at least this many clocks (≈ characters)
    spread over several clients, also ask for each client separately, so a stock y-webrtc
    peer whose single sync step 2 would exceed 256 KiB (and be dropped) still delivers its
    document piecewise (see :mod:`collab.peer.large_sync`). 0 disables it."""

    def __post_init__(self) -> None:
        if self.max_conns < 0:
            raise ValueError("max_conns must be >= 0")
        if self.send_low_water > self.send_high_water:
            raise ValueError("send_low_water must be <= send_high_water")
        if min(self.connect_timeout, self.ping_interval, self.signaling_timeout) <= 0:
            raise ValueError("timeouts must be positive")
        if self.consent_interval is not None and self.consent_interval <= 0:
            raise ValueError("consent_interval must be positive (or None)")
        if min(self.max_pending, self.max_pending_total, self.offer_burst) < 1:
            raise ValueError("max_pending, max_pending_total and offer_burst must be >= 1")
        if not 0 <= self.fd_reserve < 1:
            raise ValueError("fd_reserve must be in [0, 1)")
        if self.ice_transport_policy not in ("all", "relay"):
            raise ValueError("ice_transport_policy must be 'all' or 'relay'")
        if (
            self.ice_transport_policy == "relay"
            and self.ice_servers_factory is None
            and not any(s.is_turn for s in self.ice_servers)
        ):
            raise ValueError("ice_transport_policy='relay' needs a TURN server in ice_servers")
