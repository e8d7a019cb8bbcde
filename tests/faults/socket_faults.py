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
Prints "faults: PASS|FAIL what" per check.
"""
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


def main():
    binary = sys.argv[1]
    truncated(binary)
    silent_svm(binary)
    bad_qmp(binary, "garbage")
    bad_qmp(binary, "stall")
    qemu_restart(binary)
    sigterm(binary)
    flood(binary)
    print("faults: %d failed" % FAILURES)
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
