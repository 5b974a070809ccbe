"""Demo users: alice and bob, and the staff user admin, all with DEMO_PASSWORD."""

from django.contrib.auth import get_user_model
from django.core.management import BaseCommand

from switchboard.config import env


class Command(BaseCommand):
    help = "Create the demo users (idempotent)."

    def handle(self, *args, **options):
        password = env("DEMO_PASSWORD")
        User = get_user_model()
        for username, staff in (("alice", False), ("bob", False), ("admin", True)):
            user, created = User.objects.get_or_create(username=username, defaults={"is_staff": staff})
            if created:
                user.is_superuser = staff
                user.set_password(password)
                user.save()
        self.stdout.write("demo users: alice, bob, admin (staff)")
