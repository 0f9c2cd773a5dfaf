"""Helpers shared by more than one test folder, imported as ``tests.support.<module>``.

* :mod:`~tests.support.paths` — the checkout, its ``collab`` command, Node, node_modules;
* :mod:`~tests.support.ports` — listening sockets bound once; the one ``free_port`` fallback;
* :mod:`~tests.support.processes` — the one process launcher (:class:`Process`) and waits;
* :mod:`~tests.support.servers` — ``collab serve``, ``collab signaling``, y-webrtc's
  ``bin/server.js``;
* :mod:`~tests.support.browser` — Debian Chromium driven by Playwright, the stock y-webrtc page;
* :mod:`~tests.support.peers` — Python WebRTC peers and waits on what the replica reports;
* :mod:`~tests.support.marks` — skip marks (test network namespace, Chromium);
* :mod:`~tests.support.postgres` — a throw-away PostgreSQL server;
* :mod:`~tests.support.filesystems` — a small tmpfs, filling a file system;
* :mod:`~tests.support.node` — long-lived Node workers spoken to in JSON lines.

Helpers used by one folder only stay in that folder (``tests/signaling/sig_helpers.py``,
``tests/hostile/victim.py``, …) and are imported the same way (``tests.<folder>.<module>``).
"""
