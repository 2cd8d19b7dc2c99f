"""Forms (Flask-WTF: validation and the CSRF token)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, SelectField, SelectMultipleField, StringField, widgets
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, Length

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


class EnrolForm(FlaskForm):
    code = StringField(_l("Enrolment code"), validators=[DataRequired(), Length(max=32)])


class CheckinForm(FlaskForm):
    """The expert's commitment: a drawn signature (PNG data URL) and the conflicts declared."""

    signature = HiddenField(validators=[DataRequired(), Length(max=400_000)])
    conflicts = SelectMultipleField(choices=[], option_widget=widgets.CheckboxInput(), widget=widgets.ListWidget(prefix_label=False),
                                    validate_choice=True)
