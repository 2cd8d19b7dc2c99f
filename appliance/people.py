"""People known to the site (experts, staff, supervisors, technicians, bidders' staff).

Only masked forms and keyed tokens are stored in clear; the ID number, the name, the photo and
the bank card number are sealed (`appliance.personal`). Later issues build the roster and the
gate decision on top of this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.clock import utc_timestamp
from appliance.personal import (
    PersonalDataError,
    is_valid_id_number,
    mask_bank_card,
    mask_id_number,
    mask_name,
)
from appliance.site import Site

ID_PURPOSE = "person.id_number"


@dataclass(frozen=True)
class PersonRef:
    person_id: int
    id_masked: str
    name_masked: str


def register_person(
    site: Site,
    *,
    id_number: str,
    name: str,
    photo: bytes | None = None,
    bank_card: str | None = None,
    conn: Any = None,
) -> PersonRef:
    """Register (or find) a person by ID number; journals ``person.registered`` once."""
    id_number = id_number.strip().upper()
    if not is_valid_id_number(id_number):
        raise PersonalDataError(f"not a valid resident ID number: {mask_id_number(id_number)}")
    cipher = site.personal
    token = cipher.token(ID_PURPOSE, id_number)
    with site.store.within(conn) as conn:
        row = conn.execute(
            "SELECT id, id_masked, name_masked FROM people WHERE id_token = ?", (token,)
        ).fetchone()
        if row:
            return PersonRef(*row)
        cur = conn.execute(
            """INSERT INTO people (id_token, id_masked, id_sealed, name_masked, name_sealed,
                   photo_sealed, bank_card_masked, bank_card_sealed, created)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                token,
                mask_id_number(id_number),
                cipher.seal(ID_PURPOSE, id_number),
                mask_name(name),
                cipher.seal("person.name", name),
                cipher.seal("person.photo", photo) if photo is not None else None,
                mask_bank_card(bank_card) if bank_card else None,
                cipher.seal("person.bank_card", bank_card) if bank_card else None,
                utc_timestamp(site.clock.now()),
            ),
        )
        ref = PersonRef(int(cur.lastrowid or 0), mask_id_number(id_number), mask_name(name))
        site.journal.append(
            conn,
            "person.registered",
            {"person_id": ref.person_id, "id_token": token, "id_masked": ref.id_masked, "name_masked": ref.name_masked},
        )
        return ref


def find_person(site: Site, id_number: str) -> PersonRef | None:
    token = site.personal.token(ID_PURPOSE, id_number.strip().upper())
    row = site.store.reader().execute(
        "SELECT id, id_masked, name_masked FROM people WHERE id_token = ?", (token,)
    ).fetchone()
    return PersonRef(*row) if row else None


def reveal_id_number(site: Site, person_id: int) -> str:
    """The clear ID number, for the rare step that needs it (e.g. the center's roster match)."""
    row = site.store.reader().execute("SELECT id_sealed FROM people WHERE id = ?", (person_id,)).fetchone()
    if row is None:
        raise KeyError(person_id)
    return site.personal.open(ID_PURPOSE, row[0]).decode()
