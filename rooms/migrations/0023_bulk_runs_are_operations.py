"""A pasted list of people given a role is an operation of the job runner (`role.bulk`),
no longer a `BulkRun` stepped by its page: a run left unfinished becomes an unfinished
operation its owner resumes from the same page."""

from django.db import migrations


def runs_to_operations(apps, schema_editor):
    BulkRun = apps.get_model("rooms", "BulkRun")
    Operation = apps.get_model("rooms", "Operation")
    for run in BulkRun.objects.exclude(status="done"):
        lines = [
            {
                "line": line["line"],
                "person": line["user_id"],
                "change": "add",
                "fate": line["fate"],
                "reason": line.get("reason", ""),
                "result": "done" if line["result"] == "added" else "",
                "detail": "",
            }
            for line in run.lines
        ]
        Operation.objects.create(
            kind="role.bulk",
            target_id=run.room_id,
            actor_id=run.actor_id,
            request_id=run.request_id,
            change={"role": run.role, "lines": lines},
            status="unfinished",
            error=run.error or "Interrupted before it finished.",
        )


class Migration(migrations.Migration):
    dependencies = [
        ("rooms", "0022_delete_roomlock"),
    ]

    operations = [
        migrations.RunPython(runs_to_operations, migrations.RunPython.noop),
        migrations.DeleteModel(name="BulkRun"),
    ]
