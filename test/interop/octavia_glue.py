#!/usr/bin/python3
"""Driver glue for the interop suite: calls Octavia 11.0.0's own code.

This file only imports Octavia (Debian's python3-octavia) and calls it; it
reimplements nothing. interop_test.go runs it as a subprocess. Subcommands
read JSON lines on stdin and write JSON lines on stdout:

  seal            {"key", "hex", "text"}  -> {"b64"}   wrap_envelope(json.loads(text))
  open            {"key", "b64"}          -> {"ok", "text"|"error"}   unwrap_envelope
  schema URL                              create Octavia's schema from its
                                          SQLAlchemy models, plus lookup rows
  apply URL KEY FILE [TRACE]              feed FILE's datagrams through
                                          update_health and update_stats
  listen URL KEY TIMEOUT INTERVAL         Octavia's health manager, live: a
                                          UDP listener on 127.0.0.1 (its port
                                          printed first) applying each
                                          datagram as apply does, and
                                          health_check every INTERVAL s with
                                          heartbeat_timeout TIMEOUT s; until
                                          stdin closes
"""

import base64
import json
import logging
import sys
import time


def _url(url):
    # pgtest hands out postgres:// URLs; SQLAlchemy wants a dialect+driver.
    if url.startswith("postgres://"):
        url = "postgresql+psycopg2://" + url[len("postgres://"):]
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def cmd_seal():
    from octavia.amphorae.backends.health_daemon import status_message
    for line in sys.stdin:
        req = json.loads(line)
        obj = json.loads(req["text"])
        env = status_message.wrap_envelope(obj, req["key"], hex=req["hex"])
        print(json.dumps({"b64": base64.b64encode(env).decode()}))


def cmd_open():
    from oslo_serialization import jsonutils
    from octavia.amphorae.backends.health_daemon import status_message
    for line in sys.stdin:
        req = json.loads(line)
        env = base64.b64decode(req["b64"])
        try:
            obj = status_message.unwrap_envelope(env, req["key"])
        except Exception as e:  # any failure is a rejection
            print(json.dumps({"ok": False, "error": type(e).__name__}))
            continue
        print(json.dumps({"ok": True, "text": jsonutils.dumps(obj)}))


# Lookup rows Octavia 11's migrations seed (spec section 7.5); create_all
# builds tables only.
LOOKUPS = {
    "operating_status": ["DEGRADED", "DRAINING", "ERROR", "NO_MONITOR",
                         "OFFLINE", "ONLINE"],
    "provisioning_status": ["ACTIVE", "ALLOCATED", "BOOTING", "DELETED",
                            "ERROR", "FAILOVER_STOPPED", "PENDING_CREATE",
                            "PENDING_DELETE", "PENDING_UPDATE", "READY"],
    "protocol": ["HTTP", "HTTPS", "PROMETHEUS", "PROXY", "PROXYV2", "SCTP",
                 "TCP", "TERMINATED_HTTPS", "UDP"],
    "amphora_roles": ["BACKUP", "MASTER", "STANDALONE"],
    "lb_topology": ["ACTIVE_STANDBY", "SINGLE"],
    "algorithm": ["ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP",
                  "SOURCE_IP_PORT"],
    "client_authentication_mode": ["NONE", "OPTIONAL", "MANDATORY"],
}


def cmd_schema(url):
    import sqlalchemy as sa
    from octavia.db import base_models
    from octavia.db import models  # noqa: F401 registers the tables
    engine = sa.create_engine(_url(url))
    base_models.BASE.metadata.create_all(engine)
    with engine.begin() as conn:
        for table, names in LOOKUPS.items():
            for name in names:
                conn.execute(sa.text("INSERT INTO %s (name) VALUES (:n)" % table), {"n": name})
    engine.dispose()


STATUS_TABLES = ("load_balancer", "listener", "pool", "member")


def snapshot(conn):
    """Every row the comparison looks at, as comparable strings."""
    rows = set()
    cur = conn.cursor()
    for table in STATUS_TABLES:
        cur.execute("SELECT id, operating_status FROM %s" % table)
        rows.update("%s %s %s" % (table, r[0], r[1]) for r in cur.fetchall())
    cur.execute("SELECT amphora_id, busy FROM amphora_health")
    rows.update("amphora_health %s busy=%s" % (r[0], str(r[1]).lower()) for r in cur.fetchall())
    cur.execute("SELECT listener_id, amphora_id, bytes_in, bytes_out, active_connections, "
                "total_connections, request_errors FROM listener_statistics")
    rows.update("listener_statistics %s/%s %d %d %d %d %d" % tuple(r) for r in cur.fetchall())
    cur.close()
    return rows


def _trace_conn(url):
    """An autocommit connection outside Octavia's engine, for snapshots."""
    if url.startswith("mysql"):
        import pymysql
        from sqlalchemy.engine import make_url
        u = make_url(url)
        conn = pymysql.connect(host=u.host, port=u.port or 3306, user=u.username,
                               password=u.password or "", database=u.database)
        conn.autocommit(True)
        return conn
    import psycopg2
    conn = psycopg2.connect(url)
    conn.autocommit = True
    return conn


def cmd_apply(url, key, path, trace=None):
    from oslo_config import cfg
    from octavia.common import config  # noqa: F401 registers the options
    CONF = cfg.CONF
    CONF([], project="octavia", default_config_files=[])
    CONF.set_override("connection", _url(url), group="database")
    CONF.set_override("heartbeat_key", key, group="health_manager")
    CONF.set_override("statistics_drivers", ["stats_db"], group="controller_worker")
    CONF.set_override("compute_driver", "compute_noop_driver", group="controller_worker")
    # Octavia's handlers log at WARNING for many of the generated inputs;
    # the suite compares rows, not logs.
    import os
    if os.environ.get("OCTAVIA_GLUE_LOG"):
        logging.basicConfig(level=logging.DEBUG, filename=os.environ["OCTAVIA_GLUE_LOG"])
    else:
        logging.basicConfig(level=logging.CRITICAL)

    from octavia.amphorae.backends.health_daemon import status_message
    from octavia.amphorae.drivers.health import heartbeat_udp

    # update_health loads the compute driver through stevedore for every
    # zombie heartbeat, which scans the entry points each time (half a
    # second); the driver is compute_noop_driver either way, so load it
    # once. Nothing else changes.
    manager = heartbeat_udp.stevedore_driver.DriverManager(
        namespace="octavia.compute.drivers", name="compute_noop_driver",
        invoke_on_load=True)

    class _OneDriver:
        @staticmethod
        def DriverManager(**kwargs):
            assert kwargs.get("name") == "compute_noop_driver", kwargs
            return manager

    heartbeat_udp.stevedore_driver = _OneDriver

    updater = heartbeat_udp.UpdateHealthDb()
    tracer = None
    prev = None
    if trace:
        tracer = _trace_conn(url)
        prev = snapshot(tracer)
        out = open(trace, "w")
    accepted = 0
    with open(path) as f:
        for n, line in enumerate(f):
            line = line.strip()
            if not line:
                continue
            datagram = base64.b64decode(json.loads(line)["b64"])
            try:
                obj = status_message.unwrap_envelope(datagram, key)
                obj["recv_time"] = time.time()
            except Exception:
                obj = None  # dropped, as UDPStatusGetter.check drops it
            if obj is not None:
                accepted += 1
                # The listener runs these in two process pools; in order,
                # one at a time, they give the result of an idle system.
                try:
                    updater.update_health(obj, "127.0.0.1")
                except Exception:
                    # update_health's own handler fails on a message
                    # without "id" (it logs health['id']); the process
                    # pool's Future swallows that, as here.
                    pass
                try:
                    heartbeat_udp.update_stats(obj)
                except Exception:
                    pass  # lost in an uninspected Future in Octavia
            if tracer is not None:
                cur = snapshot(tracer)
                out.write(json.dumps({"packet": n, "accepted": obj is not None,
                                      "id": repr(obj.get("id")) if isinstance(obj, dict) else None,
                                      "removed": sorted(prev - cur),
                                      "added": sorted(cur - prev)}) + "\n")
                prev = cur
    if tracer is not None:
        out.close()
        tracer.close()
    print(json.dumps({"accepted": accepted}))


def _configure(url, key):
    from oslo_config import cfg
    from octavia.common import config  # noqa: F401 registers the options
    CONF = cfg.CONF
    CONF([], project="octavia", default_config_files=[])
    CONF.set_override("connection", _url(url), group="database")
    CONF.set_override("heartbeat_key", key, group="health_manager")
    CONF.set_override("statistics_drivers", ["stats_db"], group="controller_worker")
    CONF.set_override("compute_driver", "compute_noop_driver", group="controller_worker")
    logging.basicConfig(level=logging.CRITICAL)
    return CONF


def cmd_listen(url, key, timeout, interval):
    """Octavia's health manager as a process: its UDP receive path (the
    datagram's envelope opened by unwrap_envelope, then update_health and
    update_stats, one at a time as an idle system runs them) and its
    health_check loop, which claims stale amphorae with Octavia's own
    get_stale_amphora. Only the failover itself is replaced: the flow needs
    Nova, Neutron and the amphora API. It reports each claimed amphora, as
    Octavia's would start failing it over, and leaves the claim (busy) in
    the database, where a shadow sees it.

    Lines on stdout: {"port"} first, then {"applied": n, "accepted": bool}
    per datagram and {"failover": amphora_id} per claim; {"received",
    "accepted", "failovers"} last, once stdin is closed."""
    import socket
    import threading
    CONF = _configure(url, key)
    CONF.set_override("heartbeat_timeout", int(timeout), group="health_manager")
    CONF.set_override("health_check_interval", int(interval), group="health_manager")
    CONF.set_override("failover_threads", 10, group="health_manager")

    from concurrent import futures
    from octavia.amphorae.backends.health_daemon import status_message
    from octavia.amphorae.drivers.health import heartbeat_udp
    from octavia.controller.healthmanager import health_manager
    from octavia.db import repositories as repo

    out_lock = threading.Lock()

    def emit(obj):
        with out_lock:
            sys.stdout.write(json.dumps(obj) + "\n")
            sys.stdout.flush()

    failovers = []

    class _Worker:
        # Octavia's ControllerWorker.failover_amphora, minus the cloud.
        def failover_amphora(self, amphora_id, reraise=False):
            failovers.append(amphora_id)
            emit({"failover": amphora_id})

    # HealthManager.__init__ builds a real ControllerWorker (message queue,
    # task flow); everything else it sets is set here the same way, and
    # health_check runs unchanged.
    hm = health_manager.HealthManager.__new__(health_manager.HealthManager)
    hm.cw = _Worker()
    hm.threads = CONF.health_manager.failover_threads
    hm.executor = futures.ThreadPoolExecutor(max_workers=hm.threads)
    hm.amp_repo = repo.AmphoraRepository()
    hm.amp_health_repo = repo.AmphoraHealthRepository()
    hm.lb_repo = repo.LoadBalancerRepository()
    dead = threading.Event()
    hm.dead = dead

    def checker():
        # Octavia's hm_health_check: wait heartbeat_timeout first, then a
        # health_check every health_check_interval.
        if dead.wait(CONF.health_manager.heartbeat_timeout):
            return
        while not dead.is_set():
            try:
                hm.health_check()
            except Exception as e:  # Octavia logs and carries on
                emit({"health_check_error": repr(e)})
            dead.wait(CONF.health_manager.health_check_interval)

    updater = heartbeat_udp.UpdateHealthDb()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    emit({"port": sock.getsockname()[1]})

    def stdin_closed():
        sys.stdin.read()
        dead.set()

    threading.Thread(target=stdin_closed, daemon=True).start()
    check = threading.Thread(target=checker, daemon=True)
    check.start()
    received = accepted = 0
    while not dead.is_set():
        try:
            datagram, _ = sock.recvfrom(65535)
        except socket.timeout:
            continue
        received += 1
        try:
            obj = status_message.unwrap_envelope(datagram, key)
            obj["recv_time"] = time.time()
        except Exception:
            obj = None  # dropped, as UDPStatusGetter.check drops it
        if obj is not None:
            accepted += 1
            try:
                updater.update_health(obj, "127.0.0.1")
            except Exception:
                pass  # as in cmd_apply
            try:
                heartbeat_udp.update_stats(obj)
            except Exception:
                pass
        emit({"applied": received, "accepted": obj is not None})
    check.join()
    emit({"received": received, "accepted": accepted, "failovers": failovers})


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "seal":
        cmd_seal()
    elif cmd == "open":
        cmd_open()
    elif cmd == "schema":
        cmd_schema(*args)
    elif cmd == "apply":
        cmd_apply(*args)
    elif cmd == "listen":
        cmd_listen(*args)
    else:
        sys.exit("unknown subcommand " + cmd)


if __name__ == "__main__":
    main()
