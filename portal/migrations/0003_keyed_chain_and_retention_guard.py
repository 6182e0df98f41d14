"""A chain key ID on every entry, and a DELETE that only retention can make.

PostgreSQL: a DELETE is let through only when it runs as the role
`portal_audit_retention`, that is, inside the SECURITY DEFINER function
`portal_audit_remove_through`, which that role owns; the retention flag an ordinary
session could set is gone. Creating the role needs CREATEROLE once (docs/deploy.md).

SQLite: a DELETE trigger asks `portal_audit_retention_allowed()`, a function only the
portal's own connections have (see portal/audit_retention.py). The UPDATE trigger is
installed again: adding a column may rebuild the table, which drops its triggers.
"""

from django.db import migrations, models

TABLE = "portal_auditentry"
ROLE = "portal_audit_retention"

POSTGRES_UP = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN
        CREATE ROLE {ROLE} NOLOGIN;
    END IF;
END
$$;
GRANT USAGE, CREATE ON SCHEMA public TO {ROLE};
GRANT SELECT, DELETE ON {TABLE} TO {ROLE};
CREATE OR REPLACE FUNCTION portal_audit_remove_through(through_id bigint) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    removed bigint;
BEGIN
    DELETE FROM {TABLE} WHERE id <= through_id;
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END;
$$;
ALTER FUNCTION portal_audit_remove_through(bigint) OWNER TO {ROLE};
REVOKE ALL ON FUNCTION portal_audit_remove_through(bigint) FROM PUBLIC;
CREATE OR REPLACE FUNCTION portal_audit_append_only() RETURNS trigger AS $$
BEGIN
    -- Only retention, through portal_audit_remove_through, removes entries; it leaves
    -- a checkpoint entry so the hash chain stays verifiable.
    IF TG_OP = 'DELETE' AND current_user = '{ROLE}' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit entries are append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
"""
POSTGRES_DOWN = """
DROP FUNCTION IF EXISTS portal_audit_remove_through(bigint);
"""
SQLITE_UP = [
    "DROP TRIGGER IF EXISTS portal_audit_no_update;",
    "DROP TRIGGER IF EXISTS portal_audit_no_delete;",
    f"""CREATE TRIGGER portal_audit_no_update BEFORE UPDATE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'audit entries are append-only: UPDATE refused'); END;""",
    f"""CREATE TRIGGER portal_audit_no_delete BEFORE DELETE ON {TABLE}
        WHEN NOT portal_audit_retention_allowed()
        BEGIN SELECT RAISE(ABORT, 'audit entries are append-only: DELETE refused'); END;""",
]
SQLITE_DOWN = ["DROP TRIGGER IF EXISTS portal_audit_no_delete;"]


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
    dependencies = [("portal", "0002_audit_append_only")]

    operations = [
        migrations.AddField(
            model_name="auditentry",
            name="key_id",
            field=models.CharField(blank=True, default="", max_length=32),
        ),
        migrations.RunPython(install, uninstall),
    ]
