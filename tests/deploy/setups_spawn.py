"""fcgi_sse under process supervisors, started from deploy/spawn-fcgi/ with
several children on one FastCGI socket, behind lighttpd in socket mode
(deploy/lighttpd/fcgi_sse.conf through the harness's lighttpd.conf). Same
interface as the setups of setups.py; SPAWN lists them.

The files are run as written except for one rewriting (rewrite()), of
these production paths and names only:

    /usr/local/bin/fcgi_sse     -> the binary under test
    /etc/fcgi_sse/config.json   -> the test's config (setups.config())
    /run/fcgi_sse               -> the test's run dir (the socket is then
                                   RUN_DIR/fcgi_sse.sock, as lighttpd.conf
                                   expects)
    /var/log/supervisor, /var/log/fcgi_sse -> RUN_DIR/log
    the user fcgi-sse           -> www-data (an unprivileged user that
                                   exists here), so the children really run
                                   unprivileged, on a socket of mode 0660

The store is RUN_DIR/state/fcgi_sse.db, owned by that user (the stand-in
for /var/lib/fcgi_sse).

Each start() also checks: the number of children the files ask for, all
the binary under test, running as that user, with fd 0 the one listening
socket bound at the socket's path; then (supervisord, runit) crash
recovery: one child is killed with SIGKILL and the supervisor must start a
new one on the same socket while the other keeps its pid. Each restart() is
the supervisor's own graceful restart of every child, and checks that every
old child exited 0 (a graceful stop, after SIGTERM) and that new processes
took their place."""

import grp
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import ROOT, Stack, admin, request, stop_process, wait_until  # noqa: E402

import setups  # noqa: E402
from clients import H1  # noqa: E402

SPAWN_DIR = os.path.join(ROOT, "deploy", "spawn-fcgi")
TEST_USER = "www-data"  # stands in for fcgi-sse


def _env():
    return {k: v for k, v in os.environ.items() if not k.startswith("FCGI_SSE_")}


def rewrite(text, mapping):
    """The documented rewriting: each production path (a key) replaced by
    the test's, the user fcgi-sse by TEST_USER; no key may be left."""
    for prod, test in mapping.items():
        text = text.replace(prod, test)
    text = re.sub(r"\bfcgi-sse\b", TEST_USER, text)
    for prod in mapping:
        assert prod not in text, prod
    return text


def listening_unix_inodes():
    """{inode: path} of the listening unix sockets (/proc/net/unix)."""
    out = {}
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            parts = line.split()
            # Num RefCount Protocol Flags Type St Inode [Path]
            if int(parts[3], 16) & 0x10000 and len(parts) >= 8:  # __SO_ACCEPTCON
                out[parts[6]] = parts[7]
    return out


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


class _Spawn:
    """What the supervisors' setups share: the run dir (a harness Stack,
    whose lighttpd is started with backend=False), the config, the checks
    of the children, lighttpd, log() and cleanup()."""
    client_class = H1
    slug = "spawn"

    def __init__(self, binary, redis_port):
        self.binary = os.path.abspath(binary)
        self.stack = Stack(self.binary, setups.config(redis_port), name="deploy-" + self.slug)
        d = self.dir = self.stack.dir
        os.chmod(d, 0o755)  # the children (TEST_USER) read the config in it
        self.uid = pwd.getpwnam(TEST_USER).pw_uid
        self.gid = grp.getgrnam(TEST_USER).gr_gid
        self.state = os.path.join(d, "state")
        os.makedirs(self.state)
        os.chown(self.state, self.uid, self.gid)
        self.stack.config["store"]["path"] = os.path.join(self.state, "fcgi_sse.db")
        with open(self.stack.config_path, "w") as f:
            json.dump(self.stack.config, f)
        os.chmod(self.stack.config_path, 0o644)
        self.logdir = os.path.join(d, "log")
        os.makedirs(self.logdir)
        self.mapping = {
            "/usr/local/bin/fcgi_sse": self.binary,
            "/etc/fcgi_sse/config.json": self.stack.config_path,
            "/run/fcgi_sse": d,
            "/var/log/supervisor": self.logdir,
            "/var/log/fcgi_sse": self.logdir,
        }
        self.socket_path = self.stack.socket_path
        self.children = None
        self.events = []  # what the checks saw, for log()

    def copy(self, rel, dest):
        """deploy/spawn-fcgi/REL, rewritten, to DEST (mode kept)."""
        src = os.path.join(SPAWN_DIR, rel)
        with open(src) as f:
            text = rewrite(f.read(), self.mapping)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "w") as f:
            f.write(text)
        shutil.copymode(src, dest)
        return dest

    def admin(self, *args, stdin=None):
        return admin(self.binary, self.stack.config_path, *args, stdin=stdin)

    # -- what each supervisor provides --
    def pids(self):
        """{child name: pid} of the children the supervisor reports running."""
        raise NotImplementedError

    # -- shared checks --
    def wait_children(self, old=(), timeout=20, keep=None):
        """Waits until the supervisor reports self.children children, each
        the binary under test running as TEST_USER with fd 0 the listening
        socket at self.socket_path, none of them in `old`. Returns the pids."""
        want_exe = os.path.realpath(self.binary)
        state = {}

        def ready():
            try:
                got = self.pids()
            except (OSError, subprocess.SubprocessError, ValueError):
                return False
            state["pids"] = got
            if len(got) != self.children or set(got.values()) & set(old):
                return False
            try:
                listening = listening_unix_inodes()
                inodes = set()
                for pid in got.values():
                    if os.path.realpath("/proc/%d/exe" % pid) != want_exe:
                        return False
                    if os.stat("/proc/%d" % pid).st_uid != self.uid:
                        return False
                    link = os.readlink("/proc/%d/fd/0" % pid)
                    m = re.match(r"socket:\[(\d+)\]$", link)
                    if not m or listening.get(m.group(1)) != self.socket_path:
                        return False
                    inodes.add(m.group(1))
            except OSError:
                return False
            return len(inodes) == 1

        if not wait_until(ready, timeout, 0.1):
            raise AssertionError("want %d children of %s as %s on one socket %s, not in %r; have %r" % (
                self.children, self.binary, TEST_USER, self.socket_path, sorted(old), state.get("pids")))
        # as the files make it: mode 0660, the web server's group (www-data)
        st = os.stat(self.socket_path)
        check(stat.S_ISSOCK(st.st_mode) and st.st_mode & 0o777 == 0o660 and st.st_gid == self.gid,
              "socket %s: mode %o gid %d, want 0660 and group %s" % (
                  self.socket_path, st.st_mode & 0o7777, st.st_gid, TEST_USER))
        return state["pids"]

    def health(self):
        def ok():
            try:
                return request(self.port, "GET", "/api/v2/health", timeout=5).status == 200
            except OSError:
                return False
        check(wait_until(ok, 10, 0.1), "no 200 from /api/v2/health through lighttpd")

    def start_lighttpd(self):
        self.stack.start(backend=False)
        self.port = self.stack.port

    def crash_check(self):
        """SIGKILL to one child: the supervisor starts a new one on the same
        socket, the other children keep running untouched."""
        before = self.pids()
        victim = sorted(before)[0]
        t0 = time.monotonic()
        os.kill(before[victim], signal.SIGKILL)
        after = self.wait_children(old=[before[victim]], timeout=20)
        for name, pid in before.items():
            if name != victim:
                check(after.get(name) == pid, "child %s was disturbed by the crash of %s: %r -> %r"
                      % (name, victim, before, after))
        self.events.append("crash: %s (pid %d) killed, replaced by pid %d in %.1f s" % (
            victim, before[victim], after[victim], time.monotonic() - t0))
        self.health()

    def own_store(self):
        """The admin command (prepare(), as root) made the store: hand it
        over to the children's user, as to fcgi-sse in /var/lib/fcgi_sse."""
        for name in os.listdir(self.state):
            os.chown(os.path.join(self.state, name), self.uid, self.gid)

    def read(self, path, tail=3000):
        try:
            with open(path, errors="replace") as f:
                return f.read()[-tail:]
        except OSError:
            return ""

    def log(self):
        parts = ["checks: " + "; ".join(self.events)]
        for name in sorted(os.listdir(self.logdir)) if os.path.isdir(self.logdir) else []:
            path = os.path.join(self.logdir, name)
            if os.path.isfile(path):
                parts.append("-- %s --\n%s" % (name, self.read(path)))
        parts.append("-- lighttpd.error.log --\n" + self.stack.read("lighttpd.error.log")[-2000:])
        return "\n".join(parts)

    def reap(self):
        """Last resort after a failed stop: SIGKILL to every process left
        that this setup started (named by its run dir in its command line
        or working directory), by pid."""
        me = os.getpid()
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == me:
                continue
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as f:
                    cmd = f.read().decode(errors="replace")
                cwd = os.readlink("/proc/%s/cwd" % entry)
            except OSError:
                continue
            if self.dir in cmd or cwd == self.dir or cwd.startswith(self.dir + "/"):
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except OSError:
                    pass

    def stop_supervisor(self):
        raise NotImplementedError

    def cleanup(self):
        try:
            self.stop_supervisor()
        except Exception as e:  # noqa: BLE001 (cleanup must not raise)
            print("cleanup of %s: %s" % (self.name, e), file=sys.stderr)
        self.reap()
        self.stack.cleanup()


class Supervisord(_Spawn):
    """deploy/spawn-fcgi/supervisord.conf as /etc/supervisor/conf.d/ would
    hold it, included by a minimal supervisord.conf of the test's own
    (control socket, logs, pid file in the run dir). supervisord creates the
    socket and passes it on fd 0 to numprocs children. restart():
    `supervisorctl restart 'fcgi_sse:*'`. start() also kills a child with
    SIGKILL (autorestart)."""
    name = "spawn-fcgi supervisord"
    slug = "supervisord"

    def __init__(self, binary, redis_port):
        super().__init__(binary, redis_port)
        d = self.dir
        snippet = self.copy("supervisord.conf", os.path.join(d, "conf.d", "fcgi_sse.conf"))
        with open(snippet) as f:
            text = f.read()
        self.children = int(re.search(r"^numprocs=(\d+)$", text, re.M).group(1))
        self.conf = os.path.join(d, "supervisord.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "[unix_http_server]", "file=%s/supervisor.sock" % d, "chmod=0700", "",
                "[supervisord]", "logfile=%s/supervisord.log" % d, "pidfile=%s/supervisord.pid" % d,
                "childlogdir=%s" % self.logdir, "nodaemon=true", "user=root", "minfds=16384", "",
                "[rpcinterface:supervisor]",
                "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
                "[supervisorctl]", "serverurl=unix://%s/supervisor.sock" % d, "",
                "[include]", "files = %s/conf.d/*.conf" % d, ""]))
        self.proc = None

    def ctl(self, *args, timeout=60):
        p = subprocess.run(["supervisorctl", "-c", self.conf] + list(args), capture_output=True,
                           text=True, timeout=timeout)
        return p.returncode, p.stdout + p.stderr

    def pids(self):
        _, out = self.ctl("status", timeout=10)
        got = {}
        for line in out.splitlines():
            m = re.match(r"^fcgi_sse:(\S+)\s+RUNNING\s+pid (\d+),", line)
            if m:
                got[m.group(1)] = int(m.group(2))
        return got

    def start(self):
        self.own_store()
        self.proc = subprocess.Popen(["supervisord", "-c", self.conf], cwd=self.dir, env=_env(),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "supervisord.stderr"), "wb"))
        self.wait_children()
        self.start_lighttpd()
        self.health()
        self.crash_check()
        return self

    def restart(self):
        old = self.pids()
        logged = len(self.read(os.path.join(self.dir, "supervisord.log"), tail=10 ** 9))
        rc, out = self.ctl("restart", "fcgi_sse:*")
        check(rc == 0, "supervisorctl restart: %d %s" % (rc, out))
        self.wait_children(old=old.values())
        text = self.read(os.path.join(self.dir, "supervisord.log"), tail=10 ** 9)[logged:]
        for name in old:
            check("stopped: %s (exit status 0)" % name in text,
                  "%s did not stop gracefully (exit 0): %s" % (name, text[-1500:]))
        self.events.append("restart: %s" % " ".join(out.split()))

    def log(self):
        return (super().log() + "\n-- supervisord.log --\n" +
                self.read(os.path.join(self.dir, "supervisord.log"), 2500))

    def stop_supervisor(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.ctl("shutdown", timeout=60)
        stop_process(self.proc, 60)


class Runit(_Spawn):
    """deploy/spawn-fcgi/runit/fcgi_sse as /etc/sv/fcgi_sse, enabled by a
    symlink in a service directory of the test's own, which a runsvdir of
    the test's own supervises (as /etc/service and runit's runsvdir do).
    The service's spawn-fcgi -n creates the socket and execs runsvdir on
    CHILDREN_DIR with it on fd 0; one runsv per child. restart(): `sv
    restart` of the service (its control/t stops every child gracefully,
    then run starts all anew on a new socket). start() also kills a child
    with SIGKILL (its runsv restarts it)."""
    name = "spawn-fcgi runit"
    slug = "runit"

    def __init__(self, binary, redis_port):
        super().__init__(binary, redis_port)
        d = self.dir
        self.sv = os.path.join(d, "sv", "fcgi_sse")
        src = os.path.join(SPAWN_DIR, "runit", "fcgi_sse")
        for top, _, files in os.walk(src):
            for name in files:
                rel = os.path.relpath(os.path.join(top, name), SPAWN_DIR)
                self.copy(rel, os.path.join(self.sv, os.path.relpath(os.path.join(top, name), src)))
        with open(os.path.join(self.sv, "conf")) as f:
            conf = f.read()
        self.children = int(re.search(r"^CHILDREN=(\d+)$", conf, re.M).group(1))
        self.children_dir = re.search(r"^CHILDREN_DIR=(\S+)$", conf, re.M).group(1)
        self.stop_wait = int(re.search(r"^STOP_WAIT=(\d+)$", conf, re.M).group(1))
        self.service_dir = os.path.join(d, "service")
        os.makedirs(self.service_dir)
        os.symlink(self.sv, os.path.join(self.service_dir, "fcgi_sse"))
        self.proc = None

    def sv_cmd(self, *args, timeout=90):
        p = subprocess.run(["sv"] + list(args), capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout + p.stderr

    def pids(self):
        dirs = sorted(os.path.join(self.children_dir, n) for n in os.listdir(self.children_dir))
        _, out = self.sv_cmd("status", *dirs, timeout=10)
        got = {}
        for line in out.splitlines():
            m = re.match(r"^run: (\S+): \(pid (\d+)\)", line)
            if m:
                got[os.path.basename(m.group(1))] = int(m.group(2))
        return got

    def start(self):
        self.own_store()
        self.proc = subprocess.Popen(["runsvdir", "-P", self.service_dir], cwd=self.dir, env=_env(),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "runsvdir.stderr"), "wb"))
        self.wait_children()
        self.start_lighttpd()
        self.health()
        self.crash_check()
        check(wait_until(lambda: "exit status -1, signal 9" in self.current(), 5),
              "child/finish did not log the SIGKILL: %s" % self.current()[-1500:])
        return self

    def current(self):
        return self.read(os.path.join(self.logdir, "current"), tail=10 ** 9)

    def restart(self):
        old = self.pids()
        logged = len(self.current())
        rc, out = self.sv_cmd("-w", str(self.stop_wait + 10), "restart", self.sv)
        check(rc == 0, "sv restart: %d %s" % (rc, out))
        self.wait_children(old=old.values())
        # child/finish logs each old child's exit; svlogd may lag a moment
        want = ["fcgi_sse child %s: exit status 0, signal 0" % n for n in old]
        got = lambda: self.current()[logged:]  # noqa: E731
        check(wait_until(lambda: all(w in got() for w in want), 5),
              "not every child stopped gracefully (exit 0): %s" % got()[-1500:])
        self.events.append("restart: %s" % out.strip())

    def stop_supervisor(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            # graceful stop through control/t, then runsv and its log's exit
            # graceful stop through control/t; then SIGHUP: runsvdir sends
            # SIGTERM to its runsv (which exits, its service being down,
            # and so ends svlogd) and exits
            self.sv_cmd("-w", str(self.stop_wait + 10), "down", self.sv)
            self.proc.send_signal(signal.SIGHUP)
        stop_process(self.proc, 30)


def parse_unit(path):
    """A systemd unit file: {section: {key: [values]}} (comments, blank
    lines and continuation lines as systemd reads them)."""
    sections, cur, pending = {}, None, ""
    with open(path) as f:
        for raw in f.read().splitlines():
            line = raw.strip()
            if not pending and (not line or line[0] in "#;"):
                continue
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            line, pending = pending + line, ""
            if line.startswith("[") and line.endswith("]"):
                cur = sections.setdefault(line[1:-1], {})
                continue
            k, sep, v = line.partition("=")
            check(sep and cur is not None, "%s: cannot read %r" % (path, raw))
            cur.setdefault(k.strip(), []).append(v.strip())
    return sections


def unit_value(unit, section, key, default=None):
    vals = unit.get(section, {}).get(key)
    return vals[-1] if vals else default


def unit_seconds(text):
    m = re.match(r"^(\d+)\s*(s|sec|min|ms)?$", text)
    check(m, "time span %r" % text)
    n, u = int(m.group(1)), m.group(2) or "s"
    return n * {"s": 1, "sec": 1, "min": 60, "ms": 0.001}[u]


class SystemdUnits(_Spawn):
    """deploy/spawn-fcgi/fcgi_sse.socket, fcgi_sse@.service and
    fcgi_sse.target: no systemd runs here (a container), so (1) the three
    files are checked with `systemd-analyze verify` (the binary path must
    exist: the rewritten copies), which must print nothing; (2) systemd's
    part is done from the parsed files: the socket made as [Socket] says
    (ListenStream, SocketUser/Group, SocketMode, DirectoryMode, Backlog;
    Accept=no), held for the whole test like systemd holds it; for each
    instance the target Wants=, the template's ExecStartPre= and then its
    ExecStart= run exactly as written (%i expanded, User=/Group= and UMask=
    applied, the environment systemd gives: PATH only), the socket on fd 0
    (StandardInput=socket) and stdout/stderr to a file per instance (the
    journal). restart(): `systemctl restart fcgi_sse.target` as it acts
    through PartOf=: KillSignal= to every child at once, each must exit 0
    within TimeoutStopSec=, then new children on the same socket. No crash
    check: Restart= is systemd's own, and emulating it would test only the
    emulation."""
    name = "spawn-fcgi systemd units"
    slug = "systemd"

    def __init__(self, binary, redis_port):
        super().__init__(binary, redis_port)
        units = self.units = os.path.join(self.dir, "units")
        for name in ("fcgi_sse.socket", "fcgi_sse@.service", "fcgi_sse.target"):
            self.copy(name, os.path.join(units, name))
        self.socket_unit = parse_unit(os.path.join(units, "fcgi_sse.socket"))
        self.template = parse_unit(os.path.join(units, "fcgi_sse@.service"))
        self.target = parse_unit(os.path.join(units, "fcgi_sse.target"))
        wants = " ".join(self.target["Unit"].get("Wants", [])).split()
        self.instances = [re.match(r"^fcgi_sse@(.+)\.service$", w).group(1) for w in wants]
        self.children = len(self.instances)
        self.sock = None
        self.procs = {}

    def verify(self):
        files = [os.path.join(self.units, n) for n in ("fcgi_sse.socket", "fcgi_sse@.service",
                                                       "fcgi_sse.target")]
        p = subprocess.run(["systemd-analyze", "verify"] + files, capture_output=True, text=True,
                           timeout=60)
        check(p.returncode == 0 and not (p.stdout + p.stderr).strip(),
              "systemd-analyze verify: %d %s%s" % (p.returncode, p.stdout, p.stderr))
        self.events.append("systemd-analyze verify: clean")

    def make_socket(self):
        s = self.socket_unit["Socket"]
        check(unit_value(self.socket_unit, "Socket", "Accept", "no") == "no", "Accept=no expected")
        check(len(s["ListenStream"]) == 1, "one ListenStream expected")
        path = s["ListenStream"][0]
        check(path == self.socket_path, "ListenStream=%s, lighttpd connects to %s" % (path, self.socket_path))
        dmode = int(unit_value(self.socket_unit, "Socket", "DirectoryMode", "0755"), 8)
        os.makedirs(os.path.dirname(path), mode=dmode, exist_ok=True)
        if os.path.exists(path):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        os.chmod(path, int(unit_value(self.socket_unit, "Socket", "SocketMode", "0666"), 8))
        user = unit_value(self.socket_unit, "Socket", "SocketUser")
        group = unit_value(self.socket_unit, "Socket", "SocketGroup")
        os.chown(path, pwd.getpwnam(user).pw_uid if user else 0, grp.getgrnam(group).gr_gid if group else 0)
        sock.listen(int(unit_value(self.socket_unit, "Socket", "Backlog", "4096")))
        # NonBlocking=no (the default): systemd hands the socket over blocking
        sock.setblocking(True)
        self.sock = sock
        st = os.stat(path)
        self.events.append("socket %s mode %o uid %d gid %d" % (path, st.st_mode & 0o7777, st.st_uid, st.st_gid))

    def command(self, key, instance):
        """A command line of the template, %i expanded, as systemd splits it."""
        line = unit_value(self.template, "Service", key)
        check(line and line[0] not in "-@:+!", "%s=%r: no prefixes expected" % (key, line))
        check("$" not in line, "%s: no variables expected" % key)
        line = line.replace("%i", instance).replace("%I", instance)
        check("%" not in line.replace("%%", ""), "%s: unexpected specifier in %r" % (key, line))
        return shlex.split(line.replace("%%", "%"))

    def spawn(self, instance):
        svc = self.template["Service"]
        check(unit_value(self.template, "Service", "StandardInput") == "socket", "StandardInput=socket expected")
        check("fcgi_sse.socket" in " ".join(svc.get("Sockets", [])).split(), "Sockets=fcgi_sse.socket expected")
        self.exec_unit(instance, self.sock.fileno(), "journal-fcgi_sse@%s" % instance)

    def exec_unit(self, instance, stdin, journal_name):
        """ExecStartPre= (must exit 0), then ExecStart= started, as the
        unit says: User=, Group=, UMask=, systemd's environment (PATH only),
        stdin as given, stdout and stderr to a journal file."""
        svc = self.template["Service"]
        user = unit_value(self.template, "Service", "User")
        group = unit_value(self.template, "Service", "Group")
        uid = pwd.getpwnam(user).pw_uid
        gid = grp.getgrnam(group).gr_gid if group else pwd.getpwnam(user).pw_gid
        umask = int(unit_value(self.template, "Service", "UMask", "0022"), 8)

        def drop():
            os.umask(umask)
            os.setgid(gid)
            os.initgroups(user, gid)
            os.setuid(uid)

        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "USER": user, "LOGNAME": user}
        env.update({k: v for k, v in os.environ.items() if k in ("ASAN_OPTIONS", "UBSAN_OPTIONS")})
        journal = open(os.path.join(self.logdir, journal_name), "ab")
        for argv in ([self.command("ExecStartPre", instance)] if "ExecStartPre" in svc else []):
            p = subprocess.run(argv, stdin=stdin, stdout=journal, stderr=journal, env=env,
                               preexec_fn=drop, cwd="/", timeout=30)
            check(p.returncode == 0, "ExecStartPre of %s: exit %d" % (journal_name, p.returncode))
        self.procs[instance] = subprocess.Popen(self.command("ExecStart", instance), stdin=stdin,
                                                stdout=journal, stderr=journal, env=env, preexec_fn=drop,
                                                cwd="/")
        journal.close()

    def pids(self):
        return {i: p.pid for i, p in self.procs.items() if p.poll() is None}

    def start(self):
        self.verify()
        self.own_store()
        self.make_socket()
        for i in self.instances:
            self.spawn(i)
        self.wait_children()
        self.start_lighttpd()
        self.health()
        return self

    def stop_children(self):
        sig = getattr(signal, unit_value(self.template, "Service", "KillSignal", "SIGTERM"))
        timeout = unit_seconds(unit_value(self.template, "Service", "TimeoutStopSec", "90"))
        procs = dict(self.procs)
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(sig)
        status = {}
        for i, p in procs.items():
            try:
                status[i] = p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()  # systemd's SIGKILL after TimeoutStopSec=
                status[i] = "killed after %s s" % timeout
                p.wait()
        return status

    def restart(self):
        old = self.pids()
        status = self.stop_children()
        check(all(s == 0 for s in status.values()), "children did not stop gracefully (exit 0): %r" % status)
        for i in self.instances:
            self.spawn(i)
        self.wait_children(old=old.values())
        self.events.append("restart: exit statuses %r" % status)

    def stop_supervisor(self):
        self.stop_children()
        if self.sock is not None:
            self.sock.close()
            if unit_value(self.socket_unit, "Socket", "RemoveOnStop", "no") == "yes" and \
                    os.path.exists(self.socket_path):
                os.unlink(self.socket_path)


SPAWN = [Supervisord, Runit, SystemdUnits]


class SystemdStandalone(SystemdUnits):
    """deploy/systemd/fcgi_sse.service: fcgi_sse standalone (--listen
    unix:...) under systemd, one process making its own socket. As for the
    socket units: `systemd-analyze verify` must print nothing, then its
    ExecStartPre= and ExecStart= run as written (User=, Group=, UMask=
    applied); restart: KillSignal=, exit 0, and the unit's command again.
    Its socket must come out as UMask= makes it: group Group= (the web
    server's), no access for others."""
    name = "systemd standalone unit"
    slug = "systemd-standalone"

    def __init__(self, binary, redis_port):
        _Spawn.__init__(self, binary, redis_port)
        self.units = os.path.join(self.dir, "units")
        os.makedirs(self.units)
        path = os.path.join(self.units, "fcgi_sse.service")
        with open(os.path.join(ROOT, "deploy", "systemd", "fcgi_sse.service")) as f:
            text = rewrite(f.read(), self.mapping)
        with open(path, "w") as f:
            f.write(text)
        self.template = parse_unit(path)
        self.instances = ["standalone"]
        self.children = 1
        self.procs = {}
        self.sock = None

    def verify(self):
        path = os.path.join(self.units, "fcgi_sse.service")
        p = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True, timeout=60)
        check(p.returncode == 0 and not (p.stdout + p.stderr).strip(),
              "systemd-analyze verify: %d %s%s" % (p.returncode, p.stdout, p.stderr))
        self.events.append("systemd-analyze verify: clean")

    def spawn(self, instance):
        self.exec_unit(instance, subprocess.DEVNULL, "journal-fcgi_sse")

    def wait_children(self, old=(), timeout=20, keep=None):
        def ready():
            got = self.pids()
            if len(got) != 1 or set(got.values()) & set(old) or not os.path.exists(self.socket_path):
                return False
            return self.socket_path in listening_unix_inodes().values()

        check(wait_until(ready, timeout, 0.1), "fcgi_sse did not listen on %s" % self.socket_path)
        st = os.stat(self.socket_path)
        check(st.st_uid == self.uid and st.st_gid == self.gid and st.st_mode & 0o007 == 0,
              "socket %s: uid %d gid %d mode %o: want the unit's user and group, nothing for others"
              % (self.socket_path, st.st_uid, st.st_gid, st.st_mode & 0o7777))
        return self.pids()

    def start(self):
        self.verify()
        self.own_store()
        # RuntimeDirectory=fcgi_sse: systemd makes /run/fcgi_sse (here the
        # run dir) the unit's user's, where it creates its socket
        if unit_value(self.template, "Service", "RuntimeDirectory"):
            os.chown(self.dir, self.uid, self.gid)
        self.spawn(self.instances[0])
        self.wait_children()
        self.start_lighttpd()
        self.health()
        return self

    def restart(self):
        old = self.pids()
        status = self.stop_children()
        check(all(s == 0 for s in status.values()), "did not stop gracefully (exit 0): %r" % status)
        self.spawn(self.instances[0])
        self.wait_children(old=old.values())
        self.events.append("restart: exit statuses %r" % status)


SPAWN.append(SystemdStandalone)
