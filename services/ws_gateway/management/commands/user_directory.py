"""`python -m django user_directory [--rebuild]` (ws-gateway's settings): the user
directory on Redis (switchboard/userdir.py). Without --rebuild, prints its state; with
it, drops and refills it from the database (after user writes that bypassed the model's
signals: QuerySet.update(), raw SQL, a database restored from a backup).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from switchboard import userdir
from ws_gateway import directory


class Command(BaseCommand):
    help = "Show or rebuild the user directory on Redis (username -> id, read by every service)."

    def add_arguments(self, parser):
        parser.add_argument("--rebuild", action="store_true", help="drop the directory and fill it from the database")

    def handle(self, *args, rebuild: bool = False, **options):
        if rebuild:
            written = directory.rebuild()
            if written is None:
                self.stderr.write("another fill is running, or Redis restarted during this one: run it again")
                raise SystemExit(1)
            self.stdout.write(f"rebuilt: {written} names")
            return
        client = userdir._sync_client()
        self.stdout.write(
            f"names: {client.hlen(userdir.KEY)}, users: {get_user_model().objects.count()}, "
            f"filled: {'no' if userdir.needs_fill() else 'yes'}"
        )
