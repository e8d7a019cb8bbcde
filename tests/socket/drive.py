#!/usr/bin/env python3
"""drive.py PROXY PVM.pcap SVM.pcap [--vnet] [--qmp ADDR] [--notify] [--flaky-qmp]
— plays QEMU's side of socket mode.

Starts `colo-proxy compare` the way COLO-FT wires colo-compare: the proxy
connects to our primary_in and outdev servers, and listens for secondary_in,
which we connect to (as the secondary's filter-redirector does). We send every
PVM and SVM frame of a fixture pair as chardev records, in timestamp order, and
read outdev: every PVM record must come out exactly once, byte for byte, in its
flow's order. Then a bad peer on secondary_in (a record over 69632 bytes) must
be disconnected without disturbing the proxy, which must carry on.
With --notify we also play the Xen COLO frame on notify_dev: the handshake
must be answered, and every DO_CHECKPOINT is answered with COLO_CHECKPOINT.
With --flaky-qmp we serve a QMP monitor that dies at the first checkpoint
request (as if QEMU's QMP side were killed) and behaves once reconnected: the
proxy must reconnect, ask again, and release everything.
"""
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time


FAILURES = 0


def verdict(what, ok):
    global FAILURES
    print("socket: %s %s" % ("PASS" if ok else "FAIL", what), flush=True)
    FAILURES += not ok


def read_pcap(path):
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    scale = 1000 if magic == 0xA1B2C3D4 else 1
    frames, off = [], 24
    while off + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack("<IIII", data[off:off + 16])
        frames.append((sec * 1000000000 + frac * scale, data[off + 16:off + 16 + caplen]))
        off += 16 + caplen
    return frames


def record(frame, vnet):
    if vnet:
        body = b"\x01" + b"\0" * 11 + frame  # NEEDS_CSUM, as a PVM's frames mostly carry
        return struct.pack("!II", len(body), 12) + body
    return struct.pack("!I", len(frame)) + frame


def flow_of(frame):
    """A flow key good enough for ordering checks: the bytes that name the 5-tuple."""
    return frame[12:14] + frame[26:38] if frame[12:14] == b"\x08\x00" else frame[12:60]


def listen():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s, s.getsockname()[1]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def connect(port, timeout=10):
    deadline = time.time() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), 1)
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def read_records(sock, count, vnet, timeout):
    sock.settimeout(0.5)
    buf, out, deadline = b"", [], time.time() + timeout
    hs = 8 if vnet else 4
    while len(out) < count and time.time() < deadline:
        try:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
        except socket.timeout:
            continue
        while len(buf) >= hs:
            n = struct.unpack("!I", buf[:4])[0]
            if len(buf) < hs + n:
                break
            out.append(buf[hs:hs + n][12:] if vnet else buf[hs:hs + n])
            buf = buf[hs + n:]
    return out


def word(text, vnet):
    """A notify_dev word as the frame sends it (with the vnet field when it is on)."""
    body = text.encode()
    return struct.pack("!II", len(body), 0) + body if vnet else struct.pack("!I", len(body)) + body


def xen_frame(sock, vnet, seen):
    """Answers every DO_CHECKPOINT with COLO_CHECKPOINT; records the words the proxy sent."""
    buf = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except OSError:
            return
        if not chunk:
            return
        buf += chunk
        while len(buf) >= 4:  # the proxy writes words without the vnet field, as QEMU does
            n = struct.unpack("!I", buf[:4])[0]
            if len(buf) < 4 + n:
                break
            text = buf[4:4 + n].decode()
            buf = buf[4 + n:]
            seen.append(text)
            if text == "DO_CHECKPOINT":
                time.sleep(0.05)
                sock.sendall(word("COLO_CHECKPOINT", vnet))


class FlakyQmp:
    """A COLO primary's QMP monitor that drops the first checkpoint request's connection."""

    def __init__(self, path):
        self.path, self.connections, self.requests = path, 0, 0
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(2)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            conn, _ = self.srv.accept()
            self.connections += 1
            self.session(conn)

    def session(self, conn):
        f = conn.makefile("rb")
        conn.sendall(b'{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}}, "capabilities": []}}\r\n')
        for line in f:
            msg = json.loads(line)
            ident = json.dumps(msg.get("id"))
            cmd = msg.get("execute")
            if cmd == "query-colo-status":
                reply = '{"return": {"mode": "primary", "last-mode": "none", "reason": "none"}, "id": %s}' % ident
                conn.sendall(reply.encode() + b"\r\n")
            elif cmd == "migrate-set-parameters":
                self.requests += 1
                if self.requests == 1:
                    conn.close()  # killed before it could checkpoint
                    return
                conn.sendall(('{"return": {}, "id": %s}\r\n' % ident).encode())
                conn.sendall(b'{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 0}}\r\n')
                time.sleep(0.05)
                conn.sendall(b'{"event": "RESUME", "timestamp": {"seconds": 1, "microseconds": 50000}}\r\n')
            else:
                conn.sendall(('{"return": {}, "id": %s}\r\n' % ident).encode())


def main():
    proxy, pvm_path, svm_path = sys.argv[1:4]
    vnet = "--vnet" in sys.argv
    qmp = sys.argv[sys.argv.index("--qmp") + 1] if "--qmp" in sys.argv else None
    pvm, svm = read_pcap(pvm_path), read_pcap(svm_path)
    pin, pin_port = listen()
    out, out_port = listen()
    sin_port = free_port()
    cmd = [proxy, "compare", "--primary_in", "tcp:127.0.0.1:%d" % pin_port,
           "--secondary_in", "tcp:127.0.0.1:%d,server" % sin_port, "--outdev", "tcp:127.0.0.1:%d" % out_port]
    if vnet:
        cmd.append("--vnet_hdr_support")
    if qmp:
        cmd += ["--qmp", qmp, "--checkpoint-period-ms", "2000"]
    flaky = None
    if "--flaky-qmp" in sys.argv:
        path = "/tmp/colo-flaky-qmp-%d.sock" % os.getpid()
        flaky = FlakyQmp(path)
        cmd += ["--qmp", "unix:" + path]
    notify = "--notify" in sys.argv
    if notify:
        nfy, nfy_port = listen()
        cmd += ["--notify_dev", "tcp:127.0.0.1:%d" % nfy_port]
    proc = subprocess.Popen(cmd, stderr=open(os.environ.get("DRIVE_LOG", "/dev/null"), "w"))
    try:
        pin.settimeout(10)
        out.settimeout(10)
        p_sock, _ = pin.accept()
        o_sock, _ = out.accept()
        s_sock = connect(sin_port)
        words = []
        if notify:
            nfy.settimeout(10)
            n_sock, _ = nfy.accept()
            n_sock.sendall(word("COLO_USERSPACE_PROXY_INIT", vnet))
            threading.Thread(target=xen_frame, args=(n_sock, vnet, words), daemon=True).start()
        merged = sorted([(ts, 0, i, f) for i, (ts, f) in enumerate(pvm)] +
                        [(ts, 1, i, f) for i, (ts, f) in enumerate(svm)])
        for _, side, _, frame in merged:
            (p_sock if side == 0 else s_sock).sendall(record(frame, vnet))
        got = read_records(o_sock, len(pvm), vnet, 20)
        want = [f for _, f in pvm]
        ok = len(got) == len(want) and sorted(got) == sorted(want)
        order = all([g for g in got if flow_of(g) == k] == [w for w in want if flow_of(w) == k]
                     for k in set(flow_of(w) for w in want))
        verdict("%s: %d of %d PVM records out, exactly once and in flow order"
                % (os.path.basename(pvm_path), len(got), len(want)), ok and order)
        if flaky:
            verdict("the QMP side died at the request; the proxy reconnected (%d connections) and asked again (%d requests)"
                    % (flaky.connections, flaky.requests), flaky.connections >= 2 and flaky.requests >= 2)
        if notify:
            verdict("notify_dev: the handshake was answered and checkpoints were asked for (%s)"
                    % ", ".join(sorted(set(words))),
                    "COLO_COMPARE_GET_XEN_INIT" in words and "DO_CHECKPOINT" in words)
        # A bad peer on secondary_in: a record over QEMU's limit. It must go; the proxy must carry on.
        bad = connect(sin_port)
        bad.sendall(struct.pack("!II", 70000, 0) if vnet else struct.pack("!I", 70000))
        time.sleep(0.3)
        bad.settimeout(2)
        try:
            closed = bad.recv(1) == b""
        except OSError:
            closed = True
        alive = proc.poll() is None
        verdict("a bad secondary_in peer is disconnected and the proxy carries on", closed and alive)
        # The secondary comes back (as filter-redirector's reconnect=1 would): frames flow again.
        s_sock = connect(sin_port)
        frame = pvm[-1][1]
        p_sock.sendall(record(frame, vnet))
        s_sock.sendall(record(frame, vnet))
        again = read_records(o_sock, 1, vnet, 10)
        verdict("after the secondary reconnected, frames flow again", len(again) == 1)
        # outdev goes away mid-stream: what is released meanwhile waits, and the next outdev peer
        # gets it whole, exactly once, in order.
        o_sock.close()
        time.sleep(0.2)
        tail = [f for _, f in pvm[-10:]]
        for frame in tail:
            p_sock.sendall(record(frame, vnet))
            s_sock.sendall(record(frame, vnet))
        time.sleep(0.2)
        o_sock, _ = out.accept()
        parked = read_records(o_sock, len(tail), vnet, 10)
        verdict("outdev reconnected: the %d frames released while it was away came out whole and in order"
                % len(parked), parked == tail)
        # primary_in goes away and comes back (the primary QEMU restarted its chardev): frames flow again.
        p_sock.close()
        p_sock, _ = pin.accept()
        p_sock.sendall(record(frame, vnet))
        s_sock.sendall(record(frame, vnet))
        verdict("primary_in reconnected: frames flow again", len(read_records(o_sock, 1, vnet, 10)) == 1)
    finally:
        proc.terminate()
        rc = proc.wait(timeout=10)
        verdict("colo-proxy stopped cleanly on SIGTERM (exit status %d)" % rc, rc == 0)
        if flaky:
            os.unlink(flaky.path)
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
