"""In-memory :class:`~collab.types.Channel` pairs with deterministic fault injection.

For tests, examples and benchmarks: no sockets, same contract as a WebRTC data channel
(reliable, ordered, whole messages, ``max_message_size``). Faults are what really happens to
peers on a WebRTC mesh:

* **loss** — a reliable-ordered data channel never loses a single message; what happens is the
  *connection* breaks. :attr:`Faults.loss` is the probability that a message is lost *and the
  link breaks* (both ends close with reason ``"link-lost"``); the owner reconnects and the
  fresh sync step 1/2 repairs the gap. :meth:`MemoryNetwork.drop_next` drops exactly one
  message without breaking the link, to test raw-loss recovery by reconnection.
* **duplication** — :attr:`Faults.duplicate`: a message is delivered twice in a row.
* **delay / reordering across connections** — with :attr:`Faults.hold`, sent messages wait in
  flight until :meth:`MemoryNetwork.step` / :meth:`MemoryNetwork.settle` deliver them, picking
  the next link at random under the network's seed (each link stays FIFO, like SCTP).
* **partitions that heal** — :meth:`Link.partition` holds traffic; :meth:`Link.heal` releases it
  in order. :meth:`Link.break_` closes the link (a crash of the transport).
* **crash/restart** — :class:`MemoryPeer` keeps a persisted update log beside a
  :class:`~collab.sync.SyncRoom`; :meth:`MemoryPeer.crash` drops the room (closing its
  connections), :meth:`MemoryPeer.restart` rebuilds a new document (new client id) from the log.

Everything random comes from one ``random.Random(seed)``, so a run is reproducible and
Hypothesis can shrink it.

Example:
    >>> import anyio
    >>> async def main() -> bytes:
    ...     left, right = channel_pair()
    ...     await left.send(b"hi")
    ...     return await right.recv()
    >>> anyio.run(main)
    b'hi'
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio

from collab.document import Document, RootKind
from collab.errors import TransportError
from collab.protocol import DEFAULT_MAX_MESSAGE_SIZE
from collab.sync import DocumentUpdated, SyncOptions, SyncRoom
from collab.types import messages

__all__ = [
    "Faults",
    "Link",
    "MemoryChannel",
    "MemoryNetwork",
    "MemoryPeer",
    "channel_pair",
    "wait_idle",
]


@dataclass(frozen=True, slots=True)
class Faults:
    """Fault probabilities of one link (all default to a perfect link)."""

    loss: float = 0.0
    "Probability that a message is lost, which breaks the link (``link-lost``)."
    duplicate: float = 0.0
    "Probability that a message is delivered twice."
    hold: bool = False
    "Keep messages in flight until the network delivers them (step/settle)."


class MemoryChannel:
    """One end of a :class:`Link`; implements :class:`collab.types.Channel`."""

    def __init__(self, link: Link, side: int, max_message_size: int) -> None:
        self._link = link
        self._side = side
        self._max_message_size = max_message_size
        self._inbox: deque[bytes] = deque()
        self._wakeup = anyio.Event()

    @property
    def max_message_size(self) -> int:
        """The largest message the other side accepts."""
        return self._max_message_size

    @property
    def closed(self) -> bool:
        """True once either side closed (or the link broke)."""
        return self._link.close_reason is not None

    @property
    def close_reason(self) -> str | None:
        """The reason given by whoever closed the link first."""
        return self._link.close_reason

    async def send(self, message: bytes) -> None:
        """Send one message (raises ``TransportError`` when closed, ``ValueError`` if too big)."""
        if self._link.close_reason is not None:
            raise TransportError("closed", self._link.close_reason)
        if len(message) > self._max_message_size:
            raise ValueError(f"message of {len(message)} B > max {self._max_message_size} B")
        self._link._transmit(self._side, bytes(message))
        await anyio.lowlevel.checkpoint()

    async def recv(self) -> bytes:
        """Receive the next message (raises ``TransportError`` once closed)."""
        while True:
            if self._link.close_reason is not None:
                raise TransportError("closed", self._link.close_reason)
            if self._inbox:
                return self._inbox.popleft()
            wakeup = self._wakeup
            await wakeup.wait()

    def _deliver(self, message: bytes) -> None:
        self._inbox.append(message)
        self._wake()

    def _wake(self) -> None:
        self._wakeup.set()
        self._wakeup = anyio.Event()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return messages(self)

    async def close(self, reason: str = "") -> None:
        """Close both ends (idempotent)."""
        self._link._close(reason or "closed")
        await anyio.lowlevel.checkpoint()


class Link:
    """A bidirectional link between two :class:`MemoryChannel` s (see the module docstring)."""

    def __init__(
        self, network: MemoryNetwork, name: str, faults: Faults, max_message_size: int
    ) -> None:
        self.network = network
        "The network this link belongs to."
        self.name = name
        "A label for debugging."
        self.faults = faults
        "This link's faults."
        self.ends = (
            MemoryChannel(self, 0, max_message_size),
            MemoryChannel(self, 1, max_message_size),
        )
        "The two channels (side 0 sends to side 1 and back)."
        self.close_reason: str | None = None
        "Set when closed."
        self.partitioned = False
        "While true, traffic is held."
        self.in_flight: tuple[deque[bytes], deque[bytes]] = (deque(), deque())
        "Messages sent by side 0 / side 1 not yet delivered."
        self.delivered = 0
        "Messages delivered so far (both directions)."

    def _transmit(self, side: int, message: bytes) -> None:
        rng = self.network.rng
        if self.network._drop_next.get(self.name, 0) > 0:
            self.network._drop_next[self.name] -= 1
            self.network.dropped += 1
            return
        if self.faults.loss and rng.random() < self.faults.loss:
            self.network.dropped += 1
            self._close("link-lost")
            return
        copies = 2 if self.faults.duplicate and rng.random() < self.faults.duplicate else 1
        for _ in range(copies):
            self.in_flight[side].append(message)
        if not self.faults.hold and not self.partitioned:
            self._flush(side)

    def _flush(self, side: int) -> None:
        queue = self.in_flight[side]
        while queue and self.close_reason is None:
            self._deliver_one(side)

    def _deliver_one(self, side: int) -> None:
        message = self.in_flight[side].popleft()
        self.delivered += 1
        self.ends[1 - side]._deliver(message)

    def _close(self, reason: str) -> None:
        if self.close_reason is not None:
            return
        self.close_reason = reason
        for queue in self.in_flight:
            queue.clear()
        for end in self.ends:
            end._wake()
        self.network._links.discard(self)

    def partition(self) -> None:
        """Hold all traffic (nothing is lost) until :meth:`heal`."""
        self.partitioned = True

    def heal(self) -> None:
        """End a partition; held messages become deliverable again (in order)."""
        self.partitioned = False
        if not self.faults.hold:
            self._flush(0)
            self._flush(1)

    def break_(self, reason: str = "link-lost") -> None:
        """Break the link: in-flight messages are lost, both ends close with ``reason``."""
        self._close(reason)

    @property
    def closed(self) -> bool:
        """True once closed."""
        return self.close_reason is not None

    def deliverable(self) -> list[int]:
        """Sides with messages that could be delivered now."""
        if self.partitioned or self.close_reason is not None:
            return []
        return [side for side in (0, 1) if self.in_flight[side]]


class MemoryNetwork:
    """A set of links sharing one seeded random source and one delivery scheduler.

    Example:
        >>> net = MemoryNetwork(seed=1)
        >>> a, b = net.link(faults=Faults(hold=True)).ends
    """

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        "The only source of randomness (reproducible under ``seed``)."
        self.dropped = 0
        "Messages lost so far."
        self._links: set[Link] = set()
        self._counter = 0
        self._drop_next: dict[str, int] = {}

    @property
    def links(self) -> list[Link]:
        """Open links, in creation order."""
        return sorted(self._links, key=lambda link: link.name)

    def link(
        self,
        *,
        faults: Faults | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        name: str | None = None,
    ) -> Link:
        """Create a link; use ``link.ends`` as the two channels."""
        self._counter += 1
        link = Link(self, name or f"link-{self._counter:06d}", faults or Faults(), max_message_size)
        self._links.add(link)
        return link

    def drop_next(self, link: Link, count: int = 1) -> None:
        """Silently lose the next ``count`` messages sent on ``link`` (either direction).

        This is *not* something WebRTC does; it exists to show that only reconnection
        (a fresh step 1/2) repairs raw loss.
        """
        self._drop_next[link.name] = self._drop_next.get(link.name, 0) + count

    def step(self) -> bool:
        """Deliver one held message from a randomly chosen link/direction.

        Returns:
            False when nothing is deliverable.
        """
        candidates = [(link, side) for link in self.links for side in link.deliverable()]
        if not candidates:
            return False
        link, side = self.rng.choice(candidates)
        link._deliver_one(side)
        return True

    def pending(self) -> int:
        """Messages in flight on open links (including partitioned ones)."""
        return sum(len(q) for link in self._links for q in link.in_flight)

    async def settle(self, max_steps: int = 1_000_000) -> None:
        """Deliver messages until nothing is deliverable and every task is blocked.

        Uses :func:`wait_idle` (no sleeps): quiescence means every room has processed its
        inbox and flushed its outbox.

        Raises:
            RuntimeError: the network did not quiesce within ``max_steps`` deliveries.
        """
        for _ in range(max_steps):
            await wait_idle()
            if not self.step():
                await wait_idle()
                if not any(link.deliverable() for link in self._links):
                    return
        raise RuntimeError(f"network did not settle within {max_steps} deliveries")


async def wait_idle(max_rounds: int = 100_000) -> None:
    """Yield to the event loop until every other task is blocked on something.

    Like ``anyio.wait_all_tasks_blocked`` but without its 0.1 s sleeps (asyncio only, which
    is all collab supports: aiortc is asyncio-only).

    Raises:
        RuntimeError: some task kept running for ``max_rounds`` scheduler rounds.
    """
    this = asyncio.current_task()
    for _ in range(max_rounds):
        await anyio.lowlevel.checkpoint()
        for task in asyncio.all_tasks():
            if task is this:
                continue
            waiter = getattr(task, "_fut_waiter", None)
            if waiter is None or waiter.done():
                break
        else:
            return
    raise RuntimeError(f"tasks still running after {max_rounds} scheduler rounds")


def channel_pair(
    *,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    faults: Faults | None = None,
    seed: int = 0,
) -> tuple[MemoryChannel, MemoryChannel]:
    """Two connected channels on a private network (delivery is immediate unless held).

    Example:
        >>> left, right = channel_pair(max_message_size=1024)
        >>> left.max_message_size
        1024
    """
    link = MemoryNetwork(seed).link(faults=faults, max_message_size=max_message_size)
    return link.ends


@dataclass
class MemoryPeer:
    """A :class:`SyncRoom` whose updates are persisted to an in-memory log.

    :meth:`crash` loses the room (its connections close with ``"crash"``) and keeps the log;
    :meth:`restart` builds a fresh room from the log with a **new** client id (reusing the id
    would be unsafe if the log missed some of our own updates that peers already hold).

    Example:
        >>> peer = MemoryPeer("a", roots={"t": "text"})
        >>> peer.room.document.text("t").insert(0, "x")
        >>> peer.crash(); peer.restart()
        >>> str(peer.room.document.text("t"))
        'x'
    """

    name: str
    "A label."
    roots: dict[str, RootKind] = field(default_factory=dict)
    "Root types to declare in every incarnation."
    options: SyncOptions = field(default_factory=SyncOptions)
    "Room options."
    seed: int | None = None
    "Draw client ids from ``random.Random(seed)`` (reproducible runs); random if ``None``."
    log: list[bytes] = field(default_factory=list)
    "Persisted updates (every document update, in order)."
    room: SyncRoom = field(init=False)
    "The current incarnation."
    incarnation: int = field(default=0, init=False)
    "How many times it restarted."
    crashed: bool = field(default=False, init=False)
    "True between :meth:`crash` and :meth:`restart`."

    def __post_init__(self) -> None:
        self._ids = random.Random(self.seed) if self.seed is not None else None
        self.room = self._new_room()

    def _new_room(self) -> SyncRoom:
        client_id = None if self._ids is None else self._ids.randrange(1, 2**31)
        document = Document(client_id=client_id, roots=self.roots)
        for update in self.log:
            document.apply_update(update, origin="restore")
        room = SyncRoom(document, options=self.options)
        room.observe(self._persist)
        return room

    def _persist(self, event: Any) -> None:
        if isinstance(event, DocumentUpdated) and event.origin != "restore":
            self.log.append(event.update)

    def crash(self) -> None:
        """Lose the in-memory room; its connections end (reason ``room-closed``)."""
        self.room.close()
        self.crashed = True

    def restart(self) -> None:
        """Rebuild the room from the persisted log (new client id)."""
        self.incarnation += 1
        self.crashed = False
        self.room = self._new_room()
