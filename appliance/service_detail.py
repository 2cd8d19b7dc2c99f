"""What a service's heartbeat says about it, as a message key with its numbers (``key`` or
``key {"n": 3}``), so each screen words it in its reader's language (the console's labels, whose
English words are these). A detail that is not in this form (an exception's text) is shown
as it is."""

from __future__ import annotations

import json
from typing import Any

ENGLISH = {
    "devices_summary": "{readers} readers, {gates} gates, {lockers} locker banks",
    "devices_summary_simulated": "{readers} readers, {gates} gates, {lockers} locker banks (simulated)",
    "recorder_summary": "{recording}/{total} cameras recording",
    "recorder_none": "no cameras configured yet",
    "journal_uncovered": "{n} records not yet under a signed checkpoint",
    "journal_covered": "every record under a signed checkpoint",
    "sync_not_enrolled": "no provincial center enrolled yet",
    "sync_waiting": "waiting {seconds} s before trying the center again",
    "sync_unreachable": "center not reached; next try in {seconds} s",
    "sync_refused": "refused by the center; next try in {seconds} s",
    "sync_ok": "{acked} records acknowledged, {pending} pending; recordings {media} pending",
    "web_serving": "serving on {url}",
}


def detail(key: str, **params: Any) -> str:
    assert key in ENGLISH, key
    return f"{key} {json.dumps(params, sort_keys=True, ensure_ascii=False)}" if params else key


def parse(text: str) -> tuple[str, dict[str, Any]]:
    """(key, params); a text that is no key comes back whole with no params."""
    key, _, rest = text.partition(" ")
    if key not in ENGLISH:
        return text, {}
    try:
        params = json.loads(rest) if rest else {}
    except ValueError:
        return text, {}
    return (key, params) if isinstance(params, dict) else (text, {})

