"""The words of the province's pages: what a venue's alarm, a session's state and a venue's
state are called (the msgids are the venue console's, so one catalogue translates both)."""

from __future__ import annotations

from flask_babel import gettext as _


def venue_alarm_texts() -> dict[str, str]:
    return {"exit_during_evaluation": _("An expert left the evaluation area without approval"),
            "gate_fault": _("A gate did not open"), "locker_door_left_open": _("A locker door was left open"),
            "camera_offline": _("A camera stopped recording"), "camera_picture": _("A camera's picture is unusable"),
            "camera_clock": _("A camera's clock runs wrong: its footage times come from this box's clock"),
            "disk_warning": _("The recordings disk is filling up"), "disk_critical": _("The recordings disk is nearly full"),
            "feed_refused": _("An item from the provincial center could not be applied"),
            "collusion_signal": _("Bid files share identifying data (a signal to look into)")}


def state_texts() -> dict[str, str]:
    return {"scheduled": _("Scheduled"), "admitting": _("Admitting"), "in_progress": _("In progress"),
            "suspended": _("Suspended"), "completed": _("Completed"), "terminated": _("Terminated")}


def venue_state_texts() -> dict[str, str]:
    """A venue's state on the province's grid."""
    return {"in_sync": _("In sync"), "behind": _("Behind"), "diverged": _("Diverged"), "silent": _("Silent"),
            "alarm": _("Alarms"), "revoked": _("Revoked"), "not_enrolled": _("Not enrolled"), "unknown": _("No contact yet")}
