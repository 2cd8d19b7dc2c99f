"""Site operations: the day plan (rooms, zones, gates, sessions, rosters, bidders), the session
state machine, and the access policy of the closed evaluation area."""
