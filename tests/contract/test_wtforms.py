"""What web/console_forms.py and web/auditor.py rely on in WTForms: a field's ``_value``, the
hook WTForms documents for custom fields, is what its input shows. Fails on an upgrade that
changes it."""

from __future__ import annotations

from wtforms import Form, StringField
from wtforms.widgets import DateTimeLocalInput, TextArea


class Shown(StringField):
    def _value(self):
        return "as typed"


class ShownInTextArea(Shown):
    widget = TextArea()


class ShownAsMoment(Shown):
    widget = DateTimeLocalInput()


class Typed(Form):
    plain = Shown()
    area = ShownInTextArea()
    moment = ShownAsMoment()


def test_an_input_shows_what_its_fields_value_hook_returns():
    form = Typed()

    assert 'value="as typed"' in form.plain()
    assert "as typed</textarea>" in form.area()
    assert 'value="as typed"' in form.moment()
