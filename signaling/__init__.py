"""signaling: a FastAPI drop-in for y-webrtc's signaling server. Never imports ``collab``.

Public API (see README.md in this folder):

Example:
    >>> from signaling import SignalingSettings, create_app
    >>> app = create_app(SignalingSettings(max_topics_per_socket=16))
"""

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
