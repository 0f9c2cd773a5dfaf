"""TURN for real: Debian's coturn, relay-only browsers and Python peers, ``--turn-secret``."""
