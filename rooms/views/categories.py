from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET

from portal.http import HtmxHttpRequest
from rooms.selectors import categories_with_create_rights


@require_GET
@login_required
def category_list(request: HtmxHttpRequest) -> TemplateResponse:
    """The categories in which the person may create rooms, read live from the chat server."""
    categories = categories_with_create_rights(user=request.user)
    return TemplateResponse(request, "rooms/category_list.html", {"categories": categories})
