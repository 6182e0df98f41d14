"""The database itself refuses to change or remove audit entries.

The model refuses too, but only code that goes through Django; these triggers also stop
a hand-written UPDATE or DELETE.
"""

from django.db import migrations

TABLE = "portal_auditentry"

POSTGRES_UP = f"""
CREATE OR REPLACE FUNCTION portal_audit_append_only() RETURNS trigger AS $$
BEGIN
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
    f"""CREATE TRIGGER portal_audit_no_{op.lower()} BEFORE {op} ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'audit entries are append-only: {op} refused'); END;"""
    for op in ("UPDATE", "DELETE")
]
SQLITE_DOWN = [f"DROP TRIGGER IF EXISTS portal_audit_no_{op};" for op in ("update", "delete")]


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP)
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
