"""A person's API tokens: make one (shown once), list and revoke them; administrators see
and revoke everyone's. Signing in through the homeserver's single sign-on."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import authenticate, login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.views import LoginView
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import sso, tokens
from accounts.backends import refuse_login
from accounts.forms import LoginForm, TokenForm
from portal.http import HtmxHttpRequest


@never_cache  # the page that shows a new token once must not be kept anywhere
@require_http_methods(["GET", "POST"])
@login_required
def token_list(request: HtmxHttpRequest) -> TemplateResponse:
    form = TokenForm(request.POST or None)
    context: dict[str, Any] = {"form": form}
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


# Signing in: a chat password, or the homeserver's single sign-on (accounts.sso).


class PortalLoginView(LoginView):
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(**kwargs) | {"sso_providers": sso.providers()}


SSO_CANCELLED = "The single sign-on was cancelled or refused by the identity provider."
SSO_NOT_ALLOWED = "The chat server vouched for this account, but it cannot sign in to the portal."
SSO_LOST = (
    "That single sign-on was not begun from this browser, or has already been used. Sign in again."
)


@require_GET
def sso_start(request: HttpRequest, provider_id: str) -> HttpResponse:
    provider = next((p for p in sso.providers() if p.id == provider_id), None)
    if provider is None:  # no longer offered (the page was old), or never was
        messages.error(request, "The chat server does not offer that sign-in (now): choose again.")
        return redirect("login")
    return redirect(sso.start(request, provider, request.GET.get("next", "")))


@never_cache
@require_GET
def sso_return(request: HttpRequest) -> HttpResponse:
    """Back from the homeserver with a login token: the state must be the one this
    session began with; the token is exchanged once."""
    begun = sso.pending(request, request.GET.get("state", ""))
    if begun is None:
        return sso_refused(request, SSO_LOST)
    user = authenticate(request, login_token=request.GET.get("loginToken", ""))
    if user is None:
        return TemplateResponse(
            request,
            "registration/sso_failed.html",
            {"reason": getattr(request, "login_refusal", "") or SSO_NOT_ALLOWED},
            status=403,
        )  # authenticate() audited and counted it, with the reason
    login(request, user, backend="accounts.backends.SingleSignOnBackend")
    return redirect(begun["next"])


@never_cache
@require_GET
def sso_failed(request: HttpRequest) -> HttpResponse:
    """Where the homeserver sends a sign-in that did not finish at the provider."""
    if request.session.pop(sso.SESSION_KEY, None) is None:
        return redirect("login")  # nothing was begun here: nothing to say or count
    return sso_refused(request, SSO_CANCELLED)


def sso_refused(request: HttpRequest, reason: str) -> HttpResponse:
    """Refused before any token reached the chat server: said, audited and counted as a
    failed sign-in, as a wrong password is."""
    refuse_login(request, reason)
    user_login_failed.send(sender=__name__, credentials={"username": ""}, request=request)
    return TemplateResponse(request, "registration/sso_failed.html", {"reason": reason}, status=403)
