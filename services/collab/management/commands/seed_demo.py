"""Demo data for collab: a document "Welcome" owned by alice, editable by bob,
readable by admin (idempotent). The ids are ws-gateway's demo users' (1, 2, 3)."""

from django.core.management import BaseCommand

from collab import store
from collab.models import Document
from switchboard.tokens import Identity


class Command(BaseCommand):
    help = "Create the demo document."

    def handle(self, *args, **options):
        doc = Document.objects.filter(title="Welcome", owner_name="alice").first()
        if doc is None:
            doc = store.create_document(Identity(1, "alice"), "Welcome", "Type here together.\n")
            store.share(doc, 2, "bob", "edit")
            store.share(doc, 3, "admin", "read")
        self.stdout.write(f"demo document: {doc.pk}")
