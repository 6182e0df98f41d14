"""A person's API tokens: make one (shown once), list and revoke them; administrators see
and revoke everyone's."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import tokens
from accounts.forms import TokenForm
from portal.http import HtmxHttpRequest


@never_cache  # the page that shows a new token once must not be kept anywhere
@require_http_methods(["GET", "POST"])
@login_required
def token_list(request: HtmxHttpRequest) -> TemplateResponse:
    form = TokenForm(request.POST or None)
    context: dict = {"form": form}
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                token, secret = tokens.token_create(actor=request.user, **form.cleaned_data)
            except tokens.TokenInvalid as exc:
                form.add_error("name", str(exc))
            else:
                context |= {"made": token, "secret": secret, "form": TokenForm()}
                status = 201
    context["tokens"] = tokens.tokens_of(request.user)
    return TemplateResponse(request, "accounts/tokens.html", context, status=status)


@require_GET
@login_required
def token_all(request: HtmxHttpRequest) -> TemplateResponse:
    everyone = tokens.tokens_of(request.user, everyone=True)
    return TemplateResponse(request, "accounts/tokens_all.html", {"tokens": everyone})


@require_POST
@login_required
def token_revoke(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    try:
        token = tokens.token_revoke(actor=request.user, pk=pk)
    except tokens.NoSuchToken as exc:
        missing = Http404(str(exc))
        missing.audited = True  # type: ignore[attr-defined]  # the service recorded it
        raise missing from None
    messages.success(request, f"The token “{token.name}” was revoked: it no longer works.")
    return redirect("token_all" if token.user_id != request.user.pk else "tokens")
