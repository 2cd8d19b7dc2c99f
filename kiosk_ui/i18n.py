"""Languages: Simplified Chinese by default, English selectable per user, per kiosk, or (before
login) per browser. Catalogues live in kiosk_ui/translations and are compiled by `make`."""

from __future__ import annotations

from flask import current_app, g, request

LANGUAGES = {"zh_Hans_CN": "中文", "en": "English"}
LANG_COOKIE = "appliance_lang"


def select_locale() -> str:
    user, kiosk = g.get("user"), g.get("kiosk")
    for choice in (
        user.lang if user else None,
        kiosk.lang if kiosk else None,
        request.cookies.get(LANG_COOKIE),
    ):
        if choice in LANGUAGES:
            return choice
    return current_app.extensions["site"].config.web.default_language
