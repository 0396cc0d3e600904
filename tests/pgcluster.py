#!/usr/bin/env python3
"""A private PostgreSQL 15 cluster for the tests, never the system's.

    python3 tests/pgcluster.py start DIR   # prints a libpq conninfo
    python3 tests/pgcluster.py stop DIR    # stops it (DIR stays; rm it yourself)
    python3 tests/pgcluster.py down DIR    # stops the server, keeps the cluster
    python3 tests/pgcluster.py up DIR      # starts it again, same port

or, as a module: cluster = pgcluster.start(dir); cluster.psql(sql);
cluster.create_database(name); cluster.stop().

initdb -D DIR/data (trust, superuser fcgi_sse, UTF-8, C locale, no fsync
unless PGCLUSTER_DURABLE=1 at start: benchmarks),
then a server on a free loopback port (never 5432: the Debian package's own
cluster may be there) with its socket in DIR, and a database fcgi_sse.
PostgreSQL refuses to run as root, so as root the cluster belongs to the
`postgres` user (or nobody) and its commands run through runuser; DIR is
given to that user and its parents must be traversable (a directory made
with mkdtemp right under /tmp is). Any failure on the way stops what was
started: no server is left running.
"""
import os
import pwd
import shutil
import socket
import subprocess
import sys

BIN = "/usr/lib/postgresql/15/bin"
SUPERUSER = "fcgi_sse"
DATABASE = "fcgi_sse"


class ClusterError(Exception):
    pass


def _owner():
    """The unprivileged user the cluster runs as, when we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ClusterError("running as root and neither a postgres nor a nobody user exists")


def _run(argv, owner, check=True, timeout=120):
    if owner is not None:
        argv = ["runuser", "-u", owner.pw_name, "--"] + argv
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    if check and p.returncode != 0:
        raise ClusterError("%s failed (%d): %s" % (" ".join(argv), p.returncode,
                                                   p.stdout.decode(errors="replace").strip()))
    return p


def _free_port():
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class Cluster:
    def __init__(self, directory, port):
        self.dir = os.path.abspath(directory)
        self.port = port
        self.owner = _owner()

    @property
    def data(self):
        return os.path.join(self.dir, "data")

    def conninfo(self, dbname=DATABASE):
        return "host=127.0.0.1 port=%d user=%s dbname=%s" % (self.port, SUPERUSER, dbname)

    def _pg_ctl(self, *args, check=True):
        return _run([os.path.join(BIN, "pg_ctl"), "-D", self.data] + list(args), self.owner,
                    check=check)

    def _server_start(self):
        opts = ("-p %d -k %s -c listen_addresses=127.0.0.1"
                # every stack of a run connects at once: workers x processes
                " -c max_connections=300" % (self.port, self.dir))
        # tests need no durability; benchmarks (PGCLUSTER_DURABLE=1 at
        # start) measure PostgreSQL as deployed: fsync and synchronous
        # commits on, PostgreSQL's defaults
        if not os.path.exists(os.path.join(self.dir, "durable")):
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._pg_ctl("start", "-w", "-t", "60", "-l", os.path.join(self.dir, "server.log"),
                     "-o", opts)

    def psql(self, sql, dbname=DATABASE):
        """Runs sql (one or more statements, our own text) and returns the
        output: unaligned, tuples only."""
        p = subprocess.run([os.path.join(BIN, "psql"), "-X", "-q", "-A", "-t", "-v",
                            "ON_ERROR_STOP=1", "-d", self.conninfo(dbname), "-c", sql],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        if p.returncode != 0:
            raise ClusterError("psql: %s" % p.stderr.decode(errors="replace").strip())
        return p.stdout.decode()

    def create_database(self, name):
        """A fresh database (name: our own [a-z0-9_]); returns its conninfo."""
        if not name.replace("_", "").isalnum():
            raise ClusterError("bad database name %r" % name)
        self.psql("CREATE DATABASE %s" % name)
        return self.conninfo(name)

    def down(self):
        self._pg_ctl("stop", "-m", "fast", "-w")

    def up(self):
        self._server_start()

    def stop(self):
        """Stops the server (fast); nothing when it is not running."""
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self._pg_ctl("stop", "-m", "fast", "-w", check=False)


def _port_file(directory):
    return os.path.join(directory, "port")


def start(directory):
    """initdb, start on a free port, create the database; a Cluster."""
    directory = os.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    owner = _owner()
    if owner is not None:
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    cluster = Cluster(directory, 0)
    if os.environ.get("PGCLUSTER_DURABLE") == "1":
        open(os.path.join(directory, "durable"), "w").close()
    started = False
    try:
        _run([os.path.join(BIN, "initdb"), "-D", cluster.data, "-A", "trust", "-U", SUPERUSER,
              "-E", "UTF8", "--locale=C", "--no-sync"], owner)
        for attempt in range(5):
            cluster.port = _free_port()
            try:
                cluster._server_start()
                started = True
                break
            except ClusterError:
                # another process took the port between probe and bind
                cluster.stop()
                if attempt == 4:
                    raise
        cluster.psql("CREATE DATABASE %s" % DATABASE, dbname="postgres")
        with open(_port_file(directory), "w") as f:
            f.write("%d\n" % cluster.port)
    except BaseException:
        if started:
            cluster.stop()
        raise
    return cluster


def attach(directory):
    """The cluster started in directory (by start)."""
    with open(_port_file(directory)) as f:
        return Cluster(directory, int(f.read()))


def stop(directory):
    if os.path.exists(_port_file(directory)):
        attach(directory).stop()


def main(argv):
    if len(argv) != 3 or argv[1] not in ("start", "stop", "down", "up"):
        print("usage: pgcluster.py start|stop|down|up DIR", file=sys.stderr)
        return 2
    cmd, directory = argv[1], argv[2]
    try:
        if cmd == "start":
            print(start(directory).conninfo())
        elif cmd == "stop":
            stop(directory)
        elif cmd == "down":
            attach(directory).down()
        else:
            attach(directory).up()
    except (ClusterError, OSError, subprocess.SubprocessError) as e:
        print("pgcluster: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
