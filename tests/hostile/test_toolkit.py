"""The attacker's hand-made bytes are what they claim to be (checked against pycrdt), and the
stall analysis groups pongs correctly. No network: this guards the other tests' premises
(an "integrable" update really integrates, a "never integrable" one really stays pending)."""

from __future__ import annotations

from typing import Any

import pycrdt
import pytest

from tests.hostile.victim import stall_events
from tests.support.attacker import offer_sdp, replace_line, strip_candidates
from tests.support.marks import needs_netns
from tests.support.yjs_bytes import StringItem, string_update, var_uint

Doc = pycrdt.Doc[Any]

pytestmark = pytest.mark.anyio


def text_of(doc: Doc, root: str) -> str:
    return str(doc.get(root, type=pycrdt.Text))


def test_string_item_matches_pycrdt() -> None:
    doc: Doc = pycrdt.Doc(client_id=5)
    text = doc.get("codemirror", type=pycrdt.Text)
    text += "x"
    assert string_update([StringItem(5, 0, "x", root="codemirror")]) == doc.get_update()


def test_chained_items_integrate_and_grow_the_state_vector() -> None:
    items = [StringItem(1000 + i, 0, "j") for i in range(1)]
    items += [StringItem(1001 + i, 0, "j", origin=(1000 + i, 0)) for i in range(99)]
    doc: Doc = pycrdt.Doc()
    doc.apply_update(string_update(items))
    assert text_of(doc, "junk") == "j" * 100
    state = doc.get_state()
    assert state[:1] == var_uint(100)  # one state-vector entry per client


def test_continuation_without_its_start_stays_pending() -> None:
    doc: Doc = pycrdt.Doc()
    doc.apply_update(string_update([StringItem(77, 5, "orphan", origin=(77, 4))]))
    assert text_of(doc, "junk") == ""
    assert doc.get_state() == b"\x00"


def test_sequential_appends_integrate() -> None:
    doc: Doc = pycrdt.Doc()
    first = StringItem(9, 0, "abc", root="codemirror")
    second = StringItem(9, 3, "def", origin=(9, 2))
    doc.apply_update(string_update([first]))
    doc.apply_update(string_update([second]))
    assert text_of(doc, "codemirror") == "abcdef"


@pytest.mark.netns
@needs_netns
async def test_sdp_helpers() -> None:
    sdp = await offer_sdp()
    assert "a=candidate:" in sdp and "webrtc-datachannel" in sdp
    stripped = strip_candidates(sdp)
    assert "a=candidate" not in stripped and "a=end-of-candidates" not in stripped
    assert "a=setup:bogus" in replace_line(sdp, "a=setup:", "a=setup:bogus")
    assert "a=setup:" not in replace_line(sdp, "a=setup:", None)


def test_stall_events_group_pongs_answered_together() -> None:
    # pings every 10 ms; the server stalls 100 ms from t=0.05: pings sent during the stall
    # are all answered at t=0.15
    sent = [i * 0.01 for i in range(30)]
    latency = []
    for t in sent:
        answered = 0.15 if 0.05 <= t < 0.15 else t + 0.001
        latency.append(answered - t)
    stalls = stall_events(sent, latency)
    assert stalls.over(90) == 1
    assert stalls.over(50) == 1
    assert round(stalls.worst_ms) == 100
