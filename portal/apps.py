from django.apps import AppConfig
from django.db.backends.signals import connection_created


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from portal import checks  # noqa: F401 - registers the chat server check
        from portal.audit.retention import register_sqlite_guard

        connection_created.connect(register_sqlite_guard, dispatch_uid="audit_retention_guard")
