"""`python -m django apikey create|revoke|list|sync` (ws-gateway's settings): the shop's
API keys from a shell (ws_gateway/apikeystore.py does the work).

    apikey create --name "shop back end" --scope notify --scope dashboard
    apikey revoke <key id>
    apikey list
    apikey sync     # rewrite the Redis index from the database (a Redis restored empty)

`create` prints the key once; only its hash is stored.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from redis.exceptions import RedisError

from switchboard import apikeys
from ws_gateway import apikeystore


class Command(BaseCommand):
    help = "Create, revoke or list the shop's API keys (the server API's credentials)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="make a key and print it once")
        create.add_argument("--name", required=True, help="what uses the key, e.g. 'shop web'")
        create.add_argument(
            "--scope", action="append", required=True, choices=apikeys.SCOPES, help="a capability (repeat for more)"
        )
        revoke = sub.add_parser("revoke", help="refuse a key from now on, in every service")
        revoke.add_argument("key_id", help="the id `list` shows (the 16 hex characters after sbk_)")
        sub.add_parser("list", help="every key: id, name, scopes, created, revoked")
        sub.add_parser("sync", help="rewrite the Redis index of every key from the database")

    def handle(self, *args, action, **options):
        try:
            return getattr(self, f"do_{action}")(**options)
        except RedisError as exc:
            raise CommandError(f"Redis is unreachable, nothing changed: {exc}") from exc
        except ValueError as exc:
            raise CommandError(str(exc)) from exc

    def do_create(self, name, scope, **_):
        row, key = apikeystore.create(name, scope, created_by="manage.py apikey")
        self.stderr.write(f"key {row.key_id} ({row.name}; {', '.join(row.scopes)}): shown once, store it now")
        self.stdout.write(key)

    def do_revoke(self, key_id, **_):
        row = apikeystore.revoke(key_id.removeprefix(apikeys.PREFIX).split("_")[0])
        if row is None:
            raise CommandError(f"no key {key_id[:40]!r}")
        self.stdout.write(f"revoked {row.key_id} ({row.name}) at {row.revoked_at.isoformat()}")

    def do_list(self, **_):
        for row in apikeystore.listing():
            d = row.as_dict()
            state = f"revoked {d['revoked']}" if d["revoked"] else "active"
            self.stdout.write(f"{d['id']}  {','.join(d['scopes']):<28} {d['created']}  {state}  {d['name']}")

    def do_sync(self, **_):
        self.stdout.write(f"{apikeystore.sync()} key(s) written to the index")
