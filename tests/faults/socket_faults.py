#!/usr/bin/env python3
"""tests/faults/socket_faults.py PROXY — faults thrown at socket mode, each in a fresh process.

Every scenario starts `colo-proxy compare` listening on unix sockets, plays QEMU's side
with the http-identical fixture pair, injects one fault, and then checks what
docs/reliability.md says happens: the proxy keeps running, says so once in its log (not
a flood), and the accounting of its exit summary holds — every PVM record that came in
left on outdev, exactly once (PVM records in = released, and outdev got them all).

  truncated     a secondary_in peer sends half a record and goes; a new peer's stream is
                decoded from scratch
  silent-svm    the SVM sends nothing: after compare_timeout one checkpoint is asked for
                on notify_dev, and everything held is released when it is done
  qmp-garbage   the QMP peer answers with bytes that are not QMP: dropped, reconnected
                with back-off, logged a few times at most, the data path unaffected
  qmp-stall     the QMP peer accepts and never speaks: the data path is unaffected
  qemu-restart  a real QEMU 7.2 behind --qmp is killed and started again: reconnected,
                logged once, the data path carries on
  sigterm       SIGTERM while PVM records are held: they are released, exit status 0
  flood         divergent SVM records for 2 s, checkpoints done at once: requests come no
                faster than --checkpoint-min-interval, and the waits are counted
  colo-exit     PVM records held (a timeout checkpoint asked for, never done), then QMP's
                COLO_EXIT: everything held leaves in order, later PVM records pass straight,
                no further request is sent or counted, status says alone; when QMP says
                COLO again, records are compared (held) again
  secondary-lost  secondary_in's peer goes for good: after --secondary-lost-ms (not before)
                everything held leaves in order, then PVM records pass straight
  secondary-blip  secondary_in's peer goes and comes back within the window: no failover,
                the new peer's records are compared as usual
  rewrite-takeover  `colo-proxy rewrite` with --net_in/--net_out: before the secondary QEMU's
                COLO_EXIT, net_in's frames are dropped and SVM frames go to_primary; after
                it, client frames come from net_in (mirror_in's are dropped) and SVM frames
                leave on net_out
Prints "faults: PASS|FAIL what" per check.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "socket"))
import drive  # noqa: E402  (the pcap reader and record helpers)

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FAILURES = 0


def verdict(what, ok):
    global FAILURES
    FAILURES += not ok
    print("faults: %s %s" % ("PASS" if ok else "FAIL", what), flush=True)


class Proxy:
    """colo-proxy compare listening on unix sockets in a directory of its own."""

    def __init__(self, binary, extra=(), notify=False, qmp=None, compare_timeout=300):
        self.dir = tempfile.mkdtemp()
        self.path = {n: os.path.join(self.dir, n) for n in ("pin", "sin", "out", "nfy")}
        cmd = [binary, "compare", "--compare_timeout", str(compare_timeout)]
        for role, name in (("primary_in", "pin"), ("secondary_in", "sin"), ("outdev", "out")):
            cmd += ["--" + role, "unix:%s,server" % self.path[name]]
        if notify:
            cmd += ["--notify_dev", "unix:%s,server" % self.path["nfy"]]
        if qmp:
            cmd += ["--qmp", "unix:" + qmp]
        self.log = open(os.path.join(self.dir, "log"), "w+")
        self.proc = subprocess.Popen(cmd + list(extra), stderr=self.log)
        self.out = self.connect("out")
        self.pin = self.connect("pin")
        self.sin = self.connect("sin")
        self.nfy = self.connect("nfy") if notify else None

    def connect(self, name, timeout=10):
        deadline = time.time() + timeout
        while True:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.path[name])
                return s
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=20)
        self.log.seek(0)
        return rc, self.log.read()


def summary(log):
    m = re.search(r"PVM records in (\d+), released (\d+)", log)
    return (int(m.group(1)), int(m.group(2))) if m else (-1, -2)


def frames():
    pvm = [f for _, f in drive.read_pcap(os.path.join(TOP, "pcap_fixtures", "http-identical-pvm.pcap"))]
    svm = [f for _, f in drive.read_pcap(os.path.join(TOP, "pcap_fixtures", "http-identical-svm.pcap"))]
    return pvm, svm


def send(sock, frames_):
    sock.sendall(b"".join(drive.record(f, False) for f in frames_))


def truncated(binary):
    pvm, svm = frames()
    p = Proxy(binary, compare_timeout=5000)  # the PVM waits for the new SVM peer: no timeout meanwhile
    send(p.pin, pvm)
    half = drive.record(svm[0], False)
    p.sin.sendall(half[:len(half) // 2])
    p.sin.close()
    time.sleep(0.3)
    p.sin = p.connect("sin")
    send(p.sin, svm)
    out = drive.read_records(p.out, len(pvm), False, 10)
    verdict("truncated: after a peer sent half a record and went, the next peer's %d records matched (%d out)"
            % (len(svm), len(out)), len(out) == len(pvm))
    rc, log = p.stop()
    got_in, released = summary(log)
    verdict("truncated: accounting holds (%d in, %d released), no checkpoint asked for" % (got_in, released),
            rc == 0 and got_in == released == len(pvm) and "checkpoint requested" not in log)


def xen_answerer(sock, seen):
    threading.Thread(target=drive.xen_frame, args=(sock, False, seen), daemon=True).start()


def silent_svm(binary):
    pvm, _ = frames()
    p = Proxy(binary, notify=True)
    seen = []
    xen_answerer(p.nfy, seen)
    p.nfy.sendall(drive.word("COLO_USERSPACE_PROXY_INIT", False))
    send(p.pin, pvm)
    out = drive.read_records(p.out, len(pvm), False, 10)
    rc, log = p.stop()
    requests = log.count("checkpoint requested")
    verdict("silent-svm: nothing from the SVM: %d checkpoint request(s) after compare_timeout, all %d PVM records out"
            % (requests, len(out)), len(out) == len(pvm) and 1 <= requests <= 3 and "timeout" in log)
    got_in, released = summary(log)
    verdict("silent-svm: accounting holds (%d in, %d released)" % (got_in, released),
            rc == 0 and got_in == released == len(pvm))


class BadQmp:
    """A QMP peer that answers garbage, or never speaks."""

    def __init__(self, path, mode):
        self.connections = 0
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(4)
        self.mode, self.held = mode, []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            conn, _ = self.srv.accept()
            self.connections += 1
            if self.mode == "garbage":
                try:
                    conn.sendall(b"\x00\xffnot QMP at all }}}\r\n" * 4)
                except OSError:
                    pass
            else:
                self.held.append(conn)  # accepted, never answered


def bad_qmp(binary, mode):
    pvm, svm = frames()
    qmp = os.path.join(tempfile.mkdtemp(), "qmp.sock")
    server = BadQmp(qmp, mode)
    p = Proxy(binary, qmp=qmp)
    send(p.pin, pvm)
    send(p.sin, svm)
    out = drive.read_records(p.out, len(pvm), False, 10)
    time.sleep(3)
    rc, log = p.stop()
    qmp_lines = len([line for line in log.splitlines() if "qmp" in line.lower()])
    verdict("qmp-%s: the data path is unaffected (%d of %d out); %d QMP connections in 3 s; %d log lines about it"
            % (mode, len(out), len(pvm), server.connections, qmp_lines),
            len(out) == len(pvm) and qmp_lines <= 12 and server.connections <= 12)
    got_in, released = summary(log)
    verdict("qmp-%s: accounting holds (%d in, %d released), exit status %d" % (mode, got_in, released, rc),
            rc == 0 and got_in == released == len(pvm))


def qemu_restart(binary):
    """A real QEMU 7.2's monitor goes away (QEMU killed) and a new QEMU comes up on the same socket."""
    pvm, svm = frames()
    qmp = os.path.join(tempfile.mkdtemp(), "qmp.sock")

    def start_qemu():
        q = subprocess.Popen(["qemu-system-x86_64", "-M", "none", "-nodefaults", "-display", "none",
                              "-qmp", "unix:%s,server=on,wait=off" % qmp], stderr=subprocess.DEVNULL)
        for _ in range(100):
            if os.path.exists(qmp):
                break
            time.sleep(0.05)
        return q

    q = start_qemu()
    p = Proxy(binary, qmp=qmp)
    time.sleep(1)
    q.kill()
    q.wait()
    os.unlink(qmp)
    send(p.pin, pvm[:len(pvm) // 2])
    send(p.sin, svm[:len(svm) // 2])
    time.sleep(1)
    q = start_qemu()
    time.sleep(3)  # the proxy's back-off finds it
    send(p.pin, pvm[len(pvm) // 2:])
    send(p.sin, svm[len(svm) // 2:])
    out = drive.read_records(p.out, len(pvm), False, 10)
    rc, log = p.stop()
    q.kill()
    q.wait()
    connected = log.count("qmp: connected")
    verdict("qemu-restart: QEMU killed and started again: the proxy reconnected (%d connections), lost the "
            "connection once in the log (%d), and the data path carried on (%d of %d out)"
            % (connected, log.count("qmp: lost the connection"), len(out), len(pvm)),
            connected >= 2 and log.count("qmp: lost the connection") == 1 and len(out) == len(pvm))
    got_in, released = summary(log)
    verdict("qemu-restart: accounting holds (%d in, %d released), exit status %d" % (got_in, released, rc),
            rc == 0 and got_in == released == len(pvm))


def sigterm(binary):
    pvm, _ = frames()
    p = Proxy(binary)
    send(p.pin, pvm)  # no SVM: everything is held
    time.sleep(0.2)
    got = []
    reader = threading.Thread(target=lambda: got.extend(drive.read_records(p.out, len(pvm), False, 10)))
    reader.start()
    rc, log = p.stop(signal.SIGTERM)
    reader.join()
    got_in, released = summary(log)
    verdict("sigterm while holding every PVM record: exit status %d, PVM records in %d = released %d, outdev got "
            "%d of %d" % (rc, got_in, released, len(got), len(pvm)),
            rc == 0 and got_in == released == len(got) == len(pvm))
    p = Proxy(binary)
    send(p.pin, pvm)
    time.sleep(0.2)
    rc, log = p.stop(signal.SIGTERM)  # and nobody reads outdev
    verdict("sigterm with an outdev peer that never reads: gives up after its drain limit, says how much, "
            "exit status %d" % rc, rc == 1 and "could not reach outdev" in log)


def flood(binary):
    pvm, svm = frames()
    p = Proxy(binary, extra=["--checkpoint-min-interval", "200"], notify=True)
    seen = []
    xen_answerer(p.nfy, seen)
    p.nfy.sendall(drive.word("COLO_USERSPACE_PROXY_INIT", False))
    bad = [bytearray(f) for f in svm]
    for f in bad:
        if len(f) > 80:
            f[-1] ^= 0xff
    got = []
    reading = threading.Event()
    reading.set()

    def read_out():  # outdev is read all along, or backpressure would stop the flood
        buf = b""
        p.out.settimeout(0.2)
        while reading.is_set():
            try:
                chunk = p.out.recv(1 << 20)
            except socket.timeout:
                continue
            if not chunk:
                return
            buf += chunk
            while len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(buf[:4], "big"):
                n = int.from_bytes(buf[:4], "big")
                got.append(buf[4:4 + n])
                buf = buf[4 + n:]

    reader = threading.Thread(target=read_out)
    reader.start()
    t0, rounds, sent = time.time(), 0, 0
    while time.time() - t0 < 2:  # the same divergent exchange again and again, as new connections
        shift = rounds % 250
        for side, fs in ((p.pin, pvm), (p.sin, bad)):
            moved = []
            for f in fs:
                g = bytearray(f)
                if len(g) > 33 and g[12:14] == b"\x08\x00":
                    g[28] = (g[28] + shift) % 256
                    g[32] = (g[32] + shift) % 256
                moved.append(bytes(g))
            send(side, moved)
        sent += len(pvm)
        rounds += 1
        time.sleep(0.01)
    elapsed = time.time() - t0
    deadline = time.time() + 10
    while len(got) < sent and time.time() < deadline:
        time.sleep(0.1)
    reading.clear()
    reader.join()
    out = got
    rc, log = p.stop()
    requests = seen.count("DO_CHECKPOINT")
    deferred = re.search(r"deferred by checkpoint-min-interval (\d+)", log)
    deferred = int(deferred.group(1)) if deferred else -1
    limit = int(elapsed / 0.2) + 2
    verdict("flood: %d divergent rounds in %.1f s: %d checkpoint requests (at most %d at one per 200 ms), "
            "%d deferred and counted" % (rounds, elapsed, requests, limit, deferred),
            1 <= requests <= limit and deferred >= 1)
    got_in, released = summary(log)
    verdict("flood: accounting holds (%d in, %d released, %d out)" % (got_in, released, len(out)),
            rc == 0 and got_in == released == sent == len(out))


class OutReader:
    """Reads outdev all along: every record, with the time it came."""

    def __init__(self, sock):
        self.sock, self.records, self.times = sock, [], []
        self.running = True
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        buf = b""
        self.sock.settimeout(0.1)
        while self.running:
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(buf[:4], "big"):
                n = int.from_bytes(buf[:4], "big")
                self.records.append(buf[4:4 + n])
                self.times.append(time.monotonic())
                buf = buf[4 + n:]

    def wait_for(self, count, timeout):
        deadline = time.monotonic() + timeout
        while len(self.records) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return len(self.records) >= count

    def stop(self):
        self.running = False
        self.thread.join()


class FakeQmp:
    """A primary QEMU's monitor in COLO: answers every command, counts checkpoint requests, and
    sends COLO_EXIT when told; query-colo-status says "primary" until then, "none" after."""

    def __init__(self, path):
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(1)
        self.conn, self.requests, self.in_colo = None, 0, True
        self.ready = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        self.conn, _ = self.srv.accept()
        self.conn.sendall(b'{"QMP": {"version": {}, "capabilities": []}}\r\n')
        f = self.conn.makefile("rb")
        for line in f:
            try:
                cmd = json.loads(line)
            except ValueError:
                continue
            ret = {}
            if cmd.get("execute") == "query-colo-status":
                ret = {"mode": "primary" if self.in_colo else "none", "last-mode": "none", "reason": "none"}
                self.ready.set()
            elif cmd.get("execute") == "migrate-set-parameters":
                self.requests += 1
            self.conn.sendall((json.dumps({"return": ret, "id": cmd.get("id")}) + "\r\n").encode())

    def colo_exit(self):
        self.in_colo = False
        self.conn.sendall(b'{"event": "COLO_EXIT", "data": {"mode": "primary", "reason": "request"}, '
                          b'"timestamp": {"seconds": 0, "microseconds": 0}}\r\n')


def until_in_log(proxy, text, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(os.path.join(proxy.dir, "log")) as f:  # its own offset: the proxy writes through the other
            if text in f.read():
                return True
        time.sleep(0.05)
    return False


def per_flow(frames_):
    """Each connection's frames in order: what compare keeps when it releases on matches."""
    flows = {}
    for f in frames_:
        flows.setdefault(drive.flow_of(f), []).append(f)
    return flows


def released_at_failover(log):
    m = re.search(r"at failover (\d+), passed alone (\d+)", log)
    return (int(m.group(1)), int(m.group(2))) if m else (-1, -1)


def status_text(binary, control):
    return subprocess.run([binary, "status", "--control", control], capture_output=True, text=True,
                          timeout=10).stdout


def colo_exit(binary):
    pvm, svm = frames()
    qmp = os.path.join(tempfile.mkdtemp(), "qmp.sock")
    fake = FakeQmp(qmp)
    control = os.path.join(tempfile.mkdtemp(), "control.sock")
    p = Proxy(binary, qmp=qmp, extra=["--control", control])
    out = OutReader(p.out)
    verdict("colo-exit: the proxy asked QEMU's COLO status", fake.ready.wait(10))
    send(p.pin, pvm)  # no SVM: held; after compare_timeout one checkpoint is asked for, never done
    deadline = time.monotonic() + 10
    while fake.requests < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)
    held = len(out.records)
    verdict("colo-exit: before COLO_EXIT all %d PVM records are held (%d out) and one checkpoint was asked for "
            "(%d)" % (len(pvm), held, fake.requests), held == 0 and fake.requests == 1)
    exit_at = time.monotonic()
    fake.colo_exit()
    got_all = out.wait_for(len(pvm), 5)
    verdict("colo-exit: at COLO_EXIT every held record left, in order (%d of %d, first after %.0f ms)"
            % (len(out.records), len(pvm), (out.times[0] - exit_at) * 1000 if out.records else -1),
            got_all and out.records[:len(pvm)] == pvm)
    send(p.pin, pvm)  # after the failover: straight through, no SVM needed
    send(p.sin, svm)
    got_all = out.wait_for(2 * len(pvm), 5)
    time.sleep(1)  # longer than compare_timeout: nothing is held, nothing is asked for
    verdict("colo-exit: afterwards PVM records pass straight, in order (%d of %d), no further checkpoint "
            "request sent (%d in all)" % (len(out.records) - len(pvm), len(pvm), fake.requests),
            got_all and out.records[len(pvm):] == pvm and fake.requests == 1)
    table = status_text(binary, control)
    verdict("colo-exit: colo-proxy status says alone (%s)"
            % next((l.strip() for l in table.splitlines() if "alone (" in l), "no state line"),
            "alone (failover: QMP COLO_EXIT, reason request)" in table)
    fake.in_colo = True  # a new secondary: QEMU is in COLO again, secondary_in is connected
    rejoined = until_in_log(p, "comparing again", 5)
    send(p.pin, pvm)
    deadline = time.monotonic() + 10
    while fake.requests < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    verdict("colo-exit: when QEMU is in COLO again it compares again: PVM records held (%d of %d out), a "
            "timeout checkpoint asked for (%d requests in all)" % (len(out.records) - 2 * len(pvm), len(pvm),
                                                                  fake.requests),
            rejoined and len(out.records) == 2 * len(pvm) and fake.requests == 2)
    rc, log = p.stop()  # releases what it holds at exit: outdev is still read
    out.stop()
    got_in, released = summary(log)
    at_failover, alone = released_at_failover(log)
    timeouts = re.search(r"checkpoint requests divergence \d+ timeout (\d+)", log)
    verdict("colo-exit: accounting holds (%d in = %d released: %d at failover, %d passed alone), a timeout "
            "request counted before the failover and after the rejoin only (%s), one failover line, exit status %d"
            % (got_in, released, at_failover, alone, timeouts.group(1) if timeouts else "?", rc),
            rc == 0 and got_in == released == 3 * len(pvm) and at_failover == alone == len(pvm)
            and timeouts is not None and timeouts.group(1) == "2" and log.count("failover: the secondary is gone") == 1)


def secondary_lost(binary):
    pvm, _ = frames()
    window = 1000
    p = Proxy(binary, compare_timeout=60000, extra=["--secondary-lost-ms", str(window)])
    out = OutReader(p.out)
    send(p.pin, pvm)
    time.sleep(0.3)
    held = len(out.records)
    gone_at = time.monotonic()
    p.sin.close()
    got_all = out.wait_for(len(pvm), 10)
    after_ms = (out.times[0] - gone_at) * 1000 if out.records else -1
    verdict("secondary-lost: %d PVM records held while the secondary was there (%d out); its peer went: all "
            "left in order %.0f ms later (window %d ms)" % (len(pvm), held, after_ms, window),
            held == 0 and got_all and out.records == pvm and window <= after_ms < window + 1000)
    send(p.pin, pvm)
    got_all = out.wait_for(2 * len(pvm), 5)
    verdict("secondary-lost: afterwards PVM records pass straight (%d of %d)" % (len(out.records) - len(pvm), len(pvm)),
            got_all and out.records[len(pvm):] == pvm)
    rc, log = p.stop()
    out.stop()
    got_in, released = summary(log)
    at_failover, alone = released_at_failover(log)
    verdict("secondary-lost: accounting holds (%d in = %d released: %d at failover, %d passed alone), the log says "
            "why once, exit status %d" % (got_in, released, at_failover, alone, rc),
            rc == 0 and got_in == released == 2 * len(pvm) and at_failover == alone == len(pvm)
            and log.count("failover: the secondary is gone (secondary_in without a peer for %d ms)" % window) == 1)


def secondary_blip(binary):
    pvm, svm = frames()
    window = 2000
    p = Proxy(binary, compare_timeout=60000, extra=["--secondary-lost-ms", str(window)])
    out = OutReader(p.out)
    send(p.pin, pvm)
    time.sleep(0.3)
    held = len(out.records)
    p.sin.close()
    time.sleep(window / 4000)
    p.sin = p.connect("sin")
    time.sleep(window / 1000)  # past the window counted from the drop: the peer is back, no failover
    still_held = len(out.records)
    send(p.sin, svm)
    got_all = out.wait_for(len(pvm), 10)
    verdict("secondary-blip: the peer went for %d ms of a %d ms window: still held after the window (%d, %d out), "
            "then matched with the new peer's records (%d of %d out, in order per connection)"
            % (window // 4, window, held, still_held, len(out.records), len(pvm)),
            held == still_held == 0 and got_all and per_flow(out.records) == per_flow(pvm))
    rc, log = p.stop()
    out.stop()
    got_in, released = summary(log)
    m = re.search(r"released \d+ \(matched (\d+)", log)
    verdict("secondary-blip: no failover (%d at failover), %s matched, accounting holds (%d in, %d released)"
            % (released_at_failover(log)[0], m.group(1) if m else "?", got_in, released),
            rc == 0 and "failover:" not in log and released_at_failover(log) == (0, 0) and got_in == released == len(pvm)
            and m is not None and int(m.group(1)) > 0)


def udp_frame(n):
    payload = b"takeover %d" % n
    ip = bytes([0x45, 0, 0, 20 + 8 + len(payload), 0, n, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2])
    udp = (4000).to_bytes(2, "big") + (5000).to_bytes(2, "big") + (8 + len(payload)).to_bytes(2, "big") + b"\0\0"
    return b"\x52\x54\x00\x00\x00\x02\x52\x54\x00\x00\x00\x01\x08\x00" + ip + udp + payload


def rewrite_takeover(binary):
    d = tempfile.mkdtemp()
    roles = ("mirror_in", "to_svm", "from_svm", "to_primary", "net_in", "net_out")
    qmp = os.path.join(d, "qmp.sock")
    fake = FakeQmp(qmp)
    cmd = [binary, "rewrite", "--qmp", "unix:" + qmp]
    for r in roles:
        cmd += ["--" + r, "unix:%s,server" % os.path.join(d, r)]
    log = open(os.path.join(d, "log"), "w+")
    proc = subprocess.Popen(cmd, stderr=log)
    p = Proxy.__new__(Proxy)
    p.dir, p.path, p.proc, p.log = d, {r: os.path.join(d, r) for r in roles}, proc, log
    peer = {r: p.connect(r) for r in roles}
    readers = {r: OutReader(peer[r]) for r in ("to_svm", "to_primary", "net_out")}
    verdict("rewrite-takeover: the rewriter asked the secondary QEMU's COLO status", fake.ready.wait(10))

    def exchange(n):
        send(peer["net_in"], [udp_frame(n)])
        send(peer["mirror_in"], [udp_frame(n + 1)])
        send(peer["from_svm"], [udp_frame(n + 2)])
        time.sleep(0.5)
        return {r: [f for f in rd.records if f[-1:] in b"0123456789" and int(f.split(b" ")[-1]) in (n, n + 1, n + 2)]
                for r, rd in readers.items()}

    got = exchange(10)
    verdict("rewrite-takeover: before COLO_EXIT the client's frames come from mirror_in only (to_svm got %d, "
            "net_in's dropped) and SVM frames go to_primary (%d; net_out %d)"
            % (len(got["to_svm"]), len(got["to_primary"]), len(got["net_out"])),
            got["to_svm"] == [udp_frame(11)] and got["to_primary"] == [udp_frame(12)] and not got["net_out"])
    fake.colo_exit()
    took = until_in_log(p, "takeover: the secondary QEMU left COLO", 5)
    got = exchange(20)
    verdict("rewrite-takeover: after COLO_EXIT (logged: %s) client frames come from net_in (to_svm got %d, "
            "mirror_in's dropped) and SVM frames leave on net_out (%d; to_primary %d)"
            % (took, len(got["to_svm"]), len(got["net_out"]), len(got["to_primary"])),
            took and got["to_svm"] == [udp_frame(20)] and got["net_out"] == [udp_frame(22)] and not got["to_primary"])
    for rd in readers.values():
        rd.stop()
    rc, text = p.stop()
    verdict("rewrite-takeover: the summary says taken over, one frame of each side not in use dropped, exit "
            "status %d" % rc, rc == 0 and "taken over; frames of the side not in use dropped: net_in 1, mirror_in 1; "
            "frames out: to_svm 2, to_primary 1, net_out 1" in text)


def main():
    binary = sys.argv[1]
    truncated(binary)
    silent_svm(binary)
    bad_qmp(binary, "garbage")
    bad_qmp(binary, "stall")
    qemu_restart(binary)
    sigterm(binary)
    flood(binary)
    colo_exit(binary)
    secondary_lost(binary)
    secondary_blip(binary)
    rewrite_takeover(binary)
    print("faults: %d failed" % FAILURES)
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
