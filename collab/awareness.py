"""Awareness (presence) with y-protocols semantics, fed only by strictly decoded entries.

We do not feed untrusted bytes to pycrdt's ``Awareness`` (its decoder truncates silently);
:mod:`collab.protocol` decodes and bounds every entry, and :class:`Awareness` applies the
y-protocols 1.0.7 rules to the resulting :class:`~collab.protocol.AwarenessEntry` tuples:

* an entry is accepted when its clock is newer than the known one, or when the clock is equal,
  the state is ``null`` and the client is known (``null`` = the client is gone);
* a remote ``null`` for *our own* client is refused by bumping our clock (the change event then
  re-broadcasts our state, exactly like y-protocols); unlike y-protocols, a remote *state* for
  our own client is refused the same way — nobody can speak for this peer (e.g. claim to be
  the archive with a forged "saved" state vector);
* sizes are bounded: a state whose JSON exceeds ``max_state_bytes`` is dropped (counted in
  :attr:`Awareness.oversized`, not fatal: a browser may only be relaying it), and states that
  would take the room's total over ``max_total_bytes`` are refused (:attr:`Awareness.refused`);
* every accepted entry produces an ``update`` event; only real changes (deep inequality)
  produce a ``change`` event (:attr:`AwarenessEvent.changed`);
* :meth:`Awareness.check` renews our own state every 15 s and expires remote states not
  updated for 30 s (origin ``"timeout"``); :meth:`Awareness.run` calls it every 3 s. The clock
  is injectable so tests need no sleeps;
* with ``renewal_hold > 0`` (the archival replica), a *renewal* — a remote entry accepted with
  a state equal to the one held, which y-protocols peers send every 15–18 s just to stay
  alive — is not emitted at once: renewals are collected and emitted together by the next
  :meth:`Awareness.check` at least ``renewal_hold`` seconds later, in one event (origin
  :data:`RENEWALS`) that also renews our own state if that is at least a quarter of the
  timeout old. A relay then sends one message per connection for several renewals instead
  of one per renewal (plus one for our own). Real changes (a new state, a cursor move, a
  removal) are emitted at once as before.

The replica can hide itself (``Awareness(client_id, state=None)`` or ``set_local_state(None)``)
or show a labelled state, e.g. ``state={"user": {"name": "archive"}}``.

Example:
    >>> from collab.protocol import AwarenessEntry
    >>> aw = Awareness(7, state={"user": {"name": "Zoë"}})
    >>> events = []
    >>> handle = aw.observe(events.append)
    >>> ev = aw.apply((AwarenessEntry(9, 1, {"x": 1}),), origin="peer")
    >>> ev.added, sorted(aw.states)
    ((9,), [7, 9])
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import anyio

from collab.observers import Observers
from collab.protocol import MAX_AWARENESS_STATE_BYTES, AwarenessEntry

__all__ = ["RENEWALS", "Awareness", "AwarenessEvent", "ClientMeta"]

log = logging.getLogger(__name__)

OUTDATED_TIMEOUT: Final = 30.0
"""Seconds after which a remote state that was not renewed is removed (y-protocols)."""

DEFAULT_MAX_CLIENTS: Final = 10_000
"""Cap on remote clients tracked; entries for further new clients are refused and counted."""

DEFAULT_MAX_TOTAL_BYTES: Final = 1 << 20
"""Cap on the JSON bytes of every state held together (one room's presence)."""

RENEWALS: Final = "renewals"
"""Origin of the event that emits held renewals (see ``Awareness.renewal_hold``)."""

_UNSET: Final[Any] = object()


@dataclass(slots=True)
class ClientMeta:
    """What we know about one client's awareness clock."""

    clock: int
    "The last accepted clock of that client."
    last_updated: float
    "Our clock reading when the entry was accepted (seconds)."


@dataclass(frozen=True, slots=True)
class AwarenessEvent:
    """One accepted awareness update.

    ``added``/``updated``/``removed`` follow y-protocols' ``update`` event (every accepted
    entry); ``changed`` is true when it was also a ``change`` (state really differs).
    """

    added: tuple[int, ...]
    "Clients that appeared."
    updated: tuple[int, ...]
    "Clients whose state was re-sent (maybe unchanged)."
    removed: tuple[int, ...]
    "Clients that went away (``null`` state or timeout)."
    origin: Any
    "Who caused it: a connection, ``'local'`` or ``'timeout'``."
    changed: bool = True
    "True when at least one state really changed (y-protocols ``change``)."

    @property
    def clients(self) -> tuple[int, ...]:
        """``added + updated + removed``: the clients to re-broadcast."""
        return self.added + self.updated + self.removed


AwarenessObserver = Callable[[AwarenessEvent], None]


@dataclass
class Awareness:
    """The awareness states of one document (see the module docstring).

    Args:
        client_id: our Yjs client id (the document's).
        state: our initial local state; ``{}`` like y-protocols, ``None`` to stay hidden.
        clock: a monotonic clock in seconds (inject a fake one in tests).
        outdated_timeout: seconds before remote states expire (renewal at half of it).
        max_clients: cap on tracked remote clients.
    """

    client_id: int
    "Our own Yjs client id."
    state: Any = field(default_factory=dict)
    "Initial local state (``None`` = hidden); a non-empty one is announced with clock 1."
    clock: Callable[[], float] = time.monotonic
    "Time source in seconds."
    outdated_timeout: float = OUTDATED_TIMEOUT
    "Expiry for remote states, seconds."
    max_clients: int = DEFAULT_MAX_CLIENTS
    "Maximum number of clients tracked."
    max_state_bytes: int = MAX_AWARENESS_STATE_BYTES
    "Largest accepted state (JSON, UTF-8 bytes); larger remote states are dropped."
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    "Largest total of all states held (JSON bytes); growth beyond it is refused."
    renewal_hold: float = 0.0
    """Seconds a remote renewal (unchanged state, newer clock) is held before it is emitted
    with the others (see the module docstring); 0 emits every accepted entry at once. At most
    ``outdated_timeout / 5`` (the relayed renewal must still reach the others in time)."""

    refused: int = field(default=0, init=False)
    "Entries refused because of :attr:`max_clients` or :attr:`max_total_bytes` (a counter)."
    oversized: int = field(default=0, init=False)
    "Remote states dropped because they exceeded :attr:`max_state_bytes` (a counter)."
    forged: int = field(default=0, init=False)
    "Remote entries for our own client id that were refused (a counter)."
    _states: dict[int, Any] = field(default_factory=dict, init=False, repr=False)
    _sizes: dict[int, int] = field(default_factory=dict, init=False, repr=False)
    _total: int = field(default=0, init=False, repr=False)
    _meta: dict[int, ClientMeta] = field(default_factory=dict, init=False, repr=False)
    _observers: Observers[AwarenessObserver] = field(
        default_factory=Observers, init=False, repr=False
    )
    _held: dict[int, float] = field(default_factory=dict, init=False, repr=False)
    """Renewed clients not emitted yet -> when the first of them was held."""

    def __post_init__(self) -> None:
        if not 0 <= self.renewal_hold <= self.outdated_timeout / 5:
            raise ValueError("renewal_hold must be in [0, outdated_timeout / 5]")
        # Like y-protocols: start with {} at clock 0. Note that y-protocols *ignores* clock-0
        # entries of unknown clients, so {} only becomes visible at the first renewal; a
        # labelled state is therefore set as a second step (clock 1, visible at once).
        self.set_local_state({})
        if self.state is None:
            self.set_local_state(None)
        elif self.state != {}:
            self.set_local_state(self.state)

    # ------------------------------------------------------------------ views

    @property
    def states(self) -> Mapping[int, Any]:
        """Known states by client id (clients that are gone are absent)."""
        return self._states

    @property
    def meta(self) -> Mapping[int, ClientMeta]:
        """Clock bookkeeping by client id (also for clients that are gone)."""
        return self._meta

    def get_local_state(self) -> Any:
        """Our own state, or ``None`` when hidden/gone."""
        return self._states.get(self.client_id)

    @property
    def total_bytes(self) -> int:
        """JSON bytes of every state held."""
        return self._total

    def _put(self, client: int, state: Any, size: int) -> None:
        self._total += size - self._sizes.get(client, 0)
        self._states[client] = state
        self._sizes[client] = size

    def _drop(self, client: int) -> None:
        self._states.pop(client, None)
        self._total -= self._sizes.pop(client, 0)

    # ------------------------------------------------------------------ observers

    def observe(self, callback: AwarenessObserver) -> int:
        """Call ``callback(event)`` for every accepted update; returns a handle."""
        return self._observers.add(callback)

    def unobserve(self, handle: int) -> None:
        """Remove an observer (unknown handles are ignored)."""
        self._observers.remove(handle)

    def _emit(self, event: AwarenessEvent) -> None:
        for callback in self._observers:
            callback(event)

    # ------------------------------------------------------------------ local changes

    def set_local_state(self, state: Any) -> None:
        """Set (or with ``None`` remove) our own state; bumps our clock.

        Example:
            >>> aw = Awareness(1)
            >>> aw.set_local_state({"user": {"name": "archive"}})
            >>> aw.meta[1].clock
            1
        """
        client = self.client_id
        current = self._meta.get(client)
        clock = 0 if current is None else current.clock + 1
        previous = self._states.get(client)
        if state is None:
            self._drop(client)
        else:
            self._put(client, state, AwarenessEntry(client, clock, state).json_size())
        self._meta[client] = ClientMeta(clock, self.clock())
        added: tuple[int, ...] = ()
        updated: tuple[int, ...] = ()
        removed: tuple[int, ...] = ()
        changed = True
        if state is None:
            removed = (client,)
        elif previous is None:
            added = (client,)
        else:
            updated = (client,)
            changed = previous != state
        self._emit(AwarenessEvent(added, updated, removed, "local", changed))

    def set_local_state_field(self, key: str, value: Any) -> None:
        """Set one field of our (dict) state, like y-protocols ``setLocalStateField``."""
        state = self.get_local_state()
        if isinstance(state, dict):
            self.set_local_state({**state, key: value})

    # ------------------------------------------------------------------ remote changes

    def apply(self, entries: Iterable[AwarenessEntry], origin: Any) -> AwarenessEvent | None:
        """Apply decoded entries with y-protocols ``applyAwarenessUpdate`` rules.

        Returns:
            The emitted event, or ``None`` when no entry was accepted or every accepted one
            is a renewal held for later (``renewal_hold``).
        """
        now = self.clock()
        added: list[int] = []
        updated: list[int] = []
        removed: list[int] = []
        changed = False
        for entry in entries:
            client, clock, state = entry.client_id, entry.clock, entry.state
            meta = self._meta.get(client)
            if meta is None and len(self._meta) >= self.max_clients:
                self._refuse("clients")
                continue
            current_clock = 0 if meta is None else meta.clock
            previous = self._states.get(client)
            if not (
                current_clock < clock
                or (current_clock == clock and state is None and client in self._states)
            ):
                continue
            if client == self.client_id and state is not None:
                # someone speaks for us: refuse, and re-assert our own state (or absence)
                self.forged += 1
                if self.get_local_state() is None:
                    continue
                self._meta[client] = ClientMeta(clock + 1, now)
                updated.append(client)
                changed = True
                continue
            if state is None:
                if client == self.client_id and self.get_local_state() is not None:
                    clock += 1  # refuse our own removal: re-assert with a newer clock
                else:
                    self._drop(client)
            else:
                size = entry.json_size()
                if size > self.max_state_bytes:
                    self.oversized += 1
                    if self.oversized in (1, 10, 100) or self.oversized % 1000 == 0:
                        log.warning(
                            "awareness: dropped a %d-byte state (%d so far)", size, self.oversized
                        )
                    continue
                if self._total + size - self._sizes.get(client, 0) > self.max_total_bytes:
                    self._refuse("total-bytes")
                    continue
                self._put(client, state, size)
            self._meta[client] = ClientMeta(clock, now)
            if meta is None and state is not None:
                added.append(client)
                changed = True
            elif meta is not None and state is None:
                removed.append(client)
                changed = True
            elif state is not None:
                updated.append(client)
                changed = changed or state != previous
        if not (added or updated or removed):
            return None
        if self.renewal_hold and not changed and not added and not removed:
            # renewals only: hold them for the next batch (see the module docstring)
            for client in updated:
                if client != self.client_id:
                    self._held.setdefault(client, now)
            if all(client in self._held for client in updated):
                return None
        for client in added + updated + removed:
            self._held.pop(client, None)  # emitted now: nothing left to hold
        event = AwarenessEvent(tuple(added), tuple(updated), tuple(removed), origin, changed)
        self._emit(event)
        return event

    def _refuse(self, why: str) -> None:
        self.refused += 1
        if self.refused in (1, 10, 100) or self.refused % 1000 == 0:
            log.warning("awareness: refused an entry (%s), %d so far", why, self.refused)

    def remove_states(self, clients: Iterable[int], origin: Any) -> AwarenessEvent | None:
        """Forget states (y-protocols ``removeAwarenessStates``); bumps our clock if ours."""
        removed: list[int] = []
        for client in clients:
            if client in self._states:
                self._held.pop(client, None)
                self._drop(client)
                if client == self.client_id:
                    meta = self._meta[client]
                    self._meta[client] = ClientMeta(meta.clock + 1, self.clock())
                removed.append(client)
        if not removed:
            return None
        event = AwarenessEvent((), (), tuple(removed), origin, True)
        self._emit(event)
        return event

    # ------------------------------------------------------------------ encoding

    def encode(self, clients: Iterable[int] | None = None) -> tuple[AwarenessEntry, ...]:
        """Entries for ``clients`` (default: every known client, gone ones as ``null``).

        Feed the result to :func:`collab.protocol.encode_awareness`.
        """
        ids = self._meta.keys() if clients is None else clients
        out = []
        for client in ids:
            meta = self._meta.get(client)
            if meta is not None:
                out.append(AwarenessEntry(client, meta.clock, self._states.get(client)))
        return tuple(out)

    # ------------------------------------------------------------------ timers

    def check(self) -> None:
        """One timer tick: renew our state after half the timeout, expire stale remotes.

        Also forgets the clock of clients gone for longer than the timeout, so the
        :attr:`max_clients` cap cannot be exhausted by clients that already left.
        """
        now = self.clock()
        local = self.get_local_state()
        own = self._meta.get(self.client_id)
        age = now - own.last_updated if own is not None else 0.0
        renew = own is not None and age >= self.outdated_timeout / 2
        if self._held and (renew or now - min(self._held.values()) >= self.renewal_hold):
            self._emit_renewals(now, local is not None and age >= self.outdated_timeout / 4)
        elif local is not None and renew:
            self.set_local_state(local)
        stale = [
            client
            for client, meta in self._meta.items()
            if client != self.client_id
            and client in self._states
            and now - meta.last_updated >= self.outdated_timeout
        ]
        if stale:
            self.remove_states(stale, "timeout")
        forgotten = [
            client
            for client, meta in self._meta.items()
            if client != self.client_id
            and client not in self._states
            and now - meta.last_updated >= 2 * self.outdated_timeout
        ]
        for client in forgotten:
            del self._meta[client]

    def _emit_renewals(self, now: float, renew_own: bool) -> None:
        """Emit the held renewals in one event, with our own renewal if ``renew_own``."""
        held = [client for client in self._held if client in self._states]
        self._held.clear()
        if renew_own:
            meta = self._meta[self.client_id]
            self._meta[self.client_id] = ClientMeta(meta.clock + 1, now)
            held.append(self.client_id)
        if held:
            self._emit(AwarenessEvent((), tuple(held), (), RENEWALS, False))

    async def run(self) -> None:
        """Call :meth:`check` every ``outdated_timeout / 10`` seconds, forever (cancel it)."""
        while True:
            await anyio.sleep(self.outdated_timeout / 10)
            self.check()
