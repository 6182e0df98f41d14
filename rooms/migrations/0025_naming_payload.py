"""A group's or an OU's naming or taking out (`role.directory`, `category.scope` with a
DN) records the row taken out as `taking_out` (it was `named` for a room's role, `scope`
for a category's) and always says how it is named (`role` or `standing`)."""

from django.db import migrations


def forwards(apps, schema_editor):
    Operation = apps.get_model("rooms", "Operation")
    for op in Operation.objects.filter(kind__in=["role.directory", "category.scope"]):
        change = dict(op.change)
        if "dn" not in change:
            continue  # a scope change naming people
        key = "named" if op.kind == "role.directory" else "scope"
        change["taking_out"] = change.pop(key, None)
        change.setdefault("role" if op.kind == "role.directory" else "standing", "")
        op.change = change
        op.save(update_fields=["change"])


def backwards(apps, schema_editor):
    Operation = apps.get_model("rooms", "Operation")
    for op in Operation.objects.filter(kind__in=["role.directory", "category.scope"]):
        change = dict(op.change)
        if "dn" not in change:
            continue
        taking_out = change.pop("taking_out", None)
        if taking_out is not None:
            change["named" if op.kind == "role.directory" else "scope"] = taking_out
        op.change = change
        op.save(update_fields=["change"])


class Migration(migrations.Migration):
    dependencies = [("rooms", "0024_operation_kinds")]

    operations = [migrations.RunPython(forwards, backwards)]
