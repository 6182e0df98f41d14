"""How every form field is drawn: one template, so labels, help, limits and errors look and
read the same everywhere (`{{ form.field.as_field_group }}`)."""

from __future__ import annotations

from django.forms.renderers import TemplatesSetting


class PortalFormRenderer(TemplatesSetting):
    """Django's form templates, found like any other template, with the portal's field."""

    field_template_name = "includes/_field.html"
