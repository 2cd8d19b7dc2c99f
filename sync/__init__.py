"""Sync with the provincial center: the site's agent (``agent.py``) and the reference center
receiver (``center.py``). Protocol: docs/sync-protocol.md. First part: enrolment and the journal
going up; the feed down and media arrive later."""
