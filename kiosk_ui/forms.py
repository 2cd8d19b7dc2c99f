"""Forms (Flask-WTF: validation and the CSRF token)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TimeField,
    widgets,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, Length, NumberRange, Regexp

from kiosk_ui.i18n import LANGUAGES


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=256)])
    next = HiddenField()


class LanguageForm(FlaskForm):
    lang = HiddenField(validators=[AnyOf(list(LANGUAGES))])
    next = HiddenField()


class ActionForm(FlaskForm):
    """A button that changes state: only the CSRF token."""


class KioskForm(FlaskForm):
    name = StringField(_l("Kiosk name"), validators=[DataRequired(), Length(max=64)])
    purpose = SelectField(
        _l("Purpose"),
        choices=[SelectChoice("gate", _l("Gate kiosk")), SelectChoice("evaluation", _l("Evaluation terminal"))],
    )
    # Choices are the configured ID card readers and the plan's evaluation rooms (set by the view).
    reader = SelectField(_l("ID card reader (the gate's, or the terminal's desk reader)"), choices=[], validate_choice=True)
    room = SelectField(_l("Room (evaluation terminals)"), choices=[], validate_choice=True)


class EnrolForm(FlaskForm):
    code = StringField(_l("Enrolment code"), validators=[DataRequired(), Length(max=32)])


class CheckinForm(FlaskForm):
    """The expert's commitment: a drawn signature (PNG data URL) and the conflicts declared."""

    signature = HiddenField(validators=[DataRequired(), Length(max=400_000)])
    conflicts = SelectMultipleField(choices=[], option_widget=widgets.CheckboxInput(), widget=widgets.ListWidget(prefix_label=False),
                                    validate_choice=True)


class AssistedCheckForm(FlaskForm):
    """Staff-assisted check of a card the reader cannot read (see appliance.siteops.assisted)."""

    gate = SelectField(_l("Gate"), choices=[], validate_choice=True)
    id_number = StringField(_l("ID number on the document"), validators=[
        DataRequired(), Regexp(r"^\s*[0-9]{17}[0-9Xx]\s*$", message=_l("18 characters: 17 digits and a digit or X"))])
    document = SelectField(_l("Document checked"), choices=[
        SelectChoice("unreadable_card", _l("Resident ID card, chip unreadable")),
        SelectChoice("temporary_card", _l("Temporary resident ID card")),
        SelectChoice("police_certificate", _l("Police identity certificate")),
        SelectChoice("other", _l("Other document"))])
    reason = StringField(_l("Why the reader could not be used"), validators=[DataRequired(), Length(max=300)])
    photo_compared = BooleanField(_l("I compared the person with the document's photo"), validators=[DataRequired()])


class ExitApprovalForm(FlaskForm):
    minutes = IntegerField(_l("Minutes"), default=30, validators=[DataRequired(), NumberRange(1, 240)])
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=500)])


class AcknowledgeForm(FlaskForm):
    note = StringField(_l("What was done"), validators=[DataRequired(), Length(max=500)])


ROOM_KINDS = [SelectChoice("evaluation", _l("Evaluation room")), SelectChoice("remote_evaluation", _l("Remote evaluation room")),
              SelectChoice("opening", _l("Opening room")), SelectChoice("clarification", _l("Clarification room"))]


class BookingForm(FlaskForm):
    """A room booking request (appliance.siteops.scheduling)."""

    section_code = StringField(_l("Section code"), validators=[DataRequired(), Length(max=64)])
    section_name = StringField(_l("Section name"), validators=[DataRequired(), Length(max=200)])
    session_kind = SelectField(_l("Session"), choices=[SelectChoice("evaluation", _l("Evaluation")),
                                                        SelectChoice("opening", _l("Opening")),
                                                        SelectChoice("clarification", _l("Clarification"))])
    room_kind = SelectField(_l("Room kind"), choices=ROOM_KINDS)
    attendees = IntegerField(_l("People"), default=7, validators=[DataRequired(), NumberRange(1, 500)])
    duration_min = IntegerField(_l("Duration (minutes)"), default=180, validators=[DataRequired(), NumberRange(15, 1440)])
    day = DateField(_l("Date"), validators=[DataRequired()])
    earliest = TimeField(_l("Earliest start"), validators=[DataRequired()])
    latest_end = TimeField(_l("Latest end"), validators=[DataRequired()])
    equipment = SelectMultipleField(_l("Equipment"), choices=[SelectChoice("recording", _l("Recording")),
                                                              SelectChoice("remote_evaluation", _l("Remote evaluation"))],
                                    option_widget=widgets.CheckboxInput(), widget=widgets.ListWidget(prefix_label=False))


class PinForm(FlaskForm):
    """Staff's override: this room at this time."""

    room = SelectField(_l("Room"), choices=[], validate_choice=True)
    start = TimeField(_l("Start"), validators=[DataRequired()])
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=300)])


class PlanUploadForm(FlaskForm):
    """A day plan file (docs/day-plan.schema.json), as the center sends it or staff prepare it."""

    file = FileField(_l("Day plan (JSON)"), validators=[FileRequired(), FileAllowed(["json"], _l("A .json file"))])


class EvidenceForm(FlaskForm):
    """An evidence package to check (appliance.evidence)."""

    file = FileField(_l("Evidence package (ZIP)"), validators=[FileRequired(), FileAllowed(["zip"], _l("A .zip file"))])


class BankCardForm(FlaskForm):
    number = StringField(_l("Bank card number"), validators=[DataRequired(), Regexp(r"^[0-9 \-]{16,25}$")])


class BookmarkForm(FlaskForm):
    """A supervisor's bookmark on the footage: the moment (ms since the epoch), the camera, a note."""

    at_ms = IntegerField(validators=[DataRequired(), NumberRange(1_500_000_000_000, 4_000_000_000_000)])
    camera = StringField(validators=[Length(max=64)])
    note = StringField(_l("Note"), validators=[DataRequired(), Length(max=500)])
