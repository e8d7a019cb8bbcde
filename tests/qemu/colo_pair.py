#!/usr/bin/env python3
"""colo_pair.py DIR PERIOD_MS — a real QEMU 7.2 COLO pair on this machine, no guest.

Starts two `qemu-system-x86_64 -M none` processes: a secondary with -incoming,
and a primary, each with two QMP sockets (DIR/pri.qmp and DIR/sec.qmp for this
script, DIR/proxy.qmp and DIR/sec-proxy.qmp for colo-proxy, as a QMP socket
serves one client at a time). Enables x-colo on
both, sets the primary's x-checkpoint-delay to PERIOD_MS, migrates, and waits
for the `colo` state. Then prints "ready" and keeps the pair up until it gets
SIGTERM or its stdin closes; the QEMUs go with it.
After ready, lines on stdin: "failover" triggers x-colo-lost-heartbeat on the
primary; "status" prints both sides' query-colo-status as one JSON line.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time


class Qmp:
    def __init__(self, path, timeout=10):
        deadline = time.time() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(path)
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("colo_pair: no QMP socket at %s" % path)
                time.sleep(0.05)
        self.f = self.s.makefile("r")
        self.f.readline()  # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.s.sendall((json.dumps(msg) + "\n").encode())
        while True:
            reply = json.loads(self.f.readline())
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise SystemExit("colo_pair: %s failed: %s" % (name, reply["error"]["desc"]))


def qemu(*args):
    return subprocess.Popen(["qemu-system-x86_64", "-M", "none", "-nodefaults", "-display", "none",
                             "-S"] + list(args), stdin=subprocess.DEVNULL)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    d, period = sys.argv[1], int(sys.argv[2])
    port = free_port()
    sec = qemu("-qmp", "unix:%s/sec.qmp,server=on,wait=off" % d,
               "-qmp", "unix:%s/sec-proxy.qmp,server=on,wait=off" % d, "-incoming", "tcp:127.0.0.1:%d" % port)
    pri = qemu("-qmp", "unix:%s/pri.qmp,server=on,wait=off" % d,
               "-qmp", "unix:%s/proxy.qmp,server=on,wait=off" % d)

    def stop(*_):
        for q in (pri, sec):
            q.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    s = Qmp(d + "/sec.qmp")
    s.cmd("migrate-set-capabilities", capabilities=[{"capability": "x-colo", "state": True}])
    p = Qmp(d + "/pri.qmp")
    p.cmd("migrate-set-capabilities", capabilities=[{"capability": "x-colo", "state": True}])
    p.cmd("migrate-set-parameters", **{"x-checkpoint-delay": period})
    p.cmd("cont")
    p.cmd("migrate", uri="tcp:127.0.0.1:%d" % port)
    deadline = time.time() + 20
    while p.cmd("query-colo-status")["mode"] != "primary":
        if time.time() > deadline:
            print("colo_pair: the pair did not reach the colo state", file=sys.stderr)
            stop()
        time.sleep(0.05)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "failover":
            p.cmd("x-colo-lost-heartbeat")
            print("failover", flush=True)
        elif line.strip() == "status":
            print(json.dumps({"primary": p.cmd("query-colo-status"), "secondary": s.cmd("query-colo-status")}),
                  flush=True)
    stop()


if __name__ == "__main__":
    main()
