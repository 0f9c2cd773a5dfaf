"""Control: the victim checks pass when nobody attacks.

Proves the harness itself is sound (a legit peer's text is archived, a sentinel room archives,
a fresh stock browser receives the text from the replica alone, resources stay flat), so a
failing attack test points at the server, not at the checks. Also prints the normal cost of
those checks, the noise floor of every bound in this suite.
"""

from __future__ import annotations

from tests.hostile.victim import (
    ATTACK_MARKS,
    ResourceWatch,
    ServerFactory,
    assert_alive,
    check_browser_syncs,
    check_sentinel,
    write_and_archive,
)
from tests.support.browser import Chromium

pytestmark = ATTACK_MARKS

MAX_RSS_GROWTH_MB = 40
"""Two rooms, three short-lived connections and one browser: normally +5-15 MB."""
MAX_FD_GROWTH = 40
"""A handful of connections (2 UDP sockets each in the namespace) plus SQLite/HTTP."""


async def test_victim_checks_pass_without_attack(
    hostile_server: ServerFactory, chromium: Chromium, page_url: str
) -> None:
    server = hostile_server()
    assert server.proc is not None
    room = "control-room"
    legit = "legit text typed without any attack ✓"
    async with ResourceWatch(server.proc.pid) as watch:
        await write_and_archive(server, room, legit)
        browser_s = await check_browser_syncs(chromium, page_url, server, room, legit)
        sentinel_s = await check_sentinel(server)
    assert_alive(server)
    print(
        f"\n[control] browser synced in {browser_s:.2f} s, sentinel in {sentinel_s:.2f} s; "
        f"{watch.line()}"
    )
    watch.check(max_rss_mb=MAX_RSS_GROWTH_MB, max_fds=MAX_FD_GROWTH)
