#!/usr/bin/env python3
"""colo_guest_dpdk.py PROXY PRELOAD IMAGE_DIR [--seconds N] [--failover primary|secondary] — `colo-proxy run` (the DPDK data
plane) serving two real QEMU 7.2 guests in COLO through vhost-user NICs, with no QEMU network
filter and no colo-compare.

Three network namespaces stand for the machines: the clients' (a bridge, 10.99.0.1, with a
veth to each host), the primary host and the secondary host. A veth pair is the link between
the two proxies, another (10.98.0.1 - 10.98.0.2) carries QEMU's migration stream.
  primary host:   colo-proxy run --role primary: --pvm-port net_vhost0 (a vhost-user server
                  socket the PVM's virtio-net connects to), --client-port and --link-port
                  net_af_packet on the veths, --qmp on its own monitor of the primary QEMU.
  secondary host: colo-proxy run --role secondary: --svm-port net_vhost1 (the SVM's NIC),
                  --link-port, --client-port (served only after a takeover), --qmp on its own
                  monitor of the secondary QEMU (checkpoints reset its sequence offsets).
Each proxy has its own EAL (--file-prefix, --no-huge, one lcore of its own, --idle-sleep-us so
the polling leaves CPU to the TCG guests). The proxies start first (they own the vhost-user
sockets), then the QEMUs (memory-backend-memfd share=on, virtio-net-pci vectors=0: QEMU 7.2
under TCG crashes on a vhost-user NIC with MSI-X), then x-colo and migrate.

The client of tests/guest/colo_guest.py (HTTP page, 256 KiB file, CGI token from
/dev/urandom, TCP echo; every byte checked) runs for N seconds (default 60): echo only in the
first half (QEMU's periodic checkpoints), everything in the second (the token differs between
the guests: colo-proxy asks for checkpoints). Every checkpoint stops and restarts both vhost
devices (link down then up); frames meant for a VM port that is down must wait, not be lost.
With --failover secondary, the primary host dies half way (its QEMU and its colo-proxy are
killed) while requests and an echo connection opened before are under way: the secondary's
colo-proxy notices the silence on the link and the clients' side, takes the clients over and
tells its QEMU x-colo-lost-heartbeat; every request must be answered, the echo connection must go
on, and the client-visible gap is printed. With --failover primary, the secondary host dies
instead: the primary's colo-proxy releases what it held, passes the PVM's output straight on and
tells its QEMU x-colo-lost-heartbeat; every request is answered and nothing held is lost.
Prints `guest: PASS|FAIL <what>` lines and the figures; exits 1 on any FAIL.
"""
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
import colo_guest as cg  # noqa: E402
import labctl  # noqa: E402
from colo_guest import GUEST_MAC, PERIOD_MS, RAM, Qmp, verdict  # noqa: E402

HEARTBEAT_MISSES = 50  # x 20 ms: above the vCPU and checkpoint stalls of two TCG guests on two cores
IDLE_SLEEP_US = 100
MIGRATION = ("10.98.0.1", "10.98.0.2")


class Hosts:
    """The clients' network and the two hosts, as network namespaces."""

    def __init__(self):
        self.prefix = "cgd%d" % os.getpid()
        self.veths = 0
        for ns in ("cli", "ph", "sh"):
            cg.sh("ip", "netns", "add", self.ns(ns))
            self.ip(ns, "link", "set", "lo", "up")
            self.exec(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
        self.veth("cli", "eth0", "ph", "cli")
        self.veth("cli", "eth1", "sh", "cli")
        self.veth("ph", "lnk", "sh", "lnk")
        self.veth("ph", "mig", "sh", "mig")
        self.ip("ph", "addr", "add", MIGRATION[0] + "/24", "dev", "mig")
        self.ip("sh", "addr", "add", MIGRATION[1] + "/24", "dev", "mig")
        # A switch for the clients, with both hosts on it (the secondary serves only after a takeover).
        self.ip("cli", "link", "add", "br0", "address", cg.BRIDGE_MAC, "type", "bridge")
        for port in ("eth0", "eth1"):
            self.ip("cli", "link", "set", port, "master", "br0")
        self.ip("cli", "addr", "add", cg.HOST_IP + "/24", "dev", "br0")
        self.ip("cli", "link", "set", "br0", "up")

    def ns(self, name):
        return "%s-%s" % (self.prefix, name)

    def ip(self, ns, *args):
        cg.sh("ip", "-n", self.ns(ns), *args)

    def exec(self, ns, *args):
        cg.sh("ip", "netns", "exec", self.ns(ns), *args)

    def veth(self, ns_a, name_a, ns_b, name_b):
        """A veth pair without offloads: af_packet must see frames as a NIC sends them, never GSO super-frames."""
        self.veths += 1
        a, b = "%sa%d" % (self.prefix, self.veths), "%sb%d" % (self.prefix, self.veths)
        cg.sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
        for tmp, ns, name in ((a, ns_a, name_a), (b, ns_b, name_b)):
            cg.sh("ip", "link", "set", tmp, "netns", self.ns(ns), "name", name)
            subprocess.run(["ip", "netns", "exec", self.ns(ns), "ethtool", "-K", name, "tx", "off", "tso", "off",
                            "gso", "off", "gro", "off"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=False)
            self.ip(ns, "link", "set", name, "up")

    def run(self, ns, args, log, env=None):
        return subprocess.Popen(["ip", "netns", "exec", self.ns(ns)] + args, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def enter(self, ns):
        fd = os.open("/run/netns/" + self.ns(ns), os.O_RDONLY)
        try:
            if cg.ctypes.CDLL(None, use_errno=True).setns(fd, cg.CLONE_NEWNET) != 0:
                raise OSError(cg.ctypes.get_errno(), "setns into " + self.ns(ns))
        finally:
            os.close(fd)

    def delete(self):
        for ns in ("cli", "ph", "sh"):
            subprocess.run(["ip", "netns", "del", self.ns(ns)], check=False)


def af_packet(index, iface):
    return "--vdev=net_af_packet%d,iface=%s,framecnt=4096,blocksz=2097152,qpairs=1" % (index, iface)


def eal(prefix, lcore):
    return ["--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry", "--file-prefix", prefix,
            "-l", str(lcore)]


def primary_proxy_args(proxy, d, tag):
    return [proxy, "run"] + eal(tag + "-pri", 0) + [
        "--vdev=net_vhost0,iface=%s/pvm.sock,queues=1" % d, af_packet(0, "cli"), af_packet(1, "lnk"), "--",
        "--role", "primary", "--pvm-port", "net_vhost0", "--client-port", "net_af_packet0",
        "--link-port", "net_af_packet1", "--vm-mac", GUEST_MAC, "--qmp", "unix:%s/proxy.qmp" % d,
        "--checkpoint-period-ms", str(PERIOD_MS), "--control", d + "/primary.sock",
        "--divergence-reports", d + "/reports", "--idle-sleep-us", str(IDLE_SLEEP_US),
        "--heartbeat-misses", str(HEARTBEAT_MISSES), "--mbufs", "8192", "--log", "file:%s/primary-proxy.log" % d]


def secondary_proxy_args(proxy, d, tag):
    return [proxy, "run"] + eal(tag + "-sec", 1) + [
        "--vdev=net_vhost1,iface=%s/svm.sock,queues=1" % d, af_packet(0, "lnk"), af_packet(1, "cli"), "--",
        "--role", "secondary", "--svm-port", "net_vhost1", "--link-port", "net_af_packet0",
        "--client-port", "net_af_packet1", "--vm-mac", GUEST_MAC, "--qmp", "unix:%s/secondary-proxy.qmp" % d,
        "--control", d + "/secondary.sock", "--idle-sleep-us", str(IDLE_SLEEP_US),
        "--heartbeat-misses", str(HEARTBEAT_MISSES), "--mbufs", "8192", "--log", "file:%s/secondary-proxy.log" % d]


def vhost_nic(d, sock):
    """Shared guest RAM for the vhost-user backend; no MSI-X (QEMU 7.2 + TCG + vhost-user)."""
    return ["-object", "memory-backend-memfd,id=mem,size=%s,share=on" % RAM, "-machine", "memory-backend=mem",
            "-chardev", "socket,id=vu0,path=%s/%s,reconnect=1" % (d, sock),
            "-netdev", "vhost-user,id=hn0,chardev=vu0",
            "-device", "virtio-net-pci,id=e0,netdev=hn0,mac=%s,vectors=0,romfile=" % GUEST_MAC]


def primary_qemu_args(img, d):
    return cg.qemu_common(img, "primary", d) + vhost_nic(d, "pvm.sock") + [
        "-qmp", "unix:%s/proxy.qmp,server=on,wait=off" % d,
        "-qmp", "unix:%s/events.qmp,server=on,wait=off" % d, "-S"]


def secondary_qemu_args(img, d):
    return cg.qemu_common(img, "secondary", d) + vhost_nic(d, "svm.sock") + [
        "-qmp", "unix:%s/secondary-proxy.qmp,server=on,wait=off" % d,
        "-incoming", "tcp:%s:9998" % MIGRATION[1]]


class Checkpoints(cg.Checkpoints):
    """colo_guest's STOP->RESUME counter, also knowing whether a checkpoint is under way and since when."""

    def __init__(self, path):
        self.stopped_at = None
        super().__init__(path)

    def watch(self):
        for line in self.q.f:
            ev = json.loads(line).get("event")
            if ev == "STOP":
                self.stopped_at = time.monotonic()
            elif ev == "RESUME" and self.stopped_at is not None:
                self.durations.append(time.monotonic() - self.stopped_at)
                self.stopped_at = None
            elif ev == "COLO_EXIT":
                self.colo_exit = line.strip()


class HungCheckpointWatch:
    """A checkpoint that does not end within HUNG_S: both QEMUs' threads are dumped (gdb) for the report."""

    HUNG_S = 10

    def __init__(self, ckpts, procs, d):
        self.ckpts, self.procs, self.d = ckpts, procs, d
        self.seen = None
        self.running = True
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while self.running and self.seen is None:
            at = self.ckpts.stopped_at
            if at is not None and time.monotonic() - at > self.HUNG_S:
                self.seen = time.monotonic() - at
                for name in ("primary", "secondary"):
                    with open(os.path.join(self.d, name + ".stacks"), "w") as out:
                        subprocess.run(["gdb", "-p", str(self.procs[name].pid), "-batch", "-ex",
                                        "thread apply all bt"], stdout=out, stderr=subprocess.STDOUT, timeout=60,
                                       check=False)
            time.sleep(0.5)

    def verdict(self):
        self.running = False
        verdict("no checkpoint hung (STOP without RESUME for %d s)%s"
                % (self.HUNG_S, "" if self.seen is None else ": one did; both QEMUs' threads are in %s/*.stacks"
                   % self.d), self.seen is None)


def control(proxy, sock, *args):
    out = subprocess.run([proxy, "status", "--control", sock] + list(args), capture_output=True, text=True,
                         timeout=10)
    return out.stdout


def stats(proxy, sock):
    """The data plane's own counters (the control socket's `stats` line: per-port rx, tx, waiting)."""
    return labctl.stats(sock)


def status_json(proxy, sock):
    """What an operator reads: `colo-proxy status --json`."""
    return json.loads(control(proxy, sock, "--json") or "{}")


def link_changes(log_path, port):
    """(downs, longest down in ms) from the proxy's `PORT port link down|up` lines, by their timestamps."""
    downs, longest, down_at = 0, 0.0, None
    for line in open(log_path, errors="replace"):
        m = re.search(r"(\d\d):(\d\d):(\d\d)\.(\d+).*\b%s port link (down|up)" % port, line)
        if not m:
            continue
        t = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3)) + float("0." + m.group(4))
        if m.group(5) == "down":
            downs += 1
            down_at = t
        elif down_at is not None:
            longest = max(longest, (t - down_at) * 1000)
            down_at = None
    return downs, longest


def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))] if sorted_values else 0.0


def wait_for_socket(path, proc, seconds):
    return cg.until(lambda: os.path.exists(path) or proc.poll() is not None, seconds) and os.path.exists(path)


def accounting(pri, sec):
    """What each proxy's own counters say about frames toward the VM ports, and the PVM's records."""
    c, pvm = pri["ports"]["client"], pri["ports"]["pvm"]
    to_pvm = c["rx"] - pri["client_side_heartbeat"]["received"]
    verdict("primary: every client frame went to the PVM's vhost port, none lost while it was down "
            "(client rx %d - %d heartbeats = PVM tx %d + waiting %d)"
            % (c["rx"], pri["client_side_heartbeat"]["received"], pvm["tx"], pvm["tx_pending"]),
            to_pvm == pvm["tx"] + pvm["tx_pending"] and pvm["tx_pending"] == 0)
    lnk, svm = sec["ports"]["link"], sec["ports"]["svm"]
    mirrored = lnk["rx"] - sec["heartbeat"]["received"]
    verdict("secondary: every mirrored frame went to the SVM's vhost port, none lost while it was down "
            "(link rx %d - %d heartbeats = to_svm %d + dropped early %d; SVM tx %d + waiting %d)"
            % (lnk["rx"], sec["heartbeat"]["received"], sec["to_svm"], sec["dropped_early"], svm["tx"],
               svm["tx_pending"]),
            mirrored == sec["to_svm"] + sec["dropped_early"] and sec["to_svm"] == svm["tx"] + svm["tx_pending"]
            and svm["tx_pending"] == 0)
    released = sum(pri["released"].values())
    verdict("primary: every PVM frame compared was released (pvm_in %d, released %d, held %d: %s)"
            % (pri["pvm_in"], released, pri["held"], pri["released"]),
            pri["pvm_in"] == released and pri["held"] == 0)


def operator_view(proxy, d):
    js = status_json(proxy, d + "/primary.sock")
    keys = ("pvm_packets", "released_packets", "held_packets", "held_packets_max", "port_tx_queue",
            "checkpoint_requests", "checkpoints", "qmp_checkpoints_seen", "divergences")
    print("guest: colo-proxy status --json (primary): %s" % json.dumps({k: js.get(k) for k in keys}), flush=True)
    released = sum(js.get("released_packets", {}).values())
    verdict("colo-proxy status --json: 0 PVM frames lost (pvm_packets %s = released %d, held %s, PVM port queue %s)"
            % (js.get("pvm_packets"), released, js.get("held_packets"), js.get("port_tx_queue", {}).get("pvm")),
            js.get("pvm_packets") == released and js.get("held_packets") == 0
            and js.get("port_tx_queue", {}).get("pvm") == 0 and js.get("qmp_in_colo") == 1)


class TimedWorkload(cg.Workload):
    """colo_guest's client, also noting each request's kind and when it started, to name the slowest."""

    def __init__(self, www):
        super().__init__(www)
        self.t0 = time.monotonic()
        self.timed = []

    def one(self, kind, rng):
        start = time.monotonic()
        try:
            return super().one(kind, rng)
        finally:
            self.timed.append((time.monotonic() - start, kind, start - self.t0))


def report_traffic(work, seconds):
    done = sorted(r[1] - r[0] for r in work.done)
    n = len(work.done)
    span = (work.done[-1][1] - work.done[0][0]) if n else 1
    print("guest: figures: %d requests in %.0f s = %.1f requests/s; latency p50 %.1f ms, p99 %.1f ms, max %.1f ms"
          % (n, span, n / span, percentile(done, 0.5) * 1000, percentile(done, 0.99) * 1000,
             (done[-1] if done else 0) * 1000), flush=True)
    retrans = subprocess.run(["nstat", "-az", "TcpRetransSegs"], capture_output=True, text=True).stdout.split()
    print("guest: the client's TCP retransmitted %s segments" % (retrans[-2] if len(retrans) >= 2 else "?"))
    print("guest: slowest requests: %s" % ", ".join("%s %.0f ms at +%.1f s" % (k, t * 1000, at)
                                                     for t, k, at in sorted(work.timed, reverse=True)[:5]), flush=True)


def run_traffic(proxy, d, img, seconds, ckpts, p):
    work = TimedWorkload(img + "/www")
    before = len(ckpts.durations)
    pri0 = stats(proxy, d + "/primary.sock")
    asked0 = sum(pri0["checkpoint_requests"].values())
    t0 = time.monotonic()
    work.run(seconds / 2, ["echo"])
    quiet_taken = len(ckpts.durations) - before
    quiet_asked = sum(stats(proxy, d + "/primary.sock")["checkpoint_requests"].values()) - asked0
    work.run(seconds / 2, ["page", "echo", "big", "echo", "token", "page", "echo"])
    elapsed = time.monotonic() - t0
    ok = sum(c[0] for c in work.counts.values())
    bad = sum(c[1] for c in work.counts.values())
    detail = ", ".join("%s %d/%d" % (k, c[0], c[0] + c[1]) for k, c in work.counts.items())
    verdict("%d requests over %.0f s, all answered with the right bytes (%s)%s"
            % (ok + bad, elapsed, detail, "; errors: " + "; ".join(work.errors[:5]) if bad else ""),
            bad == 0 and ok > 0)
    report_traffic(work, seconds)
    verdict("QEMU kept COLO running (no COLO_EXIT: %s)" % (ckpts.colo_exit or "none"),
            ckpts.colo_exit is None and p.cmd("query-colo-status")["mode"] == "primary")
    verdict("in the first half (echo only) QEMU took %d checkpoints, %d asked for by colo-proxy"
            % (quiet_taken, quiet_asked), quiet_taken > quiet_asked)
    return before


def check_checkpoints(proxy, d, ckpts, before):
    pri = stats(proxy, d + "/primary.sock")
    durations = sorted(ckpts.durations[before:])
    asked = pri["checkpoint_requests"]
    divergences = sum(pri["divergences"].values())
    verdict("colo-proxy asked for %d checkpoints for %d divergences (%s; divergences %s); QEMU took %d "
            "during the traffic" % (asked["divergence"], divergences, asked, pri["divergences"], len(durations)),
            0 < asked["divergence"] <= divergences and len(durations) >= sum(asked.values()) - 1)
    print("guest: figures: %d checkpoints, STOP->RESUME p50 %.0f ms, p99 %.0f ms, max %.0f ms"
          % (len(durations), percentile(durations, 0.5) * 1000, percentile(durations, 0.99) * 1000,
             (durations[-1] if durations else 0) * 1000), flush=True)
    q = pri.get("qmp", {})
    verdict("the primary proxy's QMP: connected, in COLO, saw %d checkpoints, %d errors"
            % (q.get("checkpoints_seen", 0), q.get("errors", -1)),
            q.get("connected") and q.get("in_colo") and q.get("checkpoints_seen", 0) >= len(durations)
            and q.get("errors") == 0)
    sec = stats(proxy, d + "/secondary.sock")
    verdict("the secondary proxy learned the checkpoints from the secondary QEMU's QMP (%d rewriter resets, "
            "QMP saw %d; QEMU's primary took %d)" % (sec["checkpoints_done"], sec.get("qmp", {}).get(
                "checkpoints_seen", 0), len(ckpts.durations)),
            sec["checkpoints_done"] >= len(ckpts.durations) - 1 > 0)
    for role, log, port in (("primary", "primary-proxy.log", "pvm"), ("secondary", "secondary-proxy.log", "svm")):
        downs, longest = link_changes(os.path.join(d, log), port)
        print("guest: figures: the %s's %s port went down %d times (longest %.0f ms)" % (role, port, downs, longest),
              flush=True)
    verdict("no failover while both hosts were up (primary alone: %s, secondary taken over: %s, peer lost %d/%d)"
            % (pri["alone"], sec["taken_over"], pri["heartbeat"]["went_down"], sec["heartbeat"]["went_down"]),
            not pri["alone"] and not sec["taken_over"] and pri["heartbeat"]["went_down"] == 0
            and sec["heartbeat"]["went_down"] == 0)


def wait_idle(proxy, d):
    pri, sec = stats(proxy, d + "/primary.sock"), stats(proxy, d + "/secondary.sock")
    return pri["held"] == 0 and pri["ports"]["pvm"]["tx_pending"] == 0 and sec["ports"]["svm"]["tx_pending"] == 0


def stop_proxy(name, proc, d):
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        rc = -1
    log = open(os.path.join(d, name + "-proxy.log"), errors="replace").read()
    unsent = re.search(r"(\d+) frames could not be sent before shutdown", log)
    verdict("the %s colo-proxy stopped cleanly on SIGTERM (exit status %d; %s)"
            % (name, rc, unsent.group(0) if unsent else "every frame sent"), rc == 0 and unsent is None)


class EchoStream:
    """One echo connection kept open across the failover: a line every 100 ms, each answer checked."""

    def __init__(self):
        self.sock = socket.create_connection((cg.GUEST_IP, 7), timeout=20)
        self.answered = []  # when each line's echo came back
        self.error = None
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        rng = random.Random(11)
        try:
            while self.running:
                line = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(1, 200))) + b"\n"
                self.sock.sendall(line)
                got = b""
                while len(got) < len(line):
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        raise OSError("the echo connection was closed")
                    got += chunk
                if got != line:
                    raise OSError("wrong bytes echoed")
                self.answered.append(time.monotonic())
                time.sleep(0.1)
        except OSError as e:
            self.error = repr(e)

    def stop(self):
        self.running = False
        self.thread.join(timeout=25)
        self.sock.close()

    def gap_around(self, t):
        """The longest wait between two answers from just before `t` to the end."""
        times = [a for a in self.answered if a >= t - 5]
        return max((b - a for a, b in zip(times, times[1:])), default=-1)


def kill_host(procs, names):
    for name in names:
        procs[name].kill()
    for name in names:
        procs[name].wait()


def secondary_dies(seconds, procs, work, t0):
    """The secondary host dies (its QEMU and its colo-proxy, SIGKILL) with a request in flight: the primary's
    colo-proxy hears no more heartbeats, releases what it holds, passes the PVM's output straight on and tells
    the primary QEMU x-colo-lost-heartbeat."""
    cg.until(lambda: time.monotonic() - t0 >= seconds / 2, seconds)
    cg.until(lambda: work.in_flight is not None, seconds)
    in_flight = work.in_flight is not None
    killed = time.monotonic()
    kill_host(procs, ("secondary", "secondary-proxy"))
    return killed, in_flight


def primary_dies(d, seconds, procs, hung, work, t0):
    """The primary host dies (its QEMU and its colo-proxy, SIGKILL) with a request in flight, and an echo
    connection opened just before (most likely since the last checkpoint: the SVM's ISN is its own, so the
    secondary's rewriting must go on with the offset it learned)."""
    cg.until(lambda: time.monotonic() - t0 >= seconds / 2, seconds)
    fresh = EchoStream()
    cg.until(lambda: fresh.answered or fresh.error, 10)
    cg.until(lambda: work.in_flight is not None, seconds)
    in_flight = work.in_flight is not None
    hung.verdict()  # up to the kill
    killed = time.monotonic()
    kill_host(procs, ("primary", "primary-proxy"))
    return killed, in_flight, fresh


def check_requests_across(work, stream, killed, t0, in_flight, host):
    before = [r for r in work.done if r[1] < killed]
    across = [r for r in work.done if r[0] < killed <= r[1]]
    after = [r for r in work.done if r[0] >= killed]
    bad = sum(c[1] for c in work.counts.values())
    first_after = min((r[1] for r in work.done if r[1] >= killed and r[2]), default=None)
    verdict("failover: the %s host (QEMU and colo-proxy) was killed %.1f s into the traffic with a request "
            "in flight (%d answered before)" % (host, killed - t0, len(before)), in_flight and len(before) > 0)
    detail = ", ".join("%s %d/%d" % (k, c[0], c[0] + c[1]) for k, c in work.counts.items())
    verdict("failover: every request answered: %d before, %d across, %d after the kill (%s); first answer after the "
            "kill %.2f s after it%s" % (len(before), len(across), len(after), detail,
                                        first_after - killed if first_after else -1,
                                        "; errors: " + "; ".join(work.errors[:5]) if bad else ""),
            bad == 0 and len(across) >= 1 and len(after) >= 3)
    gap = stream.gap_around(killed)
    verdict("failover: the echo connection opened before the kill goes on (%d lines echoed, %d after the kill; "
            "client-visible gap %.2f s%s)" % (len(stream.answered), len([a for a in stream.answered if a > killed]),
                                              gap, "; " + stream.error if stream.error else ""),
            stream.error is None and any(a > killed + 1 for a in stream.answered))
    print("guest: figures: failover (%s host killed): client-visible gap %.2f s on the open echo connection; first "
          "new request answered %.2f s after the kill" % (host, gap, first_after - killed if first_after else -1),
          flush=True)


def check_primary_alone(proxy, d, p):
    pri = stats(proxy, d + "/primary.sock")
    verdict("failover: the primary colo-proxy goes on alone (alone %s, reason %s, secondary silent %d ms, "
            "%d PVM frames passed straight on)" % (pri["alone"], pri["failover"]["reason"],
                                                    pri["failover"]["peer_silent_ms"], pri["passed_alone"]),
            pri["alone"] and pri["failover"]["reason"] in ("heartbeat", "carrier") and pri["passed_alone"] > 0)
    released = sum(pri["released"].values())
    verdict("failover: nothing the primary held was lost (pvm_in %d = released %d, held %d; %s)"
            % (pri["pvm_in"], released, pri["held"], pri["released"]),
            pri["pvm_in"] == released and pri["held"] == 0)
    status = p.cmd("query-colo-status")
    log = open(d + "/primary-proxy.log", errors="replace").read()
    verdict("failover: the primary colo-proxy told its QEMU x-colo-lost-heartbeat, which left COLO "
            "(query-colo-status: %s)" % status,
            status.get("mode") == "none" and "x-colo-lost-heartbeat" in log)
    verdict("failover: nothing left waiting for the PVM's or the clients' port",
            cg.until(lambda: all(stats(proxy, d + "/primary.sock")["ports"][r]["tx_pending"] == 0
                                 for r in ("pvm", "client")), 10))


def check_secondary_took_over(proxy, d, s, fresh, killed):
    verdict("failover: an echo connection opened just before the kill goes on too (%d lines echoed, %d after the "
            "kill%s)" % (len(fresh.answered), len([a for a in fresh.answered if a > killed]),
                         "; " + fresh.error if fresh.error else ""),
            fresh.error is None and any(a > killed + 1 for a in fresh.answered))
    sec = stats(proxy, d + "/secondary.sock")
    verdict("failover: the secondary colo-proxy took over (taken_over %s, reason %s, primary silent %d ms, "
            "%d announcement frames)" % (sec["taken_over"], sec["failover"]["reason"],
                                         sec["failover"]["peer_silent_ms"], sec["announce"]["frames"]),
            sec["taken_over"] and sec["failover"]["reason"] == "heartbeat" and sec["announce"]["frames"] > 0)
    status = s.cmd("query-colo-status")
    log = open(d + "/secondary-proxy.log", errors="replace").read()
    verdict("failover: the secondary colo-proxy told its QEMU x-colo-lost-heartbeat, which left COLO "
            "(query-colo-status: %s)" % status,
            status.get("mode") == "none" and "x-colo-lost-heartbeat" in log)
    svm = sec["ports"]["svm"]
    verdict("failover: nothing left waiting for the SVM's port (%d sent, %d waiting)" % (svm["tx"], svm["tx_pending"]),
            cg.until(lambda: stats(proxy, d + "/secondary.sock")["ports"]["svm"]["tx_pending"] == 0, 10))


def failover(proxy, d, img, seconds, procs, p, s, hung, survivor):
    """One host dies half way through the traffic; the survivor's colo-proxy notices the silence and serves on:
    `secondary` (the primary host is killed) takes over the clients' side and fails the secondary QEMU over;
    `primary` (the secondary host is killed) goes on alone."""
    work = TimedWorkload(img + "/www")
    stream = EchoStream()
    runner = threading.Thread(target=work.run, args=(seconds, ["page", "echo", "big", "echo", "token", "page", "echo"]))
    t0 = time.monotonic()
    runner.start()
    if survivor == "secondary":
        killed, in_flight, fresh = primary_dies(d, seconds, procs, hung, work, t0)
    else:
        killed, in_flight = secondary_dies(seconds, procs, work, t0)
    runner.join()
    stream.stop()
    check_requests_across(work, stream, killed, t0, in_flight, "primary" if survivor == "secondary" else "secondary")
    if survivor == "secondary":
        fresh.stop()
        check_secondary_took_over(proxy, d, s, fresh, killed)
    else:
        check_primary_alone(proxy, d, p)


def main():
    proxy, preload, img = sys.argv[1:4]
    seconds = int(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 60
    failover_mode = sys.argv[sys.argv.index("--failover") + 1] if "--failover" in sys.argv else None
    if failover_mode not in (None, "primary", "secondary"):
        raise SystemExit("colo_guest_dpdk: --failover primary|secondary (the survivor; the other host is killed)")
    d = os.environ.get("GUEST_WORKDIR") or "/tmp/colo-guest-dpdk-%d" % os.getpid()
    os.makedirs(d + "/reports", exist_ok=True)
    tag = "cgd%d" % os.getpid()
    hosts = Hosts()
    procs = {}
    env = dict(os.environ, LD_PRELOAD=preload)
    started = time.monotonic()
    try:
        # The proxies own the vhost-user sockets: they start first, the QEMUs connect to them.
        procs["primary-proxy"] = hosts.run("ph", primary_proxy_args(proxy, d, tag), open(d + "/primary-proxy.eal", "w"))
        procs["secondary-proxy"] = hosts.run("sh", secondary_proxy_args(proxy, d, tag),
                                             open(d + "/secondary-proxy.eal", "w"))
        for name, sock in (("primary-proxy", "pvm.sock"), ("secondary-proxy", "svm.sock"),
                           ("primary-proxy", "primary.sock"), ("secondary-proxy", "secondary.sock")):
            if not wait_for_socket(os.path.join(d, sock), procs[name], 30):
                verdict("the %s created %s" % (name, sock), False)
                return
        procs["secondary"] = hosts.run("sh", secondary_qemu_args(img, d), open(d + "/secondary.log", "w"), env)
        procs["primary"] = hosts.run("ph", primary_qemu_args(img, d), open(d + "/primary.log", "w"), env)
        s = Qmp(d + "/secondary.qmp")
        s.cmd("migrate-set-capabilities", capabilities=[{"capability": "x-colo", "state": True}])
        p = Qmp(d + "/primary.qmp")
        ckpts = Checkpoints(d + "/events.qmp")
        hung = HungCheckpointWatch(ckpts, procs, d)
        p.cmd("migrate-set-capabilities", capabilities=[{"capability": "x-colo", "state": True}])
        p.cmd("migrate-set-parameters", **{"x-checkpoint-delay": PERIOD_MS})
        p.cmd("cont")
        p.cmd("migrate", uri="tcp:%s:9998" % MIGRATION[1])
        if not cg.wait_for("the pair reaches the colo state", lambda: p.cmd("query-colo-status")["mode"] == "primary",
                           60):
            return
        verdict("the pair is in the colo state %.1f s after start (vhost-user NICs, no QEMU filter)"
                % (time.monotonic() - started), True)
        # What the clients see, headers only, kept with the logs when a check fails.
        procs["capture"] = hosts.run("cli", ["tcpdump", "-Z", "root", "-q", "-U", "-s", "128", "-i", "br0", "-w",
                                             d + "/client.pcap"], subprocess.DEVNULL)
        hosts.enter("cli")
        boot = time.monotonic()
        if not cg.wait_for("the guest serves HTTP through both colo-proxy run data planes",
                           lambda: cg.http_get("/index.html", timeout=2) is not None, 120):
            return
        verdict("the guest serves through colo-proxy run %.1f s after migrate" % (time.monotonic() - boot), True)
        if failover_mode:
            failover(proxy, d, img, seconds, procs, p, s, hung, failover_mode)
            stop_proxy(failover_mode, procs[failover_mode + "-proxy"], d)
            return
        before = run_traffic(proxy, d, img, seconds, ckpts, p)
        hung.verdict()
        cg.wait_for("nothing held or waiting in either proxy 20 s after the traffic", lambda: wait_idle(proxy, d), 20)
        check_checkpoints(proxy, d, ckpts, before)
        print("guest: colo-proxy status (primary):\n" + "\n".join(
            "guest:   " + line for line in control(proxy, d + "/primary.sock").splitlines()), flush=True)
        accounting(stats(proxy, d + "/primary.sock"), stats(proxy, d + "/secondary.sock"))
        operator_view(proxy, d)
        stop_proxy("primary", procs["primary-proxy"], d)
        stop_proxy("secondary", procs["secondary-proxy"], d)
        print("guest: whole run %.0f s" % (time.monotonic() - started), flush=True)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
        for proc in procs.values():
            proc.wait()
        hosts.delete()
        for side in ("pri", "sec"):  # the EAL's runtime directories (empty with --no-shconf)
            subprocess.run(["rm", "-rf", "/var/run/dpdk/%s-%s" % (tag, side)], check=False)
        if cg.FAILURES:
            for name in ("primary-proxy.log", "secondary-proxy.log", "primary-proxy.eal", "secondary-proxy.eal",
                         "primary.log", "secondary.log",
                         "primary.console", "secondary.console"):
                path = os.path.join(d, name)
                if os.path.exists(path):
                    print("---- %s (tail) ----\n%s" % (name, "".join(open(path, errors="replace").readlines()[-25:])))
            print("guest: logs kept in %s" % d)
        elif not os.environ.get("GUEST_WORKDIR"):
            subprocess.run(["rm", "-rf", d], check=False)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("colo_guest_dpdk: terminated"))  # the clean-up still runs
    main()
    sys.exit(1 if cg.FAILURES else 0)
