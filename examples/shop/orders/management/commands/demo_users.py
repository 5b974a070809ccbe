"""`manage.py demo_users`: the shop's two demo users, `ann` (a customer) and `sam`
(staff: sees the live dashboard), password `shop`. Run again: passwords are reset."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create (or reset) the demo users ann (customer) and sam (staff), password 'shop'."

    def handle(self, *args, **options):
        User = get_user_model()
        for username, staff in (("ann", False), ("sam", True)):
            user, _ = User.objects.get_or_create(username=username)
            user.is_staff = staff
            user.set_password("shop")
            user.save()
            self.stdout.write(f"{username} ({'staff' if staff else 'customer'}), password 'shop'")
