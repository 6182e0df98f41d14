"""How every form field is drawn: one template, so labels, help, limits and errors look and
read the same everywhere (`{{ form.field.as_field_group }}`)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.forms.renderers import BaseRenderer, TemplatesSetting
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe


class PortalFormRenderer(TemplatesSetting):
    """Django's form templates, found like any other template, with the portal's field."""

    field_template_name = "includes/_field.html"


class LongSelect(forms.Select):
    """A select for lists that grow with the organisation (its categories): the options
    are written at once, where Django renders a template per option, which costs a
    millisecond for every hundred."""

    def render(
        self,
        name: str,
        value: Any,
        attrs: dict[str, Any] | None = None,
        renderer: BaseRenderer | None = None,
    ) -> SafeString:
        chosen = {str(v) for v in self.format_value(value)}
        options = format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            (
                (key, mark_safe(" selected") if str(key) in chosen else "", label)
                for key, label in self.choices
            ),
        )
        return format_html(
            '<select name="{}"{}>{}</select>',
            name,
            flatatt(self.build_attrs(self.attrs, attrs)),
            options,
        )
