"""The staff-assisted check (人工核验) for a card the reader cannot read — a damaged chip, a
temporary resident ID card (临时居民身份证), a card left at home and a police certificate.

A member of staff at the gate compares the person with the document's photo, types the ID
number from the document, says which document it was and why the reader could not be used, and
the appliance takes the same access decision as for a card tap (``via = staff_assisted``) — the
identity check is weaker than the chip's, so it is recorded as a downgrade (``gate.assisted``,
naming the member of staff) in the same transaction as the decision. If the decision allows,
the gate's open command is queued in that transaction too; an expert whose commitment is still
missing gets the check-in screen on that gate's kiosk, as after a tap.

The ID number is used only to find the person by keyed token: never stored or journaled in clear
(the records carry the masked number).
"""

from __future__ import annotations

from typing import Any

from appliance.device_commands import queue_command_in
from appliance.personal import is_valid_id_number, mask_id_number, redact_personal_data
from appliance.site import Site
from appliance.siteops.access import Decision
from appliance.siteops.checkin import decide_in_transaction, gate_by_id
from appliance.siteops.kiosk_checkin import open_prompt

DOCUMENTS = ("unreadable_card", "temporary_card", "police_certificate", "other")


class AssistedError(ValueError):
    pass


def assisted_check(site: Site, gate_id: str, *, id_number: str, document: str, reason: str, photo_compared: bool,
                   by: str) -> Decision:
    id_number = id_number.strip().upper()
    if not is_valid_id_number(id_number):
        raise AssistedError("the ID number is not valid (GB 11643): check the digits and the last character")
    if document not in DOCUMENTS:
        raise AssistedError(f"document must be one of {', '.join(DOCUMENTS)}")
    if not photo_compared:
        raise AssistedError("compare the person with the document's photo first")
    reason = redact_personal_data(reason).strip()[:300]
    if not reason:
        raise AssistedError("say why the card could not be read")
    gate = gate_by_id(site, gate_id)
    if gate is None:
        raise AssistedError(f"no gate {gate_id!r}")
    token = site.personal.token("person.id_number", id_number)
    masked = mask_id_number(id_number)
    with site.store.transaction() as conn:
        person = conn.execute("SELECT id FROM people WHERE id_token = ?", (token,)).fetchone()
        person_id = person[0] if person else None
        decision = decide_in_transaction(site, conn, gate, person_id, card_valid=True, card_kind=f"manual:{document}",
                                         id_masked=masked, via="staff_assisted")
        site.journal.append(conn, "gate.assisted", {
            "gate": gate.id, "person_id": person_id, "id_masked": masked, "document": document, "reason": reason,
            "photo_compared": True, "by": by, "downgrade": True, "allow": decision.allow, "decision": decision.reason})
        reader = conn.execute("SELECT reader FROM gates WHERE id = ?", (gate.id,)).fetchone()[0]
        if decision.reason == "commitment_missing" and person_id is not None and decision.session is not None:
            open_prompt(site, conn, reader=reader, gate=gate.id, person_id=person_id, session=decision.session)
        if decision.allow:
            args: dict[str, Any] = {"gate": gate.id, "person_id": person_id}
            queue_command_in(site, conn, "gate.open", gate.gate_device, args, requested_by=by)
    return decision
