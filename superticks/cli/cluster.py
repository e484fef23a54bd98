"""`superticks cluster ...`: the compose cluster's lifecycle and its chaos primitives."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from superticks.cli.args import positive_int

if TYPE_CHECKING:
    import cluster as cl

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "cluster",
        help="bring the three-node RabbitMQ cluster of docker-compose.yml up/down; chaos",
        description="Drive the three-node cluster of docker-compose.yml (nodes rabbit1..rabbit3).",
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    up = sub.add_parser(
        "up",
        help="start (idempotent) and wait until three nodes form a cluster; with Prometheus "
        "and the lag exporter (superticks monitor on 127.0.0.1:9110)",
    )
    up.add_argument("--json", action="store_true", help="print the final status as one JSON line")
    up.add_argument(
        "--no-exporter",
        action="store_true",
        help="leave the lag exporter out (its image is built from this project on first use)",
    )
    up.set_defaults(handler=_up)

    status = sub.add_parser(
        "status",
        help="nodes, containers, ports, version and cluster state (external: the nodes its "
        "management API lists)",
    )
    status.add_argument("--json", action="store_true", help="print one JSON line")
    status.set_defaults(handler=_status)

    down = sub.add_parser("down", help="stop and remove the nodes")
    down.add_argument("--purge", action="store_true", help="also delete their data volumes")
    down.set_defaults(handler=_down)

    logs = sub.add_parser("logs", help="a node's log")
    logs.add_argument("node", help="rabbit1, rabbit2 or rabbit3")
    logs.add_argument("--tail", type=positive_int, default=None, help="only the last N lines")
    logs.set_defaults(handler=_logs)

    for name, helptext in (
        ("kill", "SIGKILL a node (a crashed broker)"),
        ("restart", "start a node again and wait until it is back in the cluster"),
        (
            "drain",
            "move the leadership of every stream the node leads to the others (before a planned "
            "restart: a stopping node that still leads streams leaves them without a leader "
            "for 5-6 s); exits 1 naming the streams it could not move within 20 s",
        ),
        ("pause", "freeze a node (a hung broker)"),
        ("unpause", "thaw a paused node and wait for the cluster"),
        ("partition", "cut a node off the cluster network"),
        ("heal", "reconnect a partitioned node and wait for the cluster"),
    ):
        chaos = sub.add_parser(name, help=helptext)
        chaos.add_argument("node", help="rabbit1, rabbit2 or rabbit3")
        chaos.set_defaults(handler=_chaos, chaos=name)
    rolling = sub.add_parser(
        "rolling-restart",
        help="restart the nodes one at a time, each drained first, the next once the cluster "
        "is whole again and every stream's replicas run (a planned restart: streams keep a "
        "leader throughout)",
    )
    rolling.set_defaults(handler=_rolling_restart)


def _rolling_restart(args: argparse.Namespace) -> int:
    import cluster as cl

    started = time.monotonic()
    status = cl.rolling_restart(_cluster(), progress=lambda m: print(m, file=sys.stderr))
    print(f"rolling restart done in {time.monotonic() - started:.1f} s", file=sys.stderr)
    _print_status(status, as_json=False)
    return 0


def _cluster(exporter: bool = False) -> cl.Cluster:
    import cluster as cl
    from superticks.settings import load_settings

    connection, settings = load_settings()
    return cl.Cluster(
        settings, connection, progress=lambda m: print(m, file=sys.stderr), exporter=exporter
    )


def _print_status(status: cl.ClusterStatus, as_json: bool) -> None:
    if as_json:
        print(json.dumps(status.to_dict()))
        return
    print(
        f"cluster {status.cluster_name or '-'}: {status.state} "
        f"(RabbitMQ {status.rabbitmq_version or '?'} on Erlang {status.erlang_version or '?'}, "
        f"backend {status.backend})"
    )
    if status.backend == "external":  # its own node names, from its management API
        width = max([len(n.node) for n in status.nodes] + [4])
        print(f"  {'node':{width}} member")
        for n in status.nodes:
            print(f"  {n.node:{width}} {'yes' if n.in_cluster else 'no'}")
        return
    header = f"  {'node':8} {'container':20} {'state':9} {'member':6}"
    print(f"{header} ports (stream/amqp/mgmt/prom/tls)")
    for n in status.nodes:
        ports = "/".join(str(p) for p in n.ports.values())
        member = "yes" if n.in_cluster else "no"
        print(f"  {n.node:8} {n.container:20} {n.container_state:9} {member:6} {ports}")


def _up(args: argparse.Namespace) -> int:
    started = time.monotonic()
    status = _cluster(exporter=not args.no_exporter).up()
    print(f"cluster up in {time.monotonic() - started:.1f} s", file=sys.stderr)
    _print_status(status, args.json)
    return 0


def _status(args: argparse.Namespace) -> int:
    status = _cluster().status()
    _print_status(status, args.json)
    return 0 if status.formed else 1


def _down(args: argparse.Namespace) -> int:
    _cluster().down(purge=args.purge)
    print("cluster down" + (" (volumes deleted)" if args.purge else ""), file=sys.stderr)
    return 0


def _logs(args: argparse.Namespace) -> int:
    sys.stdout.write(_cluster().logs(args.node, tail=args.tail))
    return 0


def _chaos(args: argparse.Namespace) -> int:
    import cluster as cl

    c = _cluster()
    action = getattr(cl, args.chaos)
    started = time.monotonic()
    result = action(c, args.node)
    print(f"{args.chaos} {args.node}: done in {time.monotonic() - started:.1f} s", file=sys.stderr)
    if isinstance(result, cl.ClusterStatus):
        _print_status(result, as_json=False)
    elif isinstance(result, cl.Drain):
        for vhost, stream, leader in result.moves:
            print(f"  {stream} (vhost {vhost}) -> {leader}")
        if result.stuck:
            streams = ", ".join(f"{stream} (vhost {vhost})" for vhost, stream in result.stuck)
            print(
                f"{args.node} still leads {streams}: no other member ran in time, or the broker "
                f"kept electing {args.node} (its other replicas are behind); see `superticks "
                f"cluster logs {args.node}` and drain it again",
                file=sys.stderr,
            )
            for vhost, stream, why in result.refused:
                print(f"  {stream} (vhost {vhost}): {why}", file=sys.stderr)
            return 1
    return 0
