"""Least-privilege users: one per role, with the permissions its job needs and no more.

What each stream-protocol command needs (RabbitMQ 4.3, `rabbit_stream_reader`):

=============================================  =========================================
command                                        permission (on the stream, a "queue")
=============================================  =========================================
declare publisher (then publish: no check)     write
query publisher sequence                       read
subscribe (SAC included), query offset,        read
resolve offset spec, stream stats
store offset                                   read (without it, silently not stored)
create / delete stream                         configure
create / delete super stream                   configure on the exchange and partitions
partitions (of a super stream)                 read or write on its exchange and on every
                                               partition (4.3.6; else code 16, refused)
route                                          write on the exchange and the partitions
metadata (leader, replicas; stream exists?)    read or write on the stream (4.3.6)
=============================================  =========================================

(Partitions, route and metadata as the 4.3.6 broker's own code checks them, decompiled from
the image: older sources and the documentation check nothing there.)

So the roles, for super stream S (partitions ``S-0`` .. ``S-N``, dead letters ``S-dlq``):

* admin (``superticks``, tag administrator): everything; topology only (create/delete S and
  ``S-dlq``: `superticks topology create` makes both) and these users.
* producer and worker read S's exchange: listing S's partitions needs it (and read on the
  partitions, which they have anyway); read on an exchange lets a user do nothing else with
  it but bind from it queues it may write to.
* producer: write and read on S's partitions (read: its publisher sequence, which a restarted
  producer continues from; and the single-active-consumer name lock on partition 0).
  Nothing else: it cannot create or delete a stream, nor read or write any other stream.
* worker: read on S's partitions (subscribe, query and store offsets) and on ``S-dlq``, write on
  ``S-dlq`` only (dead letters). No configure: it cannot create, delete or publish to a
  partition; the dead-letter stream is the topology's (a worker only creates it if its user
  may, e.g. the admin).
* strategy (a worker running the paper strategy): the worker's permissions, plus write and read
  on the audit stream A (``trading_audit_log``; read: its publisher sequence and name lock,
  which is a single-active-consumer group on A, so it can read the log too) and on its
  checkpoints, ``A_checkpoints``. No configure: the admin creates A (the first `AuditLog`
  started as the admin does), A_checkpoints (the first checkpoint written as the admin), or
  S-dlq.
* aggregator: read on the venues' super streams (``market_data_<venue>``: exchanges,
  partitions, their dead-letter streams), write on their dead-letter streams only; write and
  read on S's partitions and read on S's exchange, like the producer. It cannot publish to a
  venue's feed, consume anything else, or write the audit log. (A venue whose super stream is
  not named ``market_data_<venue>`` (`--source`) needs its own grant.)
* monitoring (tag monitoring): no stream permission at all. It reads metadata from the
  management API (streams, leaders and replicas, bindings, consumers, stored offsets); over
  the stream protocol it can do nothing, since there even metadata needs read or write on the
  stream, and read would let it consume. So it can neither publish nor consume.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from cluster.management import ManagementClient
from superticks.settings import ROLE_USERS, ConnectionSettings, Role

__all__ = [
    "DEFAULT_SUPER_STREAM",
    "Permissions",
    "RoleUser",
    "ensure_role_users",
    "role_permissions",
    "role_users",
]

DEFAULT_SUPER_STREAM = "ticks"
DEFAULT_AUDIT_STREAM = "trading_audit_log"  # trading.audit.AUDIT_STREAM (cluster never imports it)
CHECKPOINTS = "_checkpoints"  # trading.strategy.checkpoint_stream: the audit stream + this
VENUE_STREAMS = "market_data_"  # trading.venues.venue_stream's prefix
NOTHING = "^$"


@dataclass(frozen=True, slots=True)
class Permissions:
    """RabbitMQ's three permission regular expressions on one vhost."""

    configure: str
    write: str
    read: str


@dataclass(frozen=True, slots=True)
class RoleUser:
    role: Role
    username: str
    password: str

    @property
    def tags(self) -> str:
        return "monitoring" if self.role is Role.MONITORING else ""


def role_permissions(
    role: Role,
    super_stream: str,
    dead_letters: str | None = None,
    audit_stream: str = DEFAULT_AUDIT_STREAM,
    venue_streams: str = VENUE_STREAMS,
) -> Permissions:
    """The permissions of `role` for `super_stream` (dead letters: ``<super_stream>-dlq``), the
    audit stream (strategy) and the venues' super streams, named `venue_streams` + the venue
    (aggregator)."""
    exchange = re.escape(super_stream)
    partitions = f"{exchange}-[0-9]+"
    dlq = re.escape(dead_letters or f"{super_stream}-dlq")
    audit = f"{re.escape(audit_stream)}(?:{CHECKPOINTS})?"  # the log and its checkpoints
    venues = f"{re.escape(venue_streams)}[A-Za-z0-9._-]+"
    if role is Role.ADMIN:
        return Permissions(".*", ".*", ".*")
    if role is Role.PRODUCER:
        return Permissions(NOTHING, f"^{partitions}$", f"^({exchange}|{partitions})$")
    if role is Role.WORKER:
        return Permissions(NOTHING, f"^{dlq}$", f"^({exchange}|{partitions}|{dlq})$")
    if role is Role.STRATEGY:
        return Permissions(
            NOTHING, f"^({dlq}|{audit})$", f"^({exchange}|{partitions}|{dlq}|{audit})$"
        )
    if role is Role.AGGREGATOR:
        return Permissions(
            NOTHING, f"^({partitions}|{venues}-dlq)$", f"^({exchange}|{partitions}|{venues})$"
        )
    return Permissions(NOTHING, NOTHING, NOTHING)


def role_users(connection: ConnectionSettings) -> list[RoleUser]:
    """The producer, worker, monitoring, strategy and aggregator users:
    SUPERTICKS_<ROLE>_USERNAME/PASSWORD when set, else ``superticks-<role>`` with that name as
    its password (like the admin's default)."""
    users = []
    for role in ROLE_USERS:
        name = getattr(connection, f"{role}_username") or f"superticks-{role}"
        secret = getattr(connection, f"{role}_password")
        users.append(RoleUser(role, name, secret.get_secret_value() if secret else name))
    return users


def ensure_role_users(
    management: ManagementClient,
    connection: ConnectionSettings,
    super_stream: str = DEFAULT_SUPER_STREAM,
    users: list[RoleUser] | None = None,
    audit_stream: str = DEFAULT_AUDIT_STREAM,
    venue_streams: str = VENUE_STREAMS,
) -> list[RoleUser]:
    """Create or update each role's user and set its permissions on the vhost (idempotent:
    the same call again changes nothing). Needs an administrator (the admin user)."""
    vhost = quote(connection.vhost, safe="")
    chosen = users if users is not None else role_users(connection)
    for user in chosen:
        name = quote(user.username, safe="")
        management.send("PUT", f"/api/users/{name}", {"password": user.password, "tags": user.tags})
        perms = role_permissions(
            user.role, super_stream, audit_stream=audit_stream, venue_streams=venue_streams
        )
        management.send(
            "PUT",
            f"/api/permissions/{vhost}/{name}",
            {"configure": perms.configure, "write": perms.write, "read": perms.read},
        )
    return chosen
