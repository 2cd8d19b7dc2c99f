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


def center_alarm_texts() -> dict[str, str]:
    """The center's own alarms (what it found receiving the venues' journals and footage)."""
    return {"fork": _("Fork: a record differs from the one held"),
            "site_behind_center": _("The site has fewer records than the center holds (restored from an old image?)"),
            "root_mismatch": _("Records do not give the checkpoint"), "unknown_key": _("Unknown key"),
            "revoked_key": _("Revoked key"), "enrolment_refused": _("Enrolment refused"),
            "media_mismatch": _("A recording does not match its seal"), "feed_refetch": _("The site was told to refetch its feed"),
            "bad_signature": _("A request signature did not verify"),
            "key_replacement_issued": _("A token to replace the site key was issued"), "key_replaced": _("The site key was replaced"),
            "key_reenrolled": _("The site key was enrolled again"),
            "footage_scrub_mismatch": _("Stored footage no longer matches its sealed hash"),
            "footage_missing": _("Stored footage is missing"),
            "footage_store_full": _("The footage store is full: uploads are refused")}


def feed_kind_texts() -> dict[str, str]:
    return {"day_plan": _("Day plan"), "replacement_result": _("Replacement draw result"),
            "evaluation_template": _("Evaluation template"), "revocation": _("Revocation"), "blacklist": _("Blacklist entry"),
            "configuration": _("Configuration")}


def detail_texts() -> dict[str, str]:
    """What the fields of an alarm's detail are called on screen."""
    return {"seq": _("record"), "center_size": _("records held by the center"), "site_size": _("records the site reports"),
            "center_hash": _("hash held"), "site_hash": _("hash sent"), "sealed_sha256": _("sealed hash"),
            "received_sha256": _("hash received"), "sha256": _("hash"), "found_sha256": _("hash found"),
            "size": _("size"), "checkpoint_size": _("checkpoint size"), "lane": _("lane"), "cursor": _("cursor"),
            "why": _("why"), "site_tried": _("site named"), "path": _("address"), "reason": _("reason"),
            "fingerprint": _("key fingerprint"), "new_fingerprint": _("new key fingerprint"),
            "retired_generation": _("retired key generation"), "revoked": _("revoked"), "store": _("store"),
            "error": _("error"), "truncated": _("detail (shortened)")}


def record_kind_texts() -> dict[str, str]:
    """A session's timeline at the center: what each kind of venue record says happened."""
    return {"session.state": _("Session state changed"), "session.no_show": _("A member did not come"),
            "checkin.started": _("Check-in started"), "checkin.commitment_signed": _("Commitment signed"),
            "checkin.conflict_declared": _("Conflict of interest declared"), "checkin.timed_out": _("Check-in abandoned"),
            "gate.decision": _("Gate decision"), "gate.passage": _("Passed a gate"), "gate.assisted": _("Gate opened by staff"),
            "gate.fault": _("Gate fault"), "exit.approved": _("Exit approved"), "locker.assigned": _("Locker assigned"),
            "locker.door_left_open": _("Locker door left open"), "card.read": _("ID card read"),
            "opening.recorded": _("Opening record"), "opening.confirmed": _("Opening record confirmed"),
            "opening.signed_off": _("Opening signed off"), "opening.collusion_signal": _("Collusion signal at the opening"),
            "evaluation.started": _("Evaluation started"), "evaluation.member_seated": _("Member seated"),
            "evaluation.member_left": _("Member left"), "evaluation.signed_in": _("Member signed in at a terminal"),
            "evaluation.vote": _("Chair vote"), "evaluation.vote_round": _("Chair vote round"),
            "evaluation.step_opened": _("Step opened"), "evaluation.step_submitted": _("Step submitted"),
            "evaluation.step_confirmed": _("Step confirmed"), "evaluation.reopen_requested": _("Reopening requested"),
            "evaluation.reopen_approved": _("Reopening approved"), "evaluation.clarification_asked": _("Clarification asked"),
            "evaluation.clarification_answered": _("Clarification answered"), "evaluation.dark_committed": _("Dark bid scored"),
            "evaluation.dark_revealed": _("Dark bids revealed"), "evaluation.results": _("Results computed"),
            "evaluation.report_signed": _("Report signed by a member"), "evaluation.report": _("Evaluation report issued"),
            "evaluation.state": _("Evaluation state changed"), "alarm.raised": _("Alarm raised"),
            "alarm.acknowledged": _("Alarm handled"), "recording.segment": _("Footage sealed"),
            "recording.linked": _("Footage linked to the session"), "evidence.exported": _("Evidence package exported"),
            "fees.sheet": _("Fee sheet"), "replacement_draw.requested": _("Replacement draw requested"),
            "announcement.played": _("Announcement played"), "staff.note": _("Patrol note"),
            "plan.loaded": _("Day plan loaded"), "site.initialised": _("Venue initialised")}
