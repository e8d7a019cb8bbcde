#!/usr/bin/env python3
"""colo_guest.py PROXY PRELOAD IMAGE_DIR [--seconds N] [--secondary-proxy] [--failover primary|secondary
[--resume]]
— colo-proxy in place of colo-compare, with two real QEMU 7.2 guests in COLO; with
--secondary-proxy, `colo-proxy rewrite` also takes the place of the secondary's filter-rewriter.

In a network namespace of its own: a bridge (the client's side, 10.99.0.1) with the
primary's tap on it, the secondary's tap kept off it (COLO-FT topology, no drives).
The primary QEMU keeps filter-mirror and both filter-redirectors; its colo-compare is
replaced by `colo-proxy compare`, which connects to the primary's compare0 (9001) and
compare_out (9005) servers and listens on 9004 for the secondary's filter-redirector f2.
The secondary keeps filter-redirector f1/f2 and filter-rewriter. colo-proxy has its own
QMP monitor on the primary and asks for checkpoints there.

Both QEMUs run under TCG with the two workarounds of docs/qemu-faults.md (the
pthread_cond_wait preload, and a RAM size that is not a multiple of 256 KiB).
After the pair reaches the colo state and the guest serves, a client sends HTTP
requests (a page, a 256 KiB file, a CGI token from /dev/urandom, which differs between
the guests) and TCP echo requests for N seconds (default 60), checking every byte:
echo only in the first half (the guests answer alike, so QEMU's periodic checkpoints
run), all of it in the second.
It reports the checkpoints QEMU took (STOP/RESUME on an event monitor), the ones
colo-proxy asked for and why, and colo-proxy's accounting of PVM records.

With --failover, a host dies in the middle of the traffic (a request in flight) and the
survivor takes over as docs/migration.md ("When a host dies") says: `primary` kills the
secondary host (its QEMU and rewriter) and sends x-colo-lost-heartbeat to the primary QEMU;
`secondary` (needs --secondary-proxy) kills the primary host (its QEMU and compare), sends
x-colo-lost-heartbeat to the secondary QEMU, turns the SVM's filters back on (QEMU's failover
turns them off) and moves the client's network to the secondary's tap. Every request must be answered, before, across and after the failover.

With --resume, replication then resumes as docs/migration.md says, while the clients' requests go on: a
new secondary host (QEMU -incoming, and colo-proxy rewrite with --secondary-proxy) starts; after
--failover primary the primary gets x-colo and migrate, and colo-proxy compare must compare again (its
status says so); after --failover secondary the survivor gets the primary's chardevs and filters, a
colo-proxy compare of its own and migrate, the new secondary on the dead primary's tap. Once both QEMUs
are in COLO, periodic checkpoints (echo only) and ones colo-proxy asks for (HTTP's differing token) must
happen, every request answered with the right bytes.
Prints `guest: PASS|FAIL <what>` lines; exits 1 on any FAIL.
"""
import ctypes
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "qemu"))
from colo_pair import Qmp  # noqa: E402

GUEST_IP = "10.99.0.2"
HOST_IP = "10.99.0.1"
GUEST_MAC = "52:54:00:c0:10:02"
BRIDGE_MAC = "02:00:00:c0:10:01"  # the clients' side
RAM = "262136K"  # not a multiple of 256 KiB: TCG bug 2
PERIOD_MS = 5000
CLONE_NEWNET = 0x40000000
# virtio-net frames carry a 12-byte vnet header through every filter, and GSO super-frames.
VNET = ",vnet_hdr_support=on"
FAILURES = []
SVM_FILTERS = ("f1", "n1", "n0", "f2")  # readers first: what n0 and f2 send is read at once
BRING_UP_ATTEMPTS = 2  # the pair is started again only when it never served; every check is still strict


def verdict(what, ok):
    print("guest: %s %s" % ("PASS" if ok else "FAIL", what), flush=True)
    if not ok:
        FAILURES.append(what)


def sh(*args):
    subprocess.run(args, check=True)


class Namespace:
    def __init__(self):
        self.name = "colo-guest-%d" % os.getpid()
        sh("ip", "netns", "add", self.name)
        self.ip("link", "set", "lo", "up")
        # A fixed address: a bridge without one takes its ports' lowest, so the clients' MAC would change when
        # the failover moves the taps, and the survivor would go on sending to the old one.
        self.ip("link", "add", "br0", "address", BRIDGE_MAC, "type", "bridge")
        self.ip("addr", "add", HOST_IP + "/24", "dev", "br0")
        self.ip("link", "set", "br0", "up")
        for tap in ("tap-pvm", "tap-svm"):
            self.ip("tuntap", "add", tap, "mode", "tap")
        self.ip("link", "set", "tap-pvm", "master", "br0", "up")
        self.ip("link", "set", "tap-svm", "up")  # off the bridge until a failover

    def ip(self, *args):
        sh("ip", "-n", self.name, *args)

    def run(self, args, log, env=None):
        return subprocess.Popen(["ip", "netns", "exec", self.name] + args, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, env=env)

    def enter(self):
        """Moves this process (the client) into the namespace."""
        fd = os.open("/run/netns/" + self.name, os.O_RDONLY)
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns into " + self.name)
        os.close(fd)

    def delete(self):
        subprocess.run(["ip", "netns", "del", self.name], check=False)


def qemu_common(img, name, d):
    return ["qemu-system-x86_64", "-accel", "tcg", "-cpu", "qemu64", "-m", RAM, "-smp", "1",
            "-name", name, "-nodefaults", "-display", "none",
            "-serial", "file:%s/%s.console" % (d, name),
            "-kernel", img + "/vmlinuz", "-initrd", img + "/initrd.gz",
            "-append", "console=ttyS0 panic=-1 quiet",
            "-qmp", "unix:%s/%s.qmp,server=on,wait=off" % (d, name)]


def primary_args(img, d):
    return qemu_common(img, "primary", d) + [
        "-qmp", "unix:%s/proxy.qmp,server=on,wait=off" % d,
        "-qmp", "unix:%s/events.qmp,server=on,wait=off" % d,
        "-netdev", "tap,id=hn0,ifname=tap-pvm,script=no,downscript=no,vhost=off",
        "-device", "virtio-net-pci,id=e0,netdev=hn0,mac=%s,romfile=" % GUEST_MAC,
        "-chardev", "socket,id=mirror0,host=127.0.0.1,port=9003,server=on,wait=off",
        "-chardev", "socket,id=compare0,host=127.0.0.1,port=9001,server=on,wait=off",
        "-chardev", "socket,id=compare_out,host=127.0.0.1,port=9005,server=on,wait=off",
        "-object", "filter-mirror,id=m0,netdev=hn0,queue=tx,outdev=mirror0" + VNET,
        "-object", "filter-redirector,netdev=hn0,id=redire0,queue=rx,indev=compare_out" + VNET,
        "-object", "filter-redirector,netdev=hn0,id=redire1,queue=rx,outdev=compare0" + VNET,
        "-S"]


# The hosts share one namespace, so each gets ports of its own. The primary's: compare0, mirror0, compare's
# secondary_in, compare_out; a secondary's colo-proxy rewrite: to_svm, from_svm, net_in, net_out. NEW_*: the
# secondary that took over as a primary, and its new secondary (the taken-over rewriter still tries the old ones).
PRIMARY_PORTS = (9001, 9003, 9004, 9005)
REWRITE_PORTS = (9013, 9014, 9015, 9016)
NEW_PRIMARY_PORTS = (9031, 9033, 9034, 9035)
NEW_REWRITE_PORTS = (9023, 9024, 9025, 9026)


def secondary_args(img, d, proxy_rewrites, name="secondary", tap="tap-svm", ports=REWRITE_PORTS):
    """COLO-FT's secondary; with proxy_rewrites, its redirectors reach `colo-proxy rewrite`
    (PORTS) instead of the primary, filter-rewriter goes, and two spare monitors wait in case this host
    becomes a primary: NAME-compare.qmp for a colo-proxy compare, NAME-events.qmp for the test's checkpoint
    count. NAME names its monitors and logs."""
    red = ports[:2] if proxy_rewrites else (9003, 9004)
    args = qemu_common(img, name, d) + [
        "-netdev", "tap,id=hn0,ifname=%s,script=no,downscript=no,vhost=off" % tap,
        "-device", "virtio-net-pci,id=e0,netdev=hn0,mac=%s,romfile=" % GUEST_MAC,
        "-chardev", "socket,id=red0,host=127.0.0.1,port=%d,reconnect=1" % red[0],
        "-chardev", "socket,id=red1,host=127.0.0.1,port=%d,reconnect=1" % red[1]]
    if proxy_rewrites:  # the tap's way through `colo-proxy rewrite` once the SVM takes over
        args += ["-chardev", "socket,id=net0,host=127.0.0.1,port=%d,reconnect=1" % ports[2],
                 "-chardev", "socket,id=net1,host=127.0.0.1,port=%d,reconnect=1" % ports[3],
                 "-object", "filter-redirector,id=n0,netdev=hn0,queue=tx,outdev=net0" + VNET]
    args += ["-object", "filter-redirector,id=f1,netdev=hn0,queue=tx,indev=red0" + VNET]
    if proxy_rewrites:
        args += ["-object", "filter-redirector,id=n1,netdev=hn0,queue=rx,indev=net1" + VNET]
    args += ["-object", "filter-redirector,id=f2,netdev=hn0,queue=rx,outdev=red1" + VNET]
    if proxy_rewrites:
        return args + ["-qmp", "unix:%s/%s-proxy.qmp,server=on,wait=off" % (d, name),
                       "-qmp", "unix:%s/%s-compare.qmp,server=on,wait=off" % (d, name),
                       "-qmp", "unix:%s/%s-events.qmp,server=on,wait=off" % (d, name),
                       "-incoming", "tcp:127.0.0.1:9998"]
    return args + ["-object", "filter-rewriter,id=rew0,netdev=hn0,queue=all" + VNET,
                   "-incoming", "tcp:127.0.0.1:9998"]


def secondary_proxy_args(proxy, d, name="secondary", ports=REWRITE_PORTS, primary=PRIMARY_PORTS):
    return [proxy, "rewrite", "--mirror_in", "tcp:127.0.0.1:%d" % primary[1],
            "--to_svm", "tcp:127.0.0.1:%d,server" % ports[0], "--from_svm", "tcp:127.0.0.1:%d,server" % ports[1],
            "--to_primary", "tcp:127.0.0.1:%d" % primary[2],
            "--net_in", "tcp:127.0.0.1:%d,server" % ports[2], "--net_out", "tcp:127.0.0.1:%d,server" % ports[3],
            "--vnet_hdr_support", "--qmp", "unix:%s/%s-proxy.qmp" % (d, name)]


def compare_args(proxy, qmp, control, reports, ports=PRIMARY_PORTS):
    """`colo-proxy compare` in place of colo-compare: QEMU's compare0 and compare_out, the secondary's
    filter-redirector or colo-proxy rewrite on secondary_in, checkpoints asked for on QMP."""
    return [proxy, "compare", "--primary_in", "tcp:127.0.0.1:%d" % ports[0],
            "--secondary_in", "tcp:127.0.0.1:%d,server" % ports[2], "--outdev", "tcp:127.0.0.1:%d" % ports[3],
            "--vnet_hdr_support", "--qmp", "unix:" + qmp,
            "--checkpoint-period-ms", str(PERIOD_MS), "--control", control, "--divergence-reports", reports]


class Checkpoints:
    """Counts STOP→RESUME pairs on the primary's event monitor."""

    def __init__(self, path):
        self.q = Qmp(path)
        self.durations = []
        self.colo_exit = None
        threading.Thread(target=self.watch, daemon=True).start()

    def watch(self):
        stopped = None
        for line in self.q.f:
            ev = json.loads(line).get("event")
            if ev == "STOP":
                stopped = time.monotonic()
            elif ev == "RESUME" and stopped is not None:
                self.durations.append(time.monotonic() - stopped)
                stopped = None
            elif ev == "COLO_EXIT":
                self.colo_exit = line.strip()


def until(test, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if test():
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def wait_for(what, test, seconds):
    if until(test, seconds):
        return True
    verdict(what, False)
    return False


def http_get(path, timeout=15):
    with urllib.request.urlopen("http://%s%s" % (GUEST_IP, path), timeout=timeout) as r:
        return r.read()


def echo(payload, timeout=15):
    with socket.create_connection((GUEST_IP, 7), timeout=timeout) as s:
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


class Workload:
    def __init__(self, www):
        self.page = open(www + "/index.html", "rb").read()
        self.big = open(www + "/big.bin", "rb").read()
        self.counts = {"page": [0, 0], "big": [0, 0], "token": [0, 0], "echo": [0, 0]}
        self.errors = []
        self.done = []            # (started, finished, ok) per request
        self.in_flight = None     # when the request under way started

    def one(self, kind, rng):
        if kind == "page":
            return http_get("/index.html") == self.page
        if kind == "big":
            return http_get("/big.bin") == self.big
        if kind == "token":
            return re.fullmatch(rb"[0-9a-f]{32}\n", http_get("/cgi-bin/token")) is not None
        line = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rng.randint(1, 400))) + b"\n"
        return echo(line) == line

    def run(self, seconds, kinds, stop=None):
        """Requests of KINDS in turn for SECONDS, or until STOP (a threading.Event) is set."""
        rng = random.Random(7)
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end and not (stop and stop.is_set()):
            kind = kinds[i % len(kinds)]
            i += 1
            self.in_flight = time.monotonic()
            try:
                ok = self.one(kind, rng)
                why = "wrong bytes"
            except OSError as e:
                ok, why = False, repr(e)
            self.done.append((self.in_flight, time.monotonic(), ok))
            self.in_flight = None
            self.counts[kind][0 if ok else 1] += 1
            if not ok:
                self.errors.append("%s: %s" % (kind, why))
            time.sleep(0.1)


def proxy_summary(log_path):
    text = open(log_path).read()
    reasons = {}
    for m in re.finditer(r"checkpoint requested \((\w+)\)", text):
        reasons[m.group(1)] = reasons.get(m.group(1), 0) + 1
    m = re.search(r"summary: PVM records in (\d+), released (\d+).*", text)
    return reasons, m, text


def operator_view(proxy, control, reports):
    """What an operator sees of this run: the status table, and a real divergence explained."""
    table = subprocess.run([proxy, "status", "--control", control], capture_output=True, text=True, timeout=10)
    print("guest: colo-proxy status during the run:\n" + "\n".join("guest:   " + l for l in table.stdout.splitlines()))
    js = json.loads(subprocess.run([proxy, "status", "--control", control, "--json"], capture_output=True,
                                   text=True, timeout=10).stdout or "{}")
    verdict("colo-proxy status: connected to QEMU in COLO, every socket up, divergences and checkpoints counted",
            js.get("qmp_connected") == 1 and js.get("qmp_in_colo") == 1
            and set(js.get("socket_connected", {}).values()) == {1} and sum(js.get("divergences", {}).values()) > 0
            and js.get("checkpoints", 0) > 0 and js.get("hold_latency_seconds", {}).get("count", 0) > 0
            and js.get("checkpoint_duration_seconds", {}).get("count", 0) > 0)
    explained = []
    for name in sorted(os.listdir(reports), key=lambda n: int(re.sub(r"\D", "", n) or 0)):
        if name.endswith(".txt"):
            out = subprocess.run([proxy, "explain", os.path.join(reports, name)], capture_output=True, text=True,
                                 timeout=10).stdout
            explained.append(out)
            if "hint: no known cause" not in out:
                print("guest: colo-proxy explain %s:\n%s" % (name, "\n".join("guest:   " + l for l in out.splitlines())))
                break
    verdict("colo-proxy explain finds a known cause in a real divergence report (%d reports read)" % len(explained),
            any("hint: " in e and "hint: no known cause" not in e for e in explained))


def failover(mode, work, seconds, hosts, p, s, ns, proxy, control, d):
    """Traffic for SECONDS; at half time, with a request in flight, one host dies and the other takes over."""
    kinds = ["page", "echo", "big", "echo", "token", "page", "echo"]
    runner = threading.Thread(target=work.run, args=(seconds, kinds))
    t0 = time.monotonic()
    runner.start()
    until(lambda: time.monotonic() - t0 >= seconds / 2 and work.in_flight is not None, seconds)
    dead, survivor = ("secondary", p) if mode == "primary" else ("primary", s)
    killed = time.monotonic()
    in_flight_at_kill = work.in_flight is not None
    for proc in hosts[dead]:
        proc.kill()
    for proc in hosts[dead]:
        proc.wait()
    survivor.s.settimeout(30)
    try:
        answer = "answered %s" % survivor.cmd("x-colo-lost-heartbeat")
    except SystemExit as e:  # QEMU may have left COLO on its own already (its checkpoint failed)
        answer = str(e)
    if mode == "secondary":
        # QEMU's failover turns every filter of the SVM's netdev off (only filter-rewriter keeps working):
        # once the secondary has left COLO, n0, f1, n1 and f2 go back on, the SVM's way through colo-proxy rewrite.
        until(lambda: survivor.cmd("query-colo-status")["mode"] == "none", 10)
        for f in SVM_FILTERS:
            survivor.cmd("qom-set", path="/objects/" + f, property="status", value="on")
        filters_on = {f: survivor.cmd("qom-get", path="/objects/" + f, property="status") for f in SVM_FILTERS}
        verdict("failover secondary: the SVM's filters are on again after the failover (%s)"
                % ", ".join("%s %s" % kv for kv in filters_on.items()), set(filters_on.values()) == {"on"})
        # the clients' network now reaches the secondary host
        ns.ip("link", "set", "tap-pvm", "nomaster")
        ns.ip("link", "set", "tap-svm", "master", "br0")
    took_over = time.monotonic() - killed
    runner.join()
    before = [r for r in work.done if r[1] < killed]
    across = [r for r in work.done if r[0] < killed <= r[1]]
    after = [r for r in work.done if r[0] >= killed]
    bad = sum(c[1] for c in work.counts.values())
    first_after = min((r[1] for r in work.done if r[1] >= killed and r[2]), default=None)
    verdict("failover %s: the %s host was killed %.1f s into the traffic with a request in flight (%d answered "
            "before); x-colo-lost-heartbeat sent to the %s QEMU %.2f s after the kill (%s)"
            % (mode, dead, killed - t0, len(before), "primary" if mode == "primary" else "secondary", took_over,
               answer),
            in_flight_at_kill and len(before) > 0)
    detail = ", ".join("%s %d/%d" % (k, c[0], c[0] + c[1]) for k, c in work.counts.items())
    verdict("failover %s: every request answered: %d before, %d across, %d after the kill (%s); first answer after "
            "the kill %.2f s after it%s"
            % (mode, len(before), len(across), len(after), detail,
               first_after - killed if first_after else -1, "; errors: " + "; ".join(work.errors[:5]) if bad else ""),
            bad == 0 and len(across) >= 1 and len(after) >= 3)
    status = survivor.cmd("query-colo-status")
    verdict("failover %s: the %s QEMU left COLO (query-colo-status: %s)" % (mode, "primary" if mode == "primary"
                                                                             else "secondary", status),
            status.get("mode") == "none")
    if mode == "primary":
        table = subprocess.run([proxy, "status", "--control", control], capture_output=True, text=True,
                               timeout=10).stdout
        state = next((l.strip() for l in table.splitlines() if "alone (" in l or "comparing" in l), "no state line")
        verdict("failover primary: colo-proxy status says %s" % state, "alone (failover: QMP COLO_EXIT" in state)
        return
    log = open(d + "/secondary-proxy.log").read()
    verdict("failover secondary: colo-proxy rewrite took over on the secondary QEMU's COLO_EXIT",
            "takeover: the secondary QEMU left COLO" in log)
    if bad:  # where the clients' frames stopped
        for args in (["-s", "link", "show", "master", "br0"], ["-s", "link", "show", "tap-pvm"]):
            out = subprocess.run(["ip", "-n", ns.name] + args, capture_output=True, text=True).stdout
            print("guest: ip %s:\n%s" % (" ".join(args), out), flush=True)


def proxy_status(proxy, control):
    """colo-proxy compare's status as a dict (empty when it does not answer)."""
    out = subprocess.run([proxy, "status", "--control", control, "--json"], capture_output=True, text=True,
                         timeout=10).stdout
    return json.loads(out or "{}")


def start_new_secondary(ns, img, d, env, proxy, proxy_rewrites, procs, tap="tap-svm", ports=REWRITE_PORTS,
                        primary=PRIMARY_PORTS):
    """A new secondary host, as the first one was started (QEMU -incoming, colo-proxy rewrite), named secondary2."""
    rewriter = None
    if proxy_rewrites:
        rewriter = ns.run(secondary_proxy_args(proxy, d, "secondary2", ports, primary),
                          open(d + "/secondary2-proxy.log", "w"))
        procs.append(rewriter)
    procs.append(ns.run(secondary_args(img, d, proxy_rewrites, "secondary2", tap, ports),
                        open(d + "/secondary2.log", "w"), env))
    s2 = Qmp(d + "/secondary2.qmp")
    s2.cmd("migrate-set-capabilities", capabilities=[{"capability": "x-colo", "state": True}])
    return s2, rewriter


def resume_commands(p):
    """docs/migration.md, "Resuming replication with a new secondary", on the primary's monitor. This test's
    guests have no disks, so COLO-FT's disk steps (drive-mirror, drive_add, x-blockdev-change) are not run."""
    p.cmd("migrate-set-capabilities", capabilities=[{"capability": "x-colo", "state": True}])
    p.cmd("migrate", uri="tcp:127.0.0.1:9998")


def both_in_colo(p, s2):
    return p.cmd("query-colo-status")["mode"] == "primary" and s2.cmd("query-colo-status")["mode"] == "secondary"


def checkpoint_marks(ckpts, proxy_log):
    """(checkpoints QEMU took, checkpoints colo-proxy asked for) so far."""
    return len(ckpts.durations), sum(proxy_summary(proxy_log)[0].values())


def comparing_in_colo(p, s2, proxy, control, migrated):
    """COLO on both QEMUs, and colo-proxy compare comparing, in COLO, every socket connected. Returns the
    status, or None (a FAIL said why)."""
    if not wait_for("resume: the new primary and secondary reach COLO", lambda: both_in_colo(p, s2), 120):
        return None
    in_colo = time.monotonic() - migrated
    if not wait_for("resume: colo-proxy compare compares in COLO",
                    lambda: proxy_status(proxy, control).get("state") == "comparing"
                    and proxy_status(proxy, control).get("qmp_in_colo") == 1, 10):
        return None
    js = proxy_status(proxy, control)
    js["seconds_to_colo"], js["seconds_to_compare"] = in_colo, time.monotonic() - migrated - in_colo
    return js


def while_serving(img, steps):
    """Runs STEPS while a client sends requests; returns the client's Workload and what STEPS returned."""
    work, stop = Workload(img + "/www"), threading.Event()
    runner = threading.Thread(target=work.run, args=(3600, ["page", "echo", "token", "echo"], stop))
    runner.start()
    try:
        return work, steps()
    finally:
        stop.set()
        runner.join()


def after_rejoin(work, marks, secondary_records, seconds):
    """Echo only for 3 checkpoint periods (QEMU's periodic checkpoints), then HTTP with the differing token for
    SECONDS (checkpoints colo-proxy asks for): MARKS gives (taken, asked), SECONDARY_RECORDS what came on
    secondary_in. Every request of WORK, from the resume on, must be answered."""
    during = len(work.done)
    records_before = secondary_records()
    taken0, asked0 = marks()
    work.run(PERIOD_MS * 3 / 1000, ["echo"])
    taken1, asked1 = marks()
    verdict("resume: with echo only after it, QEMU took %d checkpoints, %d of them asked for by colo-proxy: "
            "periodic ones happen" % (taken1 - taken0, asked1 - asked0), taken1 - taken0 > asked1 - asked0)
    work.run(seconds, ["page", "echo", "big", "echo", "token", "page", "echo"])
    taken2, asked2 = marks()
    records = secondary_records() - records_before
    verdict("resume: with HTTP after it, colo-proxy asked for %d checkpoints and QEMU took %d; the new "
            "secondary's frames reached compare (%d records)" % (asked2 - asked1, taken2 - taken1, records),
            asked2 - asked1 >= 1 and taken2 - taken1 >= 1 and records > 0)
    bad = sum(c[1] for c in work.counts.values())
    detail = ", ".join("%s %d/%d" % (k, c[0], c[0] + c[1]) for k, c in work.counts.items())
    slowest = max((r[1] - r[0] for r in work.done[:during]), default=0)
    verdict("resume: every request answered: %d while the new secondary started and COLO resumed (the slowest "
            "in %.2f s), %d after it (%s)%s" % (during, slowest, len(work.done) - during, detail,
                                                "; errors: " + "; ".join(work.errors[:5]) if bad else ""),
            bad == 0 and during >= 1 and len(work.done) - during >= 10)


def secondary_in_records(proxy, control):
    return lambda: proxy_status(proxy, control).get("socket_records_in", {}).get("secondary_in", 0)


def resume(p, ckpts, ns, img, d, env, proxy, control, proxy_rewrites, seconds, procs):
    """After the secondary host died and the primary went on alone: a new secondary host, the resume commands
    on the primary, COLO again with colo-proxy compare comparing again, while the clients' requests go on;
    then after_rejoin. Returns the new rewriter (or None) and QEMU's checkpoint count when it started."""
    js, mode = proxy_status(proxy, control), p.cmd("query-colo-status")["mode"]
    verdict("resume: before it, the primary runs alone (colo-proxy state %s; query-colo-status mode %s)"
            % (js.get("state"), mode), js.get("alone") == 1 and mode == "none")
    if js.get("alone") != 1 or mode != "none":
        return None, 0
    taken_before, started = len(ckpts.durations), {}

    def steps():
        s2, started["rewriter"] = start_new_secondary(ns, img, d, env, proxy, proxy_rewrites, procs)
        migrated = time.monotonic()
        resume_commands(p)
        return comparing_in_colo(p, s2, proxy, control, migrated)
    work, js = while_serving(img, steps)
    if js:
        rejoins = open(d + "/proxy.log").read().count("QEMU is in COLO again with a secondary: comparing again")
        verdict("resume: COLO again %.1f s after migrate, and colo-proxy compare compares again %.1f s after it "
                "(state %s, alone %s, qmp_in_colo %s, sockets %s; %d rejoin line)"
                % (js["seconds_to_colo"], js["seconds_to_compare"], js.get("state"), js.get("alone"),
                   js.get("qmp_in_colo"), js.get("socket_connected"), rejoins),
                js.get("alone") == 0 and rejoins == 1 and set(js.get("socket_connected", {}).values()) == {1})
        after_rejoin(work, lambda: checkpoint_marks(ckpts, d + "/proxy.log"), secondary_in_records(proxy, control),
                     seconds)
    return started.get("rewriter"), taken_before


def add_primary_chardevs(q):
    """The primary's chardevs, as COLO-FT's "Secondary Failover" adds them (colo-proxy compare is their client)."""
    for chardev, port in (("mirror0", NEW_PRIMARY_PORTS[1]), ("compare0", NEW_PRIMARY_PORTS[0]),
                          ("compare_out", NEW_PRIMARY_PORTS[3])):
        q.cmd("chardev-add", id=chardev, backend={"type": "socket", "data": {
            "addr": {"type": "inet", "data": {"host": "127.0.0.1", "port": str(port)}}, "server": True,
            "wait": False}})


def add_primary_filters(q):
    """The primary's filters, behind the SVM's own: filter-mirror after f1 mirrors what colo-proxy rewrite gave
    the guest; the redirectors, last, are the first rx filters the guest's frames meet."""
    q.cmd("object-add", **{"qom-type": "filter-mirror", "id": "m0", "netdev": "hn0", "queue": "tx",
                           "outdev": "mirror0", "vnet_hdr_support": True})
    q.cmd("object-add", **{"qom-type": "filter-redirector", "id": "redire0", "netdev": "hn0", "queue": "rx",
                           "indev": "compare_out", "vnet_hdr_support": True})
    q.cmd("object-add", **{"qom-type": "filter-redirector", "id": "redire1", "netdev": "hn0", "queue": "rx",
                           "outdev": "compare0", "vnet_hdr_support": True})


def resume_on_secondary(s, ns, img, d, env, proxy, seconds, procs):
    """After the primary host died and the secondary took over: this host becomes the primary of a new secondary
    host (on the dead primary's tap) as docs/migration.md says, with a colo-proxy compare of its own, while
    colo-proxy rewrite goes on translating the connections from before the takeover; then after_rejoin.
    Returns the new compare, its control socket, the new rewriter and the event monitor's checkpoints."""
    mode = s.cmd("query-colo-status")["mode"]
    took_over = "takeover: the secondary QEMU left COLO" in open(d + "/secondary-proxy.log").read()
    verdict("resume: before it, the secondary took over (query-colo-status mode %s; colo-proxy rewrite %s)"
            % (mode, "taken over" if took_over else "not taken over"), mode == "none" and took_over)
    if mode != "none" or not took_over:
        return None, None, None
    control, reports, started = d + "/proxy2.sock", d + "/reports2", {}
    os.makedirs(reports, exist_ok=True)
    ckpts = Checkpoints(d + "/secondary-events.qmp")

    def steps():
        add_primary_chardevs(s)
        started["compare"] = ns.run(compare_args(proxy, d + "/secondary-compare.qmp", control, reports,
                                                 NEW_PRIMARY_PORTS), open(d + "/proxy2.log", "w"))
        procs.append(started["compare"])
        if not wait_for("resume: the new colo-proxy compare reaches compare0 and compare_out",
                        lambda: proxy_status(proxy, control).get("socket_connected", {}).get("outdev") == 1
                        and proxy_status(proxy, control).get("socket_connected", {}).get("primary_in") == 1, 10):
            return None
        s2, started["rewriter"] = start_new_secondary(ns, img, d, env, proxy, True, procs, "tap-pvm",
                                                      NEW_REWRITE_PORTS, NEW_PRIMARY_PORTS)
        add_primary_filters(s)
        s.cmd("migrate-set-capabilities", capabilities=[{"capability": "x-colo", "state": True}])
        s.cmd("migrate-set-parameters", **{"x-checkpoint-delay": PERIOD_MS})
        migrated = time.monotonic()
        s.cmd("migrate", uri="tcp:127.0.0.1:9998")
        return comparing_in_colo(s, s2, proxy, control, migrated)
    work, js = while_serving(img, steps)
    if js:
        verdict("resume: the old secondary is a primary in COLO %.1f s after migrate, and its new colo-proxy "
                "compare compares %.1f s after it (state %s, alone %s, sockets %s)"
                % (js["seconds_to_colo"], js["seconds_to_compare"], js.get("state"), js.get("alone"),
                   js.get("socket_connected")),
                js.get("alone") == 0 and set(js.get("socket_connected", {}).values()) == {1})
        after_rejoin(work, lambda: checkpoint_marks(ckpts, d + "/proxy2.log"), secondary_in_records(proxy, control),
                     seconds)
    return started.get("compare"), started.get("rewriter"), ckpts


def stop_rewriter(rewriter, log_path, qemu_checkpoints):
    """SIGTERM to colo-proxy rewrite: a clean exit, a summary, and every checkpoint learned from its QMP."""
    rewriter.send_signal(signal.SIGTERM)
    rc = rewriter.wait(timeout=15)
    tail = open(log_path).read()
    m = re.search(r"summary: .*", tail)
    verdict("colo-proxy rewrite stopped cleanly (exit status %d; %s)" % (rc, m.group(0) if m else "no summary"),
            rc == 0 and m is not None)
    seen = re.search(r"checkpoints (\d+)", tail)
    verdict("colo-proxy rewrite learned every checkpoint from the secondary's QMP (%s of QEMU's %d)"
            % (seen.group(1) if seen else "none", qemu_checkpoints),
            seen is not None and int(seen.group(1)) >= qemu_checkpoints - 1 > 0)


def stop_compare(px, log_path, what, went_alone):
    """SIGTERM to colo-proxy compare: a clean exit, and every PVM record it got released (WENT_ALONE: at one
    failover, then some passed alone)."""
    px.send_signal(signal.SIGTERM)
    rc = px.wait(timeout=15)
    log = open(log_path).read()
    summary = re.search(r"summary: PVM records in (\d+), released (\d+).*passed alone (\d+)", log)
    ok = rc == 0 and summary is not None and summary.group(1) == summary.group(2)
    if went_alone:
        ok = ok and int(summary.group(3)) > 0 and log.count("failover: the secondary is gone (QMP COLO_EXIT") == 1
    verdict("%s stopped cleanly (exit status %d) and accounted for everything (%s)"
            % (what, rc, re.search(r"summary: .*", log).group(0) if summary else "no summary"), ok)


def primary_survives(px, p, ckpts, ns, img, d, env, proxy, control, proxy_rewrites, seconds, procs, resume_mode):
    """After failover primary: with RESUME_MODE a new secondary (resume); then every colo-proxy stops cleanly."""
    new_rewriter, taken_before = None, 0
    if resume_mode:
        new_rewriter, taken_before = resume(p, ckpts, ns, img, d, env, proxy, control, proxy_rewrites, seconds,
                                            procs)
    stop_compare(px, d + "/proxy.log", "failover primary: the surviving colo-proxy compare", went_alone=True)
    if new_rewriter:
        stop_rewriter(new_rewriter, d + "/secondary2-proxy.log", len(ckpts.durations) - taken_before)


def secondary_survives(rewriter, s, ns, img, d, env, proxy, seconds, procs, resume_mode):
    """After failover secondary: with RESUME_MODE this host becomes a primary with a new secondary
    (resume_on_secondary); then every colo-proxy stops cleanly."""
    compare = new_rewriter = ckpts = None
    if resume_mode:
        compare, new_rewriter, ckpts = resume_on_secondary(s, ns, img, d, env, proxy, seconds, procs)
    if compare:
        stop_compare(compare, d + "/proxy2.log", "resume: the new primary's colo-proxy compare", went_alone=False)
    rewriter.send_signal(signal.SIGTERM)
    rc = rewriter.wait(timeout=15)
    m = re.search(r"summary: .*", open(d + "/secondary-proxy.log").read())
    verdict("failover secondary: the surviving colo-proxy stopped cleanly (exit status %d) and accounted for "
            "everything (%s)" % (rc, m.group(0) if m else "no summary"), rc == 0 and m is not None)
    if new_rewriter:
        stop_rewriter(new_rewriter, d + "/secondary2-proxy.log", len(ckpts.durations))


class BringUpFailed(Exception):
    """The pair reached COLO but the guest never served through it: start the pair again."""


def main(attempt=1):
    proxy, preload, img = sys.argv[1:4]
    seconds = int(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 60
    proxy_rewrites = "--secondary-proxy" in sys.argv
    failover_mode = sys.argv[sys.argv.index("--failover") + 1] if "--failover" in sys.argv else None
    resume_mode = "--resume" in sys.argv
    if failover_mode not in (None, "primary", "secondary") or (failover_mode == "secondary" and not proxy_rewrites):
        raise SystemExit("colo_guest: --failover primary|secondary (secondary needs --secondary-proxy)")
    if resume_mode and not failover_mode:
        raise SystemExit("colo_guest: --resume goes with --failover primary|secondary (a new secondary for the "
                         "survivor)")
    print("guest: secondary rewriter: %s" % ("colo-proxy rewrite" if proxy_rewrites else "QEMU's filter-rewriter"))
    d = os.environ.get("GUEST_WORKDIR") or "/tmp/colo-guest-%d-%d" % (os.getpid(), attempt)
    os.makedirs(d, exist_ok=True)
    ns = Namespace()
    procs = []
    env = dict(os.environ, LD_PRELOAD=preload)
    started = time.monotonic()
    try:
        pri = ns.run(primary_args(img, d), open(d + "/primary.log", "w"), env)
        procs.append(pri)
        proxy_log = d + "/proxy.log"
        reports = d + "/reports"
        os.makedirs(reports, exist_ok=True)
        control = d + "/proxy.sock"
        px = ns.run(compare_args(proxy, d + "/proxy.qmp", control, reports), open(proxy_log, "w"))
        procs.append(px)
        rewriter = None
        if proxy_rewrites:
            rewriter = ns.run(secondary_proxy_args(proxy, d), open(d + "/secondary-proxy.log", "w"))
            procs.append(rewriter)
        sec = ns.run(secondary_args(img, d, proxy_rewrites), open(d + "/secondary.log", "w"), env)
        procs.append(sec)

        s = Qmp(d + "/secondary.qmp")
        s.cmd("migrate-set-capabilities", capabilities=[{"capability": "x-colo", "state": True}])
        p = Qmp(d + "/primary.qmp")
        ckpts = Checkpoints(d + "/events.qmp")
        p.cmd("migrate-set-capabilities", capabilities=[{"capability": "x-colo", "state": True}])
        p.cmd("migrate-set-parameters", **{"x-checkpoint-delay": PERIOD_MS})
        p.cmd("cont")
        p.cmd("migrate", uri="tcp:127.0.0.1:9998")
        if not wait_for("the pair reaches the colo state",
                        lambda: p.cmd("query-colo-status")["mode"] == "primary", 30):
            return
        verdict("the pair is in the colo state %.1f s after start" % (time.monotonic() - started), True)
        ns.enter()
        boot = time.monotonic()
        if not until(lambda: http_get("/index.html", timeout=2) is not None, 90):
            if attempt < BRING_UP_ATTEMPTS:
                print("guest: attempt %d: the guest did not serve through colo-proxy within 90 s of migrate; "
                      "the logs follow, then the pair starts again (QEMU 7.2 COLO under TCG sometimes never "
                      "runs the SVM: every held packet times out)" % attempt, flush=True)
                raise BringUpFailed()
            verdict("the guest serves HTTP through colo-proxy (attempt %d)" % attempt, False)
            return
        verdict("the guest serves through colo-proxy %.1f s after migrate" % (time.monotonic() - boot), True)

        work = Workload(img + "/www")
        if failover_mode:
            hosts = {"primary": [pri, px], "secondary": [sec] + ([rewriter] if rewriter else [])}
            failover(failover_mode, work, seconds, hosts, p, s, ns, proxy, control, d)
            if failover_mode == "primary":
                primary_survives(px, p, ckpts, ns, img, d, env, proxy, control, proxy_rewrites, seconds, procs,
                                 resume_mode)
            else:
                secondary_survives(rewriter, s, ns, img, d, env, proxy, seconds, procs, resume_mode)
            return
        before = len(ckpts.durations)
        t0 = time.monotonic()
        # Phase 1: echo only, which the two guests answer alike; QEMU's periodic checkpoints run.
        # (HTTP is not quiet: busybox httpd's Date header differs whenever the SVM's clock is ahead.)
        work.run(seconds / 2, ["echo"])
        quiet_taken = len(ckpts.durations) - before
        quiet_asked = sum(proxy_summary(proxy_log)[0].values())
        # Phase 2: HTTP too, with a CGI token from /dev/urandom, which differs: colo-proxy asks for checkpoints.
        work.run(seconds / 2, ["page", "echo", "big", "echo", "token", "page", "echo"])
        elapsed = time.monotonic() - t0
        ok = sum(c[0] for c in work.counts.values())
        bad = sum(c[1] for c in work.counts.values())
        detail = ", ".join("%s %d/%d" % (k, c[0], c[0] + c[1]) for k, c in work.counts.items())
        verdict("%d requests over %.0f s, all answered correctly (%s)%s"
                % (ok + bad, elapsed, detail, "; errors: " + "; ".join(work.errors[:5]) if bad else ""),
                bad == 0 and ok > 0)
        durations = sorted(ckpts.durations[before:])
        verdict("QEMU kept COLO running (no COLO_EXIT: %s)" % (ckpts.colo_exit or "none"),
                ckpts.colo_exit is None and p.cmd("query-colo-status")["mode"] == "primary")
        operator_view(proxy, control, reports)
        px.send_signal(signal.SIGTERM)
        rc = px.wait(timeout=15)
        verdict("colo-proxy stopped cleanly on SIGTERM (exit status %d)" % rc, rc == 0)
        if rewriter:
            stop_rewriter(rewriter, d + "/secondary-proxy.log", len(ckpts.durations))
        reasons, summary, log = proxy_summary(proxy_log)
        asked = sum(reasons.values())
        median = durations[len(durations) // 2] * 1000 if durations else 0
        verdict("QEMU took %d checkpoints during the run (median STOP->RESUME %.0f ms); colo-proxy asked "
                "for %d (%s)" % (len(durations), median, asked,
                                 ", ".join("%s %d" % kv for kv in sorted(reasons.items())) or "none"),
                len(durations) >= asked > quiet_asked)
        verdict("in the first half (echo only) QEMU took %d checkpoints, %d of them asked for by colo-proxy: "
                "periodic ones happen and are handled" % (quiet_taken, quiet_asked), quiet_taken > quiet_asked)
        verdict("colo-proxy released every PVM record it got (%s)"
                % (summary.group(0) if summary else "no summary in the log"),
                summary is not None and summary.group(1) == summary.group(2))
        divergences = len(re.findall(r"divergence \d+ \(", log))
        print("guest: %d divergences logged by colo-proxy; whole run %.0f s" % (divergences, time.monotonic() - started))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        ns.delete()
        if FAILURES or sys.exc_info()[0] is BringUpFailed:
            for name in ("proxy.log", "secondary-proxy.log", "primary.log", "secondary.log", "primary.console",
                         "secondary2-proxy.log", "secondary2.log", "proxy2.log"):
                path = os.path.join(d, name)
                if os.path.exists(path):
                    print("---- %s (tail) ----\n%s" % (name, "".join(open(path, errors="replace").readlines()[-15:])))
        elif not os.environ.get("GUEST_WORKDIR"):
            subprocess.run(["rm", "-rf", d], check=False)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("colo_guest: terminated"))  # the clean-up still runs
    for attempt in range(1, BRING_UP_ATTEMPTS + 1):
        try:
            main(attempt)  # may return early, after a failed wait: the exit status comes from the verdicts
            break
        except BringUpFailed:
            pass
    sys.exit(1 if FAILURES else 0)
