#!/usr/bin/python3
"""Octavia 11's own health path, timed on the loadgen workload.

  octavia_bench.py URL AMPHORAE SECONDS [LISTENERS POOLS MEMBERS]

URL is postgresql://... or, for MariaDB/MySQL, mysql+pymysql://...; on
MariaDB, whose server is one process, the server's CPU is that of process
$OCTAVIA_BENCH_SERVER_PID (mariadbd: all its threads), on PostgreSQL that
of Octavia's backends.

Seeds AMPHORAE load balancers shaped like loadgen's (one amphora,
LISTENERS listeners, POOLS pools of MEMBERS members each, by default 2, 2
and 5, the same ids), unless the database already holds amphorae (a
second run of make bench-cpu), then for SECONDS
feeds typical V3 heartbeats, amphora after amphora, through Octavia's
unwrap_envelope, UpdateHealthDb.update_health and update_stats, one at a
time in one process, and prints a JSON report. Octavia's listener runs
update_health and update_stats in process pools; one process is what one
core gives, which is what the per-core figure in docs/performance.md
compares with.

Only Octavia (Debian's python3-octavia, test/interop/install-deps.sh) is
called; nothing of it is reimplemented.
"""

import io
import json
import logging
import os
import sys
import time
import warnings

KEY = "bench-key"


def ident(kind, a, b=0, c=0):
    # healthdb/manager/loadgen's id(): the same UUID-shaped ids.
    return "%08x-%04x-4%03x-8%03x-%012x" % (a, kind, b % 0x1000, c % 0x1000, (a << 16) | (b << 8) | c)


def amphora_id(a): return ident(1, a)
def lb_id(a): return ident(2, a)
def listener_id(a, l): return ident(3, a, l)
def pool_id(a, p): return ident(4, a, p)
def member_id(a, p, m): return ident(5, a, p, m)


LISTENERS, POOLS, MEMBERS = 2, 2, 5


def is_mysql(url):
    return url.startswith("mysql")


def connect(url):
    if not is_mysql(url):
        import psycopg2
        return psycopg2.connect(url)
    import pymysql
    from urllib.parse import urlsplit, unquote
    u = urlsplit(url)
    return pymysql.connect(host=u.hostname, port=u.port or 3306, user=unquote(u.username or "root"),
                           password=unquote(u.password or ""), database=u.path.lstrip("/"))


def seed(conn, amphorae, mysql=False):
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM amphora")
    seeded = cur.fetchone()[0] > 0
    conn.commit()
    if seeded:
        return
    tables = {
        "load_balancer": ("id, name, provisioning_status, operating_status, enabled",
                          lambda a: [(lb_id(a), "bench", "ACTIVE", "ONLINE", "t")]),
        "amphora": ("id, load_balancer_id, status, compute_id, cert_busy, role",
                    lambda a: [(amphora_id(a), lb_id(a), "ALLOCATED", amphora_id(a), "f", "STANDALONE")]),
        "pool": ("id, load_balancer_id, protocol, lb_algorithm, operating_status, enabled, provisioning_status",
                 lambda a: [(pool_id(a, p), lb_id(a), "HTTP", "ROUND_ROBIN", "ONLINE", "t", "ACTIVE")
                            for p in range(POOLS)]),
        "member": ("id, pool_id, ip_address, protocol_port, operating_status, enabled, provisioning_status, backup",
                   lambda a: [(member_id(a, p, m), pool_id(a, p), "192.0.2.1", str(1024 + m), "ONLINE", "t", "ACTIVE", "f")
                              for p in range(POOLS) for m in range(MEMBERS)]),
        "listener": ("id, load_balancer_id, protocol, protocol_port, provisioning_status, operating_status, enabled, default_pool_id",
                     lambda a: [(listener_id(a, l), lb_id(a), "HTTP", str(80 + l), "ACTIVE", "ONLINE", "t",
                                 pool_id(a, l) if l < POOLS else "\\N") for l in range(LISTENERS)]),
    }
    if mysql:
        # Multi-row INSERTs (pymysql's executemany), booleans as 1/0.
        value = {"t": 1, "f": 0, "\\N": None}
        for table, (cols, rows) in tables.items():
            q = "INSERT INTO %s (%s) VALUES (%s)" % (table, cols, ", ".join(["%s"] * len(cols.split(","))))
            batch = []
            for a in range(amphorae):
                batch.extend(tuple(value.get(v, v) for v in r) for r in rows(a))
                if len(batch) >= 2000:
                    cur.executemany(q, batch)
                    batch = []
            if batch:
                cur.executemany(q, batch)
            conn.commit()
        cur.execute("ANALYZE TABLE " + ", ".join(tables))
        cur.fetchall()
        conn.commit()
        return
    for table, (cols, rows) in tables.items():
        buf = io.StringIO()
        for a in range(amphorae):
            for r in rows(a):
                buf.write("\t".join(r) + "\n")
        buf.seek(0)
        cur.copy_expert("COPY %s (%s) FROM STDIN" % (table, cols), buf)
    conn.commit()
    cur.execute("ANALYZE")
    conn.commit()


def backend_cpu(conn, server_pid=None):
    """utime+stime, in seconds, of every backend of this database (the
    server is on this machine), by pid; or of the whole server process
    server_pid (MariaDB)."""
    if server_pid:
        pids = [server_pid]
    else:
        cur = conn.cursor()
        cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        pids = [pid for (pid,) in cur.fetchall()]
        cur.close()
    out = {}
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / 100.0
        except OSError:
            pass
    return out


def message(a, seq):
    # loadgen's steady V3 heartbeat.
    listeners, pools = {}, {}
    for l in range(LISTENERS):
        listeners[listener_id(a, l)] = {"status": "OPEN", "stats": {
            "tx": 1500, "rx": 3000, "conns": 7, "totconns": 12, "ereq": 0}}
        if l < POOLS:
            pools[pool_id(a, l) + ":" + listener_id(a, l)] = {
                "status": "UP", "members": {member_id(a, l, m): "UP" for m in range(MEMBERS)}}
    return {"id": amphora_id(a), "seq": seq, "ver": 3, "listeners": listeners, "pools": pools}


def main():
    global LISTENERS, POOLS, MEMBERS
    url, amphorae, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    if len(sys.argv) > 4:
        LISTENERS, POOLS, MEMBERS = (int(v) for v in sys.argv[4:7])
    mysql = is_mysql(url)
    server_pid = int(os.environ["OCTAVIA_BENCH_SERVER_PID"]) if mysql else None
    conn = connect(url)
    seed(conn, amphorae, mysql)
    if mysql:
        conn.autocommit(True)
    else:
        conn.autocommit = True

    from oslo_config import cfg
    from octavia.common import config  # noqa: F401 registers the options
    CONF = cfg.CONF
    CONF([], project="octavia", default_config_files=[])
    dialect = url if mysql else "postgresql+psycopg2://" + url.split("://", 1)[1]
    CONF.set_override("connection", dialect, group="database")
    CONF.set_override("heartbeat_key", KEY, group="health_manager")
    CONF.set_override("statistics_drivers", ["stats_db"], group="controller_worker")
    CONF.set_override("compute_driver", "compute_noop_driver", group="controller_worker")
    logging.basicConfig(level=logging.CRITICAL)
    warnings.simplefilter("ignore")  # SQLAlchemy's about Octavia's models

    from octavia.amphorae.backends.health_daemon import status_message
    from octavia.amphorae.drivers.health import heartbeat_udp

    datagrams = [status_message.wrap_envelope(message(a, 1), KEY) for a in range(amphorae)]
    updater = heartbeat_udp.UpdateHealthDb()
    spent = {"unwrap": 0.0, "update_health": 0.0, "update_stats": 0.0}
    # One heartbeat first, so that Octavia's connections exist when the
    # backends' CPU time is first read.
    updater.update_health(dict(message(0, 0), recv_time=time.time()), "127.0.0.1")
    pg0 = backend_cpu(conn, server_pid)
    done, start = 0, time.monotonic()
    cpu0 = time.process_time()
    while time.monotonic() - start < seconds:
        t0 = time.monotonic()
        obj = status_message.unwrap_envelope(datagrams[done % amphorae], KEY)
        obj["recv_time"] = time.time()
        t1 = time.monotonic()
        updater.update_health(obj, "127.0.0.1")
        t2 = time.monotonic()
        heartbeat_udp.update_stats(obj)
        t3 = time.monotonic()
        spent["unwrap"] += t1 - t0
        spent["update_health"] += t2 - t1
        spent["update_stats"] += t3 - t2
        done += 1
    elapsed = time.monotonic() - start
    cpu = time.process_time() - cpu0
    pg1 = backend_cpu(conn, server_pid)
    pg = sum(t - pg0.get(pid, 0.0) for pid, t in pg1.items())
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM amphora_health")
    health_rows = cur.fetchone()[0]
    cur.execute("SELECT count(*) FROM listener_statistics")
    stats_rows = cur.fetchone()[0]
    db = "mariadb" if mysql else "pg"
    print(json.dumps({
        "amphorae": amphorae, "heartbeats": done, "seconds": round(elapsed, 2),
        "heartbeats_per_s": round(done / elapsed, 1),
        "amphora_health_rows": health_rows, "listener_statistics_rows": stats_rows,
        "python_cpu_s": round(cpu, 3), db + "_cpu_s": round(pg, 3),
        "python_cpu_us_per_heartbeat": round(cpu / done * 1e6),
        db + "_cpu_us_per_heartbeat": round(pg / done * 1e6),
        "ms_per_heartbeat": {k: round(v / done * 1e3, 3) for k, v in spent.items()},
    }))


if __name__ == "__main__":
    main()
