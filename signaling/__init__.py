"""signaling: a FastAPI drop-in for y-webrtc's signaling server. Never imports ``collab``.

Public API (see README.md in this folder). The names load on first use, so importing one
light module of the package (``signaling.logs``, ``signaling.close_codes``) does not pull in
FastAPI: the replica role runs without the ``signaling`` extra.

Example:
    >>> from signaling import SignalingSettings, create_app
    >>> app = create_app(SignalingSettings(max_topics_per_socket=16))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from signaling.app import SignalingService, create_app, install_signaling
    from signaling.auth import TokenClaims, TokenError, mint_token, verify_token
    from signaling.close_codes import CloseCode
    from signaling.hooks import SignalingHooks, SubscriberInfo
    from signaling.settings import SignalingSettings, production_settings

__all__ = [
    "CloseCode",
    "SignalingHooks",
    "SignalingService",
    "SignalingSettings",
    "SubscriberInfo",
    "TokenClaims",
    "TokenError",
    "create_app",
    "install_signaling",
    "mint_token",
    "production_settings",
    "verify_token",
]

_LAZY = {
    "SignalingService": "signaling.app",
    "create_app": "signaling.app",
    "install_signaling": "signaling.app",
    "TokenClaims": "signaling.auth",
    "TokenError": "signaling.auth",
    "mint_token": "signaling.auth",
    "verify_token": "signaling.auth",
    "CloseCode": "signaling.close_codes",
    "SignalingHooks": "signaling.hooks",
    "SubscriberInfo": "signaling.hooks",
    "SignalingSettings": "signaling.settings",
    "production_settings": "signaling.settings",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'signaling' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
