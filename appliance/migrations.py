"""Named migrations of the appliance database (sqlite-utils ``Migrations``).

Never edit an applied migration: add a new one. Each runs in its own transaction together
with the record that it ran.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("appliance")


@migrations()
def m001_meta(db: Database) -> None:
    # Facts fixed at init: site id and name, public key, schema notes.
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


@migrations()
def m002_journal(db: Database) -> None:
    # body is the canonical JSON the hash is computed over; seq/ts/kind are copies of its
    # fields, for queries. Rows are only ever inserted.
    db.execute(
        """CREATE TABLE journal (
            seq INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            kind TEXT NOT NULL,
            body TEXT NOT NULL,
            hash TEXT NOT NULL,
            sig TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE checkpoints (
            size INTEGER PRIMARY KEY,
            root TEXT NOT NULL,
            note TEXT NOT NULL,
            created TEXT NOT NULL
        )"""
    )


@migrations()
def m003_people(db: Database) -> None:
    # Personal fields are AES-256-GCM sealed blobs; id_token is an HMAC lookup token.
    db.execute(
        """CREATE TABLE people (
            id INTEGER PRIMARY KEY,
            id_token TEXT NOT NULL UNIQUE,
            id_masked TEXT NOT NULL,
            id_sealed BLOB NOT NULL,
            name_masked TEXT NOT NULL,
            name_sealed BLOB NOT NULL,
            photo_sealed BLOB,
            bank_card_masked TEXT,
            bank_card_sealed BLOB,
            created TEXT NOT NULL
        )"""
    )


@migrations()
def m004_service_status(db: Database) -> None:
    # Heartbeats of the long-running services, read by the console and the watchdog.
    db.execute(
        """CREATE TABLE service_status (
            name TEXT PRIMARY KEY,
            pid INTEGER NOT NULL,
            state TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '',
            started TEXT NOT NULL,
            heartbeat TEXT NOT NULL
        )"""
    )


@migrations()
def m005_accounts(db: Database) -> None:
    # Staff, supervisor and admin accounts; passwords as argon2id hashes.
    db.execute(
        """CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL CHECK (role IN ('staff', 'supervisor', 'admin')),
            password_hash TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0,
            lang TEXT,
            failed_count INTEGER NOT NULL DEFAULT 0,
            locked_until TEXT,
            created TEXT NOT NULL
        )"""
    )
    # Every login attempt; 'checked' is 1 when the password was actually tested.
    db.execute(
        """CREATE TABLE login_attempts (
            id INTEGER PRIMARY KEY,
            user_id INTEGER REFERENCES users(id),
            at TEXT NOT NULL,
            ok INTEGER NOT NULL,
            checked INTEGER NOT NULL,
            remote TEXT NOT NULL DEFAULT ''
        )"""
    )
    db.execute("CREATE INDEX login_attempts_user ON login_attempts(user_id, at)")
    # Server-side web sessions; the cookie carries the token, the table only its SHA-256.
    db.execute(
        """CREATE TABLE web_sessions (
            token_hash TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id),
            created TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            revoked TEXT,
            revoked_reason TEXT
        )"""
    )
    # Registered kiosk devices (gate kiosks, evaluation terminals): no personal login.
    db.execute(
        """CREATE TABLE kiosks (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            purpose TEXT NOT NULL CHECK (purpose IN ('gate', 'evaluation')),
            code_hash TEXT,
            code_expires TEXT,
            token_hash TEXT UNIQUE,
            lang TEXT,
            disabled INTEGER NOT NULL DEFAULT 0,
            created TEXT NOT NULL,
            enrolled TEXT
        )"""
    )


@migrations()
def m006_devices(db: Database) -> None:
    # Durable device commands: queued by any process (console, API), executed and journaled by
    # the devices service, which owns the ports.
    db.execute(
        """CREATE TABLE device_commands (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            target TEXT NOT NULL,
            args TEXT NOT NULL DEFAULT '{}',
            requested_by TEXT NOT NULL,
            created TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'running', 'done', 'failed', 'expired')),
            started TEXT,
            finished TEXT,
            result TEXT
        )"""
    )
    db.execute("CREATE INDEX device_commands_pending ON device_commands(state, id)")
    # Health of each configured device, for the console.
    db.execute(
        """CREATE TABLE device_health (
            name TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            state TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '',
            updated TEXT NOT NULL
        )"""
    )


@migrations()
def m007_site_model(db: Database) -> None:
    # The day plan: zones, rooms, gates, sessions with bidders and rosters (docs/site-operations.md).
    db.execute("CREATE TABLE zones (id TEXT PRIMARY KEY, name TEXT NOT NULL, closed INTEGER NOT NULL DEFAULT 0)")
    db.execute(
        """CREATE TABLE rooms (id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL,
               zone TEXT NOT NULL REFERENCES zones(id), capacity INTEGER NOT NULL DEFAULT 0, equipment TEXT NOT NULL DEFAULT '[]')"""
    )
    db.execute(
        """CREATE TABLE gates (id TEXT PRIMARY KEY, name TEXT NOT NULL, from_zone TEXT NOT NULL, to_zone TEXT NOT NULL,
               direction TEXT NOT NULL CHECK (direction IN ('in', 'out')), reader TEXT NOT NULL, gate_device TEXT NOT NULL)"""
    )
    db.execute(
        """CREATE TABLE sessions (id TEXT PRIMARY KEY, day TEXT NOT NULL, kind TEXT NOT NULL, section_code TEXT NOT NULL,
               section_name TEXT NOT NULL, room TEXT NOT NULL REFERENCES rooms(id), start TEXT NOT NULL, end TEXT NOT NULL,
               admission_opens_min INTEGER NOT NULL, admission_closes_min INTEGER NOT NULL,
               state TEXT NOT NULL CHECK (state IN ('scheduled', 'admitting', 'in_progress', 'suspended', 'completed', 'terminated')))"""
    )
    db.execute("CREATE INDEX sessions_day ON sessions(day)")
    db.execute("CREATE TABLE session_bidders (session TEXT NOT NULL REFERENCES sessions(id), bidder TEXT NOT NULL, name TEXT NOT NULL)")
    db.execute(
        """CREATE TABLE roster (session TEXT NOT NULL REFERENCES sessions(id), person_id INTEGER NOT NULL REFERENCES people(id),
               role TEXT NOT NULL, bidder TEXT, PRIMARY KEY (session, person_id))"""
    )
    db.execute("CREATE INDEX roster_person ON roster(person_id)")
    db.execute("CREATE TABLE person_refs (ref TEXT PRIMARY KEY, person_id INTEGER NOT NULL REFERENCES people(id))")
    db.execute("ALTER TABLE people ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE people ADD COLUMN blacklisted INTEGER NOT NULL DEFAULT 0")
    db.execute("CREATE TABLE plans (day TEXT NOT NULL, version INTEGER NOT NULL, sha256 TEXT NOT NULL, loaded TEXT NOT NULL, PRIMARY KEY (day, version))")
    # What an expert has done before entry, per session (kiosk check-in fills it).
    db.execute(
        """CREATE TABLE checkins (session TEXT NOT NULL, person_id INTEGER NOT NULL, commitment_signed TEXT,
               conflict_declared INTEGER NOT NULL DEFAULT 0, locker TEXT, PRIMARY KEY (session, person_id))"""
    )
    # Who is inside which closed zone (anti-passback).
    db.execute("CREATE TABLE presence (person_id INTEGER NOT NULL, zone TEXT NOT NULL, since TEXT NOT NULL, PRIMARY KEY (person_id, zone))")


@migrations()
def m008_kiosk_checkin(db: Database) -> None:
    # The reader whose taps a kiosk shows (its gate), check-in prompts, locker assignments.
    db.execute("ALTER TABLE kiosks ADD COLUMN reader TEXT")
    db.execute(
        """CREATE TABLE checkin_prompts (id INTEGER PRIMARY KEY, reader TEXT NOT NULL, gate TEXT NOT NULL,
               person_id INTEGER NOT NULL, session TEXT NOT NULL, created TEXT NOT NULL,
               state TEXT NOT NULL CHECK (state IN ('awaiting', 'completed', 'refused', 'expired')))"""
    )
    db.execute(
        """CREATE TABLE locker_assignments (session TEXT NOT NULL, person_id INTEGER NOT NULL, bank TEXT NOT NULL,
               lock INTEGER NOT NULL, code_hash TEXT NOT NULL, assigned TEXT NOT NULL, released TEXT,
               PRIMARY KEY (session, person_id))"""
    )
    db.execute("ALTER TABLE checkins ADD COLUMN signature_sealed BLOB")


@migrations()
def m009_registers(db: Database) -> None:
    # Staff registers (materials, sample inspections, technicians, clarification visits, patrol
    # ledger, objections, bad behaviour, incidents); data is the validated entry as JSON.
    db.execute(
        """CREATE TABLE register_entries (id INTEGER PRIMARY KEY, register TEXT NOT NULL, data TEXT NOT NULL,
               created TEXT NOT NULL, by TEXT NOT NULL, closed TEXT)"""
    )
    db.execute("CREATE INDEX register_entries_register ON register_entries(register, id)")


@migrations()
def m010_no_shows(db: Database) -> None:
    # Experts not checked in at start + N minutes, and whether a replacement draw was requested.
    db.execute(
        """CREATE TABLE no_shows (session TEXT NOT NULL, person_id INTEGER NOT NULL, flagged TEXT NOT NULL,
               replacement_requested TEXT, PRIMARY KEY (session, person_id))"""
    )


@migrations()
def m011_exits_and_alarms(db: Database) -> None:
    # Exit approvals: an expert may leave the evaluation area during an evaluation (and come
    # back before `expires`); `exited`/`returned` record the use.
    db.execute(
        """CREATE TABLE exit_approvals (id INTEGER PRIMARY KEY, session TEXT NOT NULL, person_id INTEGER NOT NULL,
               reason TEXT NOT NULL, approved_by TEXT NOT NULL, granted TEXT NOT NULL, expires TEXT NOT NULL,
               exited TEXT, returned TEXT, withdrawn TEXT)"""
    )
    db.execute("CREATE INDEX exit_approvals_person ON exit_approvals(person_id, session)")
    # Alarms shown on the console and the supervisors' screens until someone acknowledges them.
    db.execute(
        """CREATE TABLE alarms (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, raised TEXT NOT NULL, seq INTEGER,
               session TEXT, person_id INTEGER, detail TEXT NOT NULL DEFAULT '{}',
               acknowledged TEXT, acknowledged_by TEXT, note TEXT)"""
    )
    db.execute("CREATE INDEX alarms_open ON alarms(acknowledged, id)")


@migrations()
def m012_bookings(db: Database) -> None:
    # Room booking requests and what the scheduler (or staff's pin) gave them.
    db.execute(
        """CREATE TABLE bookings (id INTEGER PRIMARY KEY, day TEXT NOT NULL, section_code TEXT NOT NULL,
               section_name TEXT NOT NULL, session_kind TEXT NOT NULL, room_kind TEXT NOT NULL, attendees INTEGER NOT NULL,
               equipment TEXT NOT NULL DEFAULT '[]', duration_min INTEGER NOT NULL, earliest TEXT NOT NULL,
               latest_end TEXT NOT NULL, state TEXT NOT NULL, room TEXT, start TEXT, end TEXT, explanation TEXT,
               pin_room TEXT, pin_start TEXT, pin_reason TEXT, created_by TEXT NOT NULL, created TEXT NOT NULL)"""
    )
    db.execute("CREATE INDEX bookings_day ON bookings(day, state)")


@migrations()
def m013_fees(db: Database) -> None:
    # When a session ended (completed or terminated), and when an expert submitted their report:
    # the ends of the time an expert is paid for.
    db.execute("ALTER TABLE sessions ADD COLUMN ended TEXT")
    db.execute("ALTER TABLE checkins ADD COLUMN report_submitted TEXT")


@migrations()
def m014_recordings(db: Database) -> None:
    # Sealed recording segments (the journal holds the same facts, signed), and their sessions.
    db.execute(
        """CREATE TABLE segments (id INTEGER PRIMARY KEY, camera TEXT NOT NULL, room TEXT NOT NULL, path TEXT NOT NULL UNIQUE,
               start TEXT NOT NULL, end TEXT NOT NULL, duration_ms INTEGER NOT NULL, size INTEGER NOT NULL,
               sha256 TEXT NOT NULL, chunks TEXT NOT NULL, seq INTEGER NOT NULL, sealed TEXT NOT NULL, center_ack TEXT,
               deleted TEXT)"""
    )
    db.execute("CREATE INDEX segments_room_time ON segments(room, start)")
    db.execute("CREATE TABLE segment_sessions (segment INTEGER NOT NULL REFERENCES segments(id), session TEXT NOT NULL, "
               "PRIMARY KEY (segment, session))")
    db.execute("CREATE INDEX segment_sessions_session ON segment_sessions(session)")


@migrations()
def m015_camera_streams(db: Database) -> None:
    # Where each camera's live picture can be pulled (its sub-stream), as the recorder found it;
    # the web's live view reads it (under `appliance run` the simulated cameras' ports are known
    # only to the recorder).
    db.execute("CREATE TABLE camera_streams (name TEXT PRIMARY KEY, room TEXT NOT NULL, live_url TEXT NOT NULL, updated TEXT NOT NULL)")


@migrations()
def m016_sync_feed_and_media(db: Database) -> None:
    # From the center's feed: revocations and blacklist entries by ID-number token (they outlive
    # day plans: a plan reload must not lift them), and documents kept for later use
    # (evaluation templates, configuration).
    db.execute("CREATE TABLE center_bars (token TEXT NOT NULL, kind TEXT NOT NULL, reason TEXT NOT NULL, since TEXT NOT NULL, "
               "lifted TEXT, PRIMARY KEY (token, kind))")
    db.execute("CREATE TABLE center_documents (kind TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, sha256 TEXT NOT NULL, "
               "received TEXT NOT NULL, PRIMARY KEY (kind, name))")
    # tuspy's URL store: the upload URL of each segment being sent, by fingerprint (its SHA-256),
    # so that an upload cut by a dropped link or a restart resumes where the center has it.
    db.execute("CREATE TABLE tus_uploads (fingerprint TEXT PRIMARY KEY, url TEXT NOT NULL, created TEXT NOT NULL)")


@migrations()
def m017_evaluations(db: Database) -> None:
    # The committee's work (appliance/evaluation/committee.py); the journal holds every step.
    db.execute("""CREATE TABLE evaluations (session TEXT PRIMARY KEY REFERENCES sessions(id), template TEXT NOT NULL,
                   template_sha256 TEXT NOT NULL, state TEXT NOT NULL, chair INTEGER, vote_round INTEGER NOT NULL,
                   started TEXT NOT NULL, finalized TEXT, results TEXT)""")
    db.execute("""CREATE TABLE eval_members (session TEXT NOT NULL, person_id INTEGER NOT NULL, role TEXT NOT NULL,
                   signed_in TEXT, read_confirmed TEXT, agreed TEXT, PRIMARY KEY (session, person_id))""")
    db.execute("""CREATE TABLE eval_bidders (session TEXT NOT NULL, bidder TEXT NOT NULL, name TEXT NOT NULL, price TEXT NOT NULL,
                   valid INTEGER NOT NULL, invalid_reason TEXT, PRIMARY KEY (session, bidder))""")
    db.execute("""CREATE TABLE eval_votes (session TEXT NOT NULL, round INTEGER NOT NULL, voter INTEGER NOT NULL,
                   candidate INTEGER NOT NULL, cast TEXT NOT NULL, PRIMARY KEY (session, round, voter))""")
    db.execute("""CREATE TABLE eval_steps (session TEXT NOT NULL, step TEXT NOT NULL, position INTEGER NOT NULL, state TEXT NOT NULL,
                   confirmed_by INTEGER, confirmed_at TEXT, outcome TEXT, PRIMARY KEY (session, step))""")
    db.execute("""CREATE TABLE eval_step_submissions (session TEXT NOT NULL, step TEXT NOT NULL, person_id INTEGER NOT NULL,
                   submitted TEXT NOT NULL, PRIMARY KEY (session, step, person_id))""")
    db.execute("""CREATE TABLE eval_marks (session TEXT NOT NULL, step TEXT NOT NULL, person_id INTEGER NOT NULL, bidder TEXT NOT NULL,
                   criterion TEXT NOT NULL, value TEXT NOT NULL, explanation TEXT NOT NULL DEFAULT '', updated TEXT NOT NULL,
                   PRIMARY KEY (session, step, person_id, bidder, criterion))""")
    db.execute("""CREATE TABLE eval_reopens (id INTEGER PRIMARY KEY, session TEXT NOT NULL, step TEXT NOT NULL,
                   requested_by INTEGER NOT NULL, reason TEXT NOT NULL, requested TEXT NOT NULL, approved_by TEXT, approved TEXT)""")
    db.execute("""CREATE TABLE eval_clarifications (id INTEGER PRIMARY KEY, session TEXT NOT NULL, bidder TEXT NOT NULL,
                   question TEXT NOT NULL, asked_by INTEGER NOT NULL, asked TEXT NOT NULL, answer TEXT, answered TEXT)""")


@migrations()
def m018_openings(db: Database) -> None:
    # The opening record of an opening session, and each bidder's answer to it.
    db.execute("""CREATE TABLE openings (session TEXT PRIMARY KEY REFERENCES sessions(id), record TEXT NOT NULL,
                   record_sha256 TEXT NOT NULL, state TEXT NOT NULL, opened TEXT NOT NULL, opened_by TEXT NOT NULL,
                   signed_off_by TEXT, signed_off TEXT)""")
    db.execute("""CREATE TABLE opening_bidders (session TEXT NOT NULL, bidder TEXT NOT NULL, attendance TEXT NOT NULL,
                   answered TEXT, agrees INTEGER, reason TEXT, answered_by TEXT, PRIMARY KEY (session, bidder))""")
    # The report: each member's signature (sealed) and dissent, and the issued files' hashes.
    for column in ("report_signed TEXT", "report_agrees INTEGER", "report_dissent TEXT", "report_signature_sealed BLOB"):
        db.execute(f"ALTER TABLE eval_members ADD COLUMN {column}")
    db.execute("""CREATE TABLE eval_reports (session TEXT PRIMARY KEY, html_sha256 TEXT NOT NULL, pdf_sha256 TEXT NOT NULL,
                   issued TEXT NOT NULL)""")
    # Dark-bid review: the sealed seed of the experts' orders, the chapter hashes, the commitment.
    db.execute("""CREATE TABLE dark_reviews (session TEXT NOT NULL, step TEXT NOT NULL, seed_sealed BLOB NOT NULL, chapters TEXT NOT NULL,
                   commitment TEXT NOT NULL, revealed TEXT, PRIMARY KEY (session, step))""")


@migrations()
def m019_evaluation_terminals(db: Database) -> None:
    # An evaluation terminal stands in one room; a member signs in at it by tapping the ID card
    # on its desk reader, and the terminal acts for that member until sign-out (one terminal per
    # member, one member per terminal). The last tap's outcome is what the idle screen shows.
    db.execute("ALTER TABLE kiosks ADD COLUMN room TEXT")
    db.execute("""CREATE TABLE eval_terminals (kiosk_id INTEGER PRIMARY KEY REFERENCES kiosks(id), session TEXT, person_id INTEGER,
                   since TEXT, last_outcome TEXT, last_seq INTEGER)""")
    db.execute("CREATE UNIQUE INDEX eval_terminals_member ON eval_terminals (session, person_id) WHERE person_id IS NOT NULL")
    # A clarification's visit to the clarification room: its entry in the clarification register.
    db.execute("ALTER TABLE eval_clarifications ADD COLUMN visit INTEGER")


@migrations()
def m020_checkpoint_ranges(db: Database) -> None:
    # The compact Merkle range at each checkpoint's size (a cache, not evidence: verifiers
    # recompute), so a short-lived command extends the tree from its latest checkpoint instead
    # of re-reading every record hash before it signs the checkpoint covering what it appended.
    db.execute("ALTER TABLE checkpoints ADD COLUMN tree TEXT")


@migrations()
def m021_kiosk_token_lapse(db: Database) -> None:
    # A kiosk's device token lapses after web.kiosk_token_days without use (renewed while used);
    # tokens enrolled before this have none and get one at their next use.
    db.execute("ALTER TABLE kiosks ADD COLUMN token_expires TEXT")


@migrations()
def m022_committee_seats(db: Database) -> None:
    # The committee's required size (the plan's committee_size, or its roster's members) and
    # members who left it (withdrew, recused late) with why: 招标投标法 第三十七条.
    db.execute("ALTER TABLE sessions ADD COLUMN committee_size INTEGER")
    db.execute("ALTER TABLE evaluations ADD COLUMN required_size INTEGER")
    db.execute("ALTER TABLE eval_members ADD COLUMN left TEXT")
    db.execute("ALTER TABLE eval_members ADD COLUMN left_reason TEXT")


@migrations()
def m023_fee_sheets_confirmed(db: Database) -> None:
    # A confirmed fee sheet (劳务费发放表) is locked: one row per session, the journaled record's
    # seq and hash; sheets confirmed before this come from their journal records (the first).
    db.execute("""CREATE TABLE fee_sheets (session TEXT PRIMARY KEY, seq INTEGER NOT NULL, confirmed TEXT NOT NULL,
                  by TEXT NOT NULL, sha256 TEXT NOT NULL, total_fen INTEGER NOT NULL)""")
    db.execute("""INSERT OR IGNORE INTO fee_sheets (session, seq, confirmed, by, sha256, total_fen)
                  SELECT json_extract(body, '$.payload.session'), seq, ts, json_extract(body, '$.payload.by'),
                         json_extract(body, '$.payload.sha256'), json_extract(body, '$.payload.total_fen')
                  FROM journal WHERE kind = 'fees.sheet' ORDER BY seq""")


@migrations()
def m024_remote_committees(db: Database) -> None:
    # A remote evaluation (远程异地评标, docs/remote-evaluation.md): the venue a roster member sits
    # at (NULL: here); the committee's venues with their keys; each venue's link as this venue
    # sees it; a secondary venue's members' actions until the main venue answers; records
    # received from other venues (each once); the screens the main venue sent.
    db.execute("ALTER TABLE roster ADD COLUMN venue TEXT")
    db.execute("CREATE TABLE remote_sessions (session TEXT PRIMARY KEY, main TEXT NOT NULL, venues TEXT NOT NULL)")
    db.execute("""CREATE TABLE remote_links (session TEXT NOT NULL, venue TEXT NOT NULL, connected INTEGER NOT NULL,
                  since TEXT NOT NULL, PRIMARY KEY (session, venue))""")
    db.execute("""CREATE TABLE remote_actions (seq INTEGER PRIMARY KEY, session TEXT NOT NULL, person_id INTEGER NOT NULL,
                  action TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'held', code TEXT, answer_seq INTEGER)""")
    db.execute("""CREATE TABLE remote_received (origin TEXT NOT NULL, origin_seq INTEGER NOT NULL, session TEXT NOT NULL,
                  seq INTEGER NOT NULL, PRIMARY KEY (origin, origin_seq))""")
    db.execute("""CREATE TABLE remote_screens (session TEXT NOT NULL, person_ref TEXT NOT NULL, version INTEGER NOT NULL,
                  screen TEXT NOT NULL, PRIMARY KEY (session, person_ref))""")
    # A member's report signature relayed beside the action that names it by its SHA-256 (sent
    # from here when origin is this site, received otherwise); sealed like every signature.
    db.execute("""CREATE TABLE remote_attachments (origin TEXT NOT NULL, origin_seq INTEGER NOT NULL, sha256 TEXT NOT NULL,
                  sealed BLOB NOT NULL, PRIMARY KEY (origin, origin_seq))""")


@migrations()
def m025_venue_signoffs(db: Database) -> None:
    # Each venue's supervisors sign for their venue's part of a remote evaluation
    # (appliance/evaluation/venue_signoff.py): at the main venue every venue's sign-offs
    # ('signed'); at a secondary venue its own until answered ('held', 'sent', 'signed',
    # 'refused' with the code) and the others' as the main venue's records bring them.
    db.execute("""CREATE TABLE venue_signoffs (session TEXT NOT NULL, venue TEXT NOT NULL, supervisor TEXT NOT NULL,
                  remark TEXT NOT NULL DEFAULT '', signed TEXT NOT NULL, state TEXT NOT NULL, code TEXT, seq INTEGER,
                  PRIMARY KEY (session, venue, supervisor))""")
