"""The wire core (lib0, protocol, updates, splitting) against real Yjs bytes."""
