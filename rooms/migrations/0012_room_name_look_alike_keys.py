"""Room names are held by their look-alike key (rooms.chatserver.text.unique_key), not
their case-folded form. Where two rooms' names now share a key, the first keeps the
claim and the index lists the other as a name held twice, for administrators: nothing
is renamed."""

from django.db import migrations

from rooms.chatserver.text import unique_key


def rekey(apps, schema_editor):
    RoomName = apps.get_model("rooms", "RoomName")
    IndexedRoom = apps.get_model("rooms", "IndexedRoom")
    IndexDifference = apps.get_model("rooms", "IndexDifference")
    names = dict(IndexedRoom.objects.values_list("room_id", "name"))
    claims = list(RoomName.objects.order_by("claimed_at", "pk"))
    RoomName.objects.all().delete()
    kept: set[str] = set()
    for claim in claims:
        name = names.get(claim.room_id) if claim.room_id else None
        key = unique_key(name) if name is not None else claim.name_key
        if key in kept:
            IndexDifference.objects.update_or_create(
                target_id=claim.room_id,
                kind="name held twice",  # IndexDifference.NAME_HELD_TWICE
                defaults={"detail": f"its name “{name}” looks like another room's"},
            )
            continue
        kept.add(key)
        RoomName.objects.create(name_key=key, room_id=claim.room_id)


class Migration(migrations.Migration):
    dependencies = [("rooms", "0011_request_asked")]

    operations = [migrations.RunPython(rekey, migrations.RunPython.noop)]
