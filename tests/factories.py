from __future__ import annotations

import factory

from accounts.models import User
from tests.conftest import TEST_SERVER_NAME


class UserFactory(factory.django.DjangoModelFactory):
    """A chat user as the portal knows them after their first login."""

    class Meta:
        model = User
        django_get_or_create = ("username",)

    chat_id = factory.Sequence(lambda n: f"@person{n}:{TEST_SERVER_NAME}")
    username = factory.LazyAttribute(lambda user: user.chat_id)
    display_name = factory.Sequence(lambda n: f"Person {n}")
    password = factory.django.Password(None)


class LocalUserFactory(factory.django.DjangoModelFactory):
    """A local portal account (administrators and auditors)."""

    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"local{n}")
    chat_id = None
    password = factory.django.Password("local-password-1")


class AdministratorFactory(LocalUserFactory):
    is_portal_admin = True


class AuditorFactory(LocalUserFactory):
    is_auditor = True
