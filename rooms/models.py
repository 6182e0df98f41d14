"""What the portal keeps: what makes its forms safe, and its index of the chat server."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from accounts.directory import principal_label
from rooms.backend.records import Role as ChatRole


class RoomSubmission(models.Model):
    """One submitted create-room form, so posting it twice never makes a second room."""

    token = models.UUIDField(unique=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # Whose room it is: the actor, or the requester when an approver creates it. Only a
    # post for the same owner gets the earlier room back.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+"
    )
    room_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.token} → {self.room_id or 'in progress'}"


class RoomRequest(models.Model):
    """Someone without create rights asking for a room; a Creator of the category decides.

    pending → approved → created; pending → declined / cancelled / expired. An approved
    request whose room could not be created stays approved, with the error, until retried.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved, room not created yet"
        CREATED = "created", "Room created"
        DECLINED = "declined", "Declined"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"

    token = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="room_requests"
    )
    category_id = models.CharField(max_length=255, db_index=True)
    category_label = models.CharField(max_length=512)
    name = models.CharField(max_length=256)
    description = models.CharField(max_length=256, blank=True)
    privacy = models.CharField(max_length=16)
    auditorium = models.BooleanField(default=False)
    invitations = models.CharField(max_length=16)
    justification = models.TextField()
    # The settings as asked for, kept when an approver changes them on approving (the
    # fields above then hold what was approved); empty while nothing was changed.
    asked = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    room_id = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_status_display()})"

    SETTINGS = ("name", "description", "privacy", "auditorium", "invitations")

    def settings_now(self) -> dict[str, Any]:
        return {field: getattr(self, field) for field in self.SETTINGS}

    def as_asked(self) -> dict[str, Any]:
        """The settings the requester asked for."""
        return dict(self.settings_now() | self.asked)

    def adjusted(self) -> list[str]:
        """Which settings the approver changed from the ask."""
        return [f for f in self.SETTINGS if self.asked and self.asked[f] != getattr(self, f)]


# The index: the portal's own copy of its categories and rooms, a projection of the chat
# server's state kept true by the sync worker (rooms.sync) and by every change the portal
# makes (rooms.index). Pages read it; the chat server stays the source of truth.


class IndexedCategory(models.Model):
    """A category (a space the service account created), as last read from the server."""

    category_id = models.CharField(max_length=255, primary_key=True)
    name = models.CharField(max_length=512)
    name_key = models.CharField(max_length=1024, db_index=True)
    description = models.TextField(blank=True)
    invitations_allowed = models.BooleanField(default=True)
    chat_history = models.BooleanField(default=True)
    file_uploads = models.BooleanField(default=True)
    keep_days = models.PositiveIntegerField(default=0)  # 0: messages kept for ever
    managers_read = models.BooleanField(default=False)
    # The space's child links, in the order the server lists them.
    room_ids = models.JSONField(default=list)
    indexed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name

    @property
    def room_count(self) -> int:
        return len(self.room_ids)


class CategoryPerson(models.Model):
    """Where one person stands in a category: in scope, denied, or a Creator."""

    class Standing(models.TextChoices):
        ALLOWED = "allowed", "In scope"
        DENIED = "denied", "Denied"
        CREATOR = "creator", "Creator"

    category = models.ForeignKey(IndexedCategory, on_delete=models.CASCADE, related_name="people")
    user_id = models.CharField(max_length=255)
    standing = models.CharField(max_length=16, choices=Standing.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["category", "user_id", "standing"], name="category_person_once"
            )
        ]
        indexes = [
            models.Index(fields=["user_id", "standing"], name="category_person_by_user"),
            models.Index(
                fields=["category", "standing", "user_id"], name="category_person_by_standing"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.standing}"


class IndexedRoom(models.Model):
    """A portal room (a room whose canonical parent is a category), as last read."""

    room_id = models.CharField(max_length=255, primary_key=True)
    # Not a database foreign key: a room may be indexed before its category is.
    category = models.ForeignKey(
        IndexedCategory,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="rooms",
    )
    name = models.CharField(max_length=512)
    name_key = models.CharField(max_length=1024, db_index=True)
    description = models.TextField(blank=True)
    privacy = models.CharField(max_length=16)
    auditorium = models.BooleanField(default=False)
    invitations = models.CharField(max_length=16)
    disabled = models.BooleanField(default=False)
    # The chat options the room carries (its category's, once a change reached it).
    chat_history = models.BooleanField(default=True)
    file_uploads = models.BooleanField(default=True)
    keep_days = models.PositiveIntegerField(default=0)  # 0: messages kept for ever
    managers_read = models.BooleanField(default=False)
    # The add-ins attached to it: [{"id", "name", "url"}], as its widgets say.
    add_ins = models.JSONField(default=list)
    # Display names the room's member events carry, by chat ID.
    names = models.JSONField(default=dict)
    indexed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


class RoomPerson(models.Model):
    """One role (or a pending knock) one person holds in a room."""

    class Role(models.TextChoices):
        MEMBER = "member", "Member"
        MANAGER = "manager", "Manager"
        PRESENTER = "presenter", "Presenter"
        KNOCKING = "knocking", "Asking to join"

    room = models.ForeignKey(IndexedRoom, on_delete=models.CASCADE, related_name="people")
    user_id = models.CharField(max_length=255)
    role = models.CharField(max_length=16, choices=Role.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "user_id", "role"], name="room_person_once")
        ]
        indexes = [
            models.Index(fields=["user_id", "role"], name="room_person_by_user"),
            # A role's people in a room, in order: the room's page counts them and lists
            # the first few without walking the room's other roles.
            models.Index(fields=["room", "role", "user_id"], name="room_person_by_role"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.role}"


class RoomName(models.Model):
    """A room name held, by its key (`rooms.chatserver.text.unique_key`: letter case and
    look-alike letters aside): the unique key makes two rooms of one name impossible,
    even when two people create them at the same moment. A name is claimed before its
    room is made (room_id empty until then)."""

    name_key = models.CharField(max_length=1024, unique=True)
    room_id = models.CharField(max_length=255, blank=True, db_index=True)
    claimed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name_key} → {self.room_id or 'being created'}"


class IndexStream(models.Model):
    """Where the sync worker stands in the homeserver's event stream, and who leads."""

    key = models.CharField(max_length=32, primary_key=True)
    next_batch = models.TextField(blank=True)
    # The worker that holds the lease follows the stream; others wait for it to lapse.
    leader = models.CharField(max_length=255, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    # When the worker last heard from the server, so pages can say how old the index is.
    synced_at = models.DateTimeField(null=True, blank=True)
    # The last full rebuild from the server.
    rebuilt_at = models.DateTimeField(null=True, blank=True)
    # Deaths of the sync worker that its supervisor (`runportal`) restarted it after.
    worker_restarts = models.PositiveIntegerField(default=0)
    worker_died_at = models.DateTimeField(null=True, blank=True)
    worker_death = models.CharField(max_length=255, blank=True)

    def __str__(self) -> str:
        return f"{self.key} at {self.next_batch or 'the start'}"


class IndexDifference(models.Model):
    """Something on the server the index could not take as it is: a room whose category
    link is broken, a name held by two rooms, state the portal does not understand."""

    NAME_HELD_TWICE = "name held twice"

    target_id = models.CharField(max_length=255, db_index=True)
    kind = models.CharField(max_length=64)
    detail = models.TextField()
    found_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["target_id", "kind"], name="index_difference_once")
        ]

    def __str__(self) -> str:
        return f"{self.target_id}: {self.kind}"


class AddInEntry(models.Model):
    """An add-in in the register: a web page a room's Managers may show beside its
    conversation, in the rooms of the categories named here."""

    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(max_length=2000)
    category_ids = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PolicyBreach(models.Model):
    """A change a chat user made on the chat server against the rules, which landed (a
    homeserver without the portal's module, or events from before it ran) and which the
    sync worker found: what it broke and who did it, and what the worker undid. Open
    while `undone_at` is empty: the room's page and the administrators' list say so."""

    target_id = models.CharField(max_length=255, db_index=True)
    target_label = models.CharField(max_length=255, blank=True)
    category_id = models.CharField(max_length=255, blank=True)
    rule = models.CharField(max_length=32)
    detail = models.TextField()
    chat_actor = models.CharField(max_length=255, blank=True)
    noticed_at = models.DateTimeField(auto_now_add=True)
    undone = models.TextField(blank=True)
    undone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-noticed_at", "-pk"]
        indexes = [models.Index(fields=["undone_at", "target_id"], name="policy_breach_open")]

    def __str__(self) -> str:
        return f"{self.target_id}: {self.rule}"

    @property
    def rule_label(self) -> str:
        from rooms.chatserver.policy import RULE_LABELS

        return next((label for rule, label in RULE_LABELS.items() if rule == self.rule), self.rule)


class Operation(models.Model):
    """Recorded work: a change that takes several chat-server requests, recorded before its
    first request, what it changes in `change` (its layout is the kind's: a room's
    change field by field with `before`, or the typed payload of a job of the job runner)
    and how it ended: succeeded (perhaps after retries), undone (put back as it was), or
    unfinished: neither, and listed for an administrator to retry or undo. A process that
    dies mid-way leaves it running; the job runner takes it up (rooms.operations, and
    each job's own step)."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed before changing anything"
        UNDONE = "undone", "Undone"
        UNFINISHED = "unfinished", "Unfinished"

    class Kind(models.TextChoices):
        """What work it is; the value is the audit action it is recorded as."""

        ROOM_UPDATE = "room.update", "Settings change"
        ROOM_PRIVACY = "room.privacy", "Privacy change"
        ROOM_MOVE = "room.move", "Move to another category"
        ROOM_DISABLE = "room.disable", "Disabling"
        ROOM_ENABLE = "room.enable", "Enabling"
        ROOM_OPTIONS = "room.options", "Chat options change"
        ROOM_ADDIN_ATTACH = "room.addin.attach", "Add-in added"
        ROOM_ADDIN_DETACH = "room.addin.detach", "Add-in taken out"
        MODERATION_CLEAR = "moderation.clear", "Clearing of history"
        MODERATION_REMOVE = "moderation.remove", "Removal of messages"
        MODERATION_SWEEP = "moderation.sweep", "Removal of matching messages"
        MODERATION_REPORT = "moderation.report", "Decision on a reported message"
        CATEGORY_SCOPE = "category.scope", "Scope change"
        CATEGORY_ADOPT = "category.adopt", "Adoption of a space"
        ROLE_DIRECTORY = "role.directory", "Group or OU as a room's role"
        ROLE_BULK = "role.bulk", "Change of a role for many people"
        PERSON_REMOVE = "person.remove", "Removal of a person"
        ROOMS_BULK = "rooms.bulk", "Change to many rooms"

    # A room's change, undone by applying `before` (the others are finished by Retry).
    ROOM_CHANGES = frozenset(
        {
            Kind.ROOM_UPDATE,
            Kind.ROOM_PRIVACY,
            Kind.ROOM_MOVE,
            Kind.ROOM_DISABLE,
            Kind.ROOM_ENABLE,
            Kind.ROOM_OPTIONS,
            Kind.ROOM_ADDIN_ATTACH,
            Kind.ROOM_ADDIN_DETACH,
        }
    )
    # A clearing of a room's history, or a removal of its messages.
    MODERATION = frozenset(
        {
            Kind.MODERATION_CLEAR,
            Kind.MODERATION_REMOVE,
            Kind.MODERATION_SWEEP,
            Kind.MODERATION_REPORT,
        }
    )
    # Carried out by the job runner a part at a time: running is their waiting state,
    # never a sign of abandonment.
    JOBS = frozenset({Kind.ROOMS_BULK, Kind.MODERATION_SWEEP, Kind.ROLE_BULK})

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    kind = models.CharField(max_length=64, choices=Kind.choices)
    target_id = models.CharField(max_length=255, db_index=True)
    target_label = models.CharField(max_length=512, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    request_id = models.CharField(max_length=64, blank=True)
    change = models.JSONField(default=dict)
    before = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # The process carrying it out (rooms.processes.identity): once that process is gone,
    # the job runner finishes it at once rather than after ABANDONED_AFTER.
    owner = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["status", "updated_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.target_id} ({self.status})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.kind = self.Kind(self.kind)  # no work of a kind nothing carries out
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        """Where the work is followed: its room, category, person or progress page."""
        kind = self.Kind(self.kind)
        if kind is self.Kind.ROLE_BULK:
            return reverse("roles:bulk_run", args=[self.target_id, self.pk])
        if kind is self.Kind.MODERATION_SWEEP:
            return reverse("moderation:sweep_progress", args=[self.pk])
        if kind is self.Kind.ROOMS_BULK:
            return reverse("operations:list")
        if kind is self.Kind.PERSON_REMOVE:
            return reverse("people:removal", args=[self.target_id, self.pk])
        if kind is self.Kind.CATEGORY_ADOPT:
            return reverse("categories:adopt") + "?" + urlencode({"space": self.target_id})
        if kind is self.Kind.CATEGORY_SCOPE:
            return reverse("categories:detail", args=[self.target_id])
        return reverse("rooms:detail", args=[self.target_id])

    @property
    def label(self) -> str:
        return self.Kind(self.kind).label

    @property
    def target_kind(self) -> str:
        """What `target_id` names, as the audit log says it: a room, category or person."""
        if self.kind in (self.Kind.PERSON_REMOVE,):
            return "person"
        if self.kind in (self.Kind.CATEGORY_SCOPE, self.Kind.CATEGORY_ADOPT):
            return "category"
        return "room"

    @property
    def of_room(self) -> bool:
        """A room's change (undone by applying `before`); a category's is only retried."""
        return self.kind in self.ROOM_CHANGES

    @property
    def of_moderation(self) -> bool:
        """A clearing of a room's history or a removal of its messages (finished by Retry)."""
        return self.kind in self.MODERATION

    @property
    def of_person(self) -> bool:
        """A person's removal from rooms and scopes (finished by Retry)."""
        return self.kind == self.Kind.PERSON_REMOVE


class JoinRequest(models.Model):
    """A person asking, through the portal, to be let into a Closed room (a knock from a
    chat client is the other way; both are listed to the room's Managers)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting"
        ACCEPTED = "accepted", "Let in"
        DECLINED = "declined", "Turned down"

    room_id = models.CharField(max_length=255, db_index=True)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="join_requests"
    )
    message = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["room_id", "requester"],
                condition=models.Q(status="pending"),
                name="one_pending_join_request",
            )
        ]

    def __str__(self) -> str:
        return f"{self.requester} → {self.room_id} ({self.status})"


class Mail(models.Model):
    """An e-mail the portal owes someone, kept until it is delivered (rooms.outbox): a
    page never says a person was told while their mail waits or failed."""

    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting to be sent"
        SENDING = "sending", "Being sent"
        SENT = "sent", "Sent"
        FAILED = "failed", "Could not be sent"

    # What it is about, as pages look it up: "request:12", "join:34".
    about = models.CharField(max_length=64, db_index=True)
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="mail",
        help_text="Whom it is for, when it is for one person with a portal account.",
    )
    recipients = models.JSONField(default=list)
    subject = models.CharField(max_length=998)
    body = models.TextField()
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.WAITING, db_index=True
    )
    tries = models.PositiveSmallIntegerField(default=0)
    next_try_at = models.DateTimeField(default=timezone.now)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.subject} ({self.get_status_display()})"


class DirectoryScope(models.Model):
    """A group or an OU of the directory (accounts.directory) named in a category: in its
    scope, denied it, or as its Creators. Everyone it stands for is put in the scope (or
    denied the category, or made a Creator if in scope), and kept so as the directory
    changes (rooms.services.directory)."""

    class Kind(models.TextChoices):
        GROUP = "group", "Group"
        OU = "ou", "OU"

    category_id = models.CharField(max_length=255, db_index=True)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    dn = models.CharField(max_length=1024)  # as accounts.directory.normal_dn gives it

    class Standing(models.TextChoices):
        ALLOWED = "allowed", "In scope"
        DENIED = "denied", "Denied"
        CREATOR = "creator", "Creators"

    name = models.CharField(max_length=512)
    standing = models.CharField(max_length=8, choices=Standing.choices, default=Standing.ALLOWED)
    subtree = models.BooleanField(default=True)  # an OU: with the OUs under it
    people = models.PositiveIntegerField(default=0)  # how many at the last read
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["category_id", "dn"], name="directory_scope_once")
        ]

    def __str__(self) -> str:
        return principal_label(self.kind, self.name, subtree=self.subtree)


class DirectoryGrant(models.Model):
    """Someone in a category's scope (or denied it) because of a group or an OU, and why.
    `added`: the portal put them there for it (they were not in by name), so they are
    taken out when no group or OU of the category holds them any more."""

    scope = models.ForeignKey(DirectoryScope, on_delete=models.CASCADE, related_name="grants")
    user_id = models.CharField(max_length=255)
    reason = models.CharField(max_length=1024)
    added = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "user_id"], name="directory_grant_once")
        ]
        indexes = [models.Index(fields=["user_id"], name="directory_grant_by_user")]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.reason}"


class DirectoryRole(models.Model):
    """A group or an OU of the directory named as a room's Members, Managers or
    Presenters: those of its people the rules allow hold the role, kept so as the
    directory changes (rooms.services.directory_roles)."""

    room_id = models.CharField(max_length=255, db_index=True)
    role = models.CharField(max_length=16, choices=[(r.value, r.label + "s") for r in ChatRole])
    kind = models.CharField(max_length=8, choices=DirectoryScope.Kind.choices)
    dn = models.CharField(max_length=1024)  # as accounts.directory.normal_dn gives it
    name = models.CharField(max_length=512)
    subtree = models.BooleanField(default=True)  # an OU: with the OUs under it
    people = models.PositiveIntegerField(default=0)  # how many at the last read
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room_id", "role", "dn"], name="directory_role_once")
        ]

    def __str__(self) -> str:
        return principal_label(self.kind, self.name, subtree=self.subtree)


class DirectoryRoleGrant(models.Model):
    """Someone holding a room role because of a group or an OU, and why. `added`: the
    portal gave them the role for it (they did not hold it by name), so it is taken away
    when no group or OU named for that role holds them any more."""

    named = models.ForeignKey(DirectoryRole, on_delete=models.CASCADE, related_name="grants")
    user_id = models.CharField(max_length=255)
    reason = models.CharField(max_length=1024)
    added = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["named", "user_id"], name="directory_role_grant_once")
        ]
        indexes = [models.Index(fields=["user_id"], name="directory_role_grant_by_user")]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.reason}"


class DirectoryRead(models.Model):
    """The job runner's last read of the directory (one row): when it last succeeded, and
    the error of the last read that failed since (shown on /health/ready)."""

    key = models.CharField(max_length=16, primary_key=True, default="directory")
    read_at = models.DateTimeField(null=True, blank=True)
    people = models.PositiveIntegerField(default=0)
    failed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"read at {self.read_at}" if not self.error else self.error
