"""collabd: the composition root. Wires :mod:`signaling` and :mod:`collab` into one server and
the ``collab`` command line. Nothing in ``collab`` or ``signaling`` imports this package."""
