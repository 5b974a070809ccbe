"""Chat's data: rooms and their messages, each with the room's own sequence number.

Users live in ws-gateway's database; a message keeps the author's id and username as
they were, so chat never asks another service who wrote what.
"""

from django.db import models

# The author id of a system message (the server API): no user has id 0.
SYSTEM_USER_ID = 0


class ChatRoom(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=64, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The seq of the room's latest message; incremented in the transaction that
    # stores the next one, so sequence numbers have no gaps and no repeats.
    last_seq = models.BigIntegerField(default=0)

    def __str__(self):
        return self.name


class Message(models.Model):
    room = models.ForeignKey(ChatRoom, on_delete=models.CASCADE, related_name="messages")
    seq = models.BigIntegerField()
    user_id = models.BigIntegerField()
    username = models.CharField(max_length=150)
    content = models.TextField()
    # The client's own id for the message; a resend with the same id is stored once.
    client_id = models.CharField(max_length=64, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["room", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["room", "seq"], name="chat_message_room_seq"),
            models.UniqueConstraint(
                fields=["room", "user_id", "client_id"],
                condition=models.Q(client_id__isnull=False),
                name="chat_message_client_id",
            ),
        ]

    def __str__(self):
        return f"{self.username}: {self.content[:50]}"

    def as_frame_fields(self) -> dict:
        """The fields of a chat_message frame and of a history entry (the seed's, plus seq)."""
        data = {
            "seq": self.seq,
            "user": self.username,
            "message": self.content,
            "timestamp": self.created_at.isoformat(),
        }
        if self.user_id == SYSTEM_USER_ID:
            # The shop's system message: its client_id is the shop's Idempotency-Key,
            # nothing a room's members need.
            data["system"] = True
        elif self.client_id:
            data["client_id"] = self.client_id
        return data
