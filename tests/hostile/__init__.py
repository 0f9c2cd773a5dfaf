"""Attacks on a real ``collab serve``, judged from the victim's view."""
