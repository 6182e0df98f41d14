"""The database itself refuses to change or remove audit entries.

The model refuses too, but only code that goes through Django; these triggers also stop
a hand-written UPDATE or DELETE. On SQLite only UPDATE is refused: Django empties test
databases there with DELETE (on PostgreSQL with TRUNCATE, which row triggers do not see).
"""

from django.db import migrations

TABLE = "portal_auditentry"

POSTGRES_UP = f"""
CREATE OR REPLACE FUNCTION portal_audit_append_only() RETURNS trigger AS $$
BEGIN
    -- The retention command alone removes old entries, inside a transaction that sets
    -- this flag; it leaves a checkpoint entry so the hash chain stays verifiable.
    IF TG_OP = 'DELETE' AND current_setting('portal.audit_retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit entries are append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER portal_audit_append_only
    BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION portal_audit_append_only();
"""
POSTGRES_DOWN = f"""
DROP TRIGGER IF EXISTS portal_audit_append_only ON {TABLE};
DROP FUNCTION IF EXISTS portal_audit_append_only();
"""
SQLITE_UP = [
    f"""CREATE TRIGGER portal_audit_no_update BEFORE UPDATE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'audit entries are append-only: UPDATE refused'); END;"""
]
SQLITE_DOWN = ["DROP TRIGGER IF EXISTS portal_audit_no_update;"]


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP, params=None)  # the % in RAISE is no placeholder
    elif vendor == "sqlite":
        for statement in SQLITE_UP:
            schema_editor.execute(statement)


def uninstall(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DOWN)
    elif vendor == "sqlite":
        for statement in SQLITE_DOWN:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("portal", "0001_initial")]

    operations = [migrations.RunPython(install, uninstall)]
