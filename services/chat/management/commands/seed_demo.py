"""Demo data for chat: the room `lobby` (idempotent)."""

from django.core.management import BaseCommand

from chat.models import ChatRoom


class Command(BaseCommand):
    help = "Create the demo room lobby."

    def handle(self, *args, **options):
        ChatRoom.objects.get_or_create(slug="lobby", defaults={"name": "Lobby", "description": "Say hello."})
        self.stdout.write("demo room: lobby")
