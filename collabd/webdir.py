"""Where the built page is: inside the installed package, or in this checkout.

A wheel carries the page (``node web/build.mjs`` output, ``web/dist``) as package data in
``collabd/web/`` (``pyproject.toml``: ``force-include``). A checkout (``pip install -e``) has no
``collabd/web``; the page is ``web/dist`` beside the packages, where ``scripts/bootstrap``
builds it.

Example:
    >>> default_web_dir().name in ("web", "dist")
    True
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CHECKOUT_WEB_DIR", "PACKAGED_WEB_DIR", "default_web_dir"]

PACKAGED_WEB_DIR = Path(__file__).resolve().parent / "web"
"""The page shipped in the wheel."""
CHECKOUT_WEB_DIR = Path(__file__).resolve().parent.parent / "web" / "dist"
"""The page built in a source checkout."""


def default_web_dir() -> Path:
    """The directory ``collab serve`` serves at ``/`` when ``--web-dir`` is not given: the
    packaged page when it is installed, else the checkout's ``web/dist`` (which may not be
    built yet; the server then answers ``/`` with 503 and says how to build it)."""
    if (PACKAGED_WEB_DIR / "index.html").is_file():
        return PACKAGED_WEB_DIR
    return CHECKOUT_WEB_DIR
