from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET

from portal.http import HtmxHttpRequest
from rooms.forms import CategorySearchForm
from rooms.selectors import categories_page

CATEGORIES_PER_PAGE = 48


def category_page_context(request: HtmxHttpRequest, per_page: int, *, people: bool) -> dict:
    """A searchable page of the categories listed to the person (for both category lists)."""
    form = CategorySearchForm(request.GET)
    search = form.cleaned_data["q"] if form.is_valid() else ""
    page, categories = categories_page(
        user=request.user,
        search=search,
        page=request.GET.get("page"),
        per_page=per_page,
        people=people,
    )
    query = request.GET.copy()
    query.pop("page", None)
    return {
        "form": form,
        "page": page,
        "categories": categories,
        "searched": bool(search),
        "query": query.urlencode(),
    }


@require_GET
@login_required
def category_list(request: HtmxHttpRequest) -> TemplateResponse:
    """The categories in which the person may create rooms, from the index."""
    return TemplateResponse(
        request,
        "rooms/category_list.html",
        category_page_context(request, CATEGORIES_PER_PAGE, people=False),
    )
