"""Webhooks of ``collab serve``: signed deliveries to a real local HTTP receiver."""
