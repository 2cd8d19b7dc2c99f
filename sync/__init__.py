"""Sync with the provincial center: the site's agent and the reference center receiver.
Arrives with the sync issue; until then the sync service reports that no center is enrolled."""
