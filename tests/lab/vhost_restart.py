#!/usr/bin/env python3
"""vhost_restart.py PROXY WORKDIR — the SVM's vhost-user NIC stopping and starting, on a real net_vhost port.

A secondary colo-proxy serves a net_vhost port; the "SVM" is dpdk-testpmd with a
net_virtio_user port on the same socket, which sends frames (txonly) for a second and
quits, twice: each quit stops the vhost device and each start brings it up again, as
QEMU does at every COLO checkpoint. The link port is net_pcap: it replays 100 client
frames for the SVM and records what the secondary sends toward the primary.

Checks: the 100 frames wait while the SVM's port is down and all reach the SVM once it
is up; each start of the SVM puts one epoch marker on the link ahead of everything it
sent after; every frame colo-proxy took from the SVM reaches the link (testpmd may
count more: what was still in its ring when it quit never left it); the restart is
counted; a port
down longer than --vm-down-ms is a dead SVM (event vm-dead svm) and the secondary falls
silent. Prints "lab: PASS/FAIL ..." lines; the exit status is the number of failures.
"""
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time

VM_DOWN_MS = 1500
CLIENT_FRAMES = 100
failures = 0


def check(what, ok, detail=""):
    global failures
    print("lab: %s %s%s" % ("PASS" if ok else "FAIL", what, "" if ok else " (%s)" % detail), flush=True)
    failures += not ok


def write_client_frames(path):
    """UDP frames from a client to the VM's MAC, as the primary mirrors them."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i in range(CLIENT_FRAMES):
        payload = b"hello-%03d" % i
        udp = struct.pack("!HHHH", 40000, 7, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0, bytes([10, 0, 0, 1]),
                         bytes([10, 0, 0, 2]))
        frame = bytes.fromhex("525400770002" "020000000001" "0800") + ip + udp
        out.append(struct.pack("<IIII", 0, i, len(frame), len(frame)) + frame)
    with open(path, "wb") as f:
        f.write(b"".join(out))


def link_shape(path):
    """What the link carried: 'M<epoch>' for a marker, 'D<n>' for a run of n data frames."""
    data = open(path, "rb").read()
    off, shape = 24, []
    while off + 16 <= len(data):
        incl = struct.unpack("<IIII", data[off:off + 16])[2]
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(frame) >= 26 and frame[12:14] == b"\x88\xb6":
            shape.append("M%d" % struct.unpack("!I", frame[22:26])[0])
        elif shape and shape[-1].startswith("D"):
            shape[-1] = "D%d" % (int(shape[-1][1:]) + 1)
        else:
            shape.append("D1")
    return shape


class Control:
    def __init__(self, path):
        self.path = path
        self.events = socket.socket(socket.AF_UNIX)
        self.events.connect(path)
        self.events.settimeout(0.1)
        self.pending = b""

    def stats(self):
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.path)
        s.sendall(b"stats\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        s.close()
        return json.loads(buf)

    def wait_event(self, line, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                self.pending += self.events.recv(4096)
            except socket.timeout:
                pass
            if line.encode() in self.pending:
                return True
        return False

    def wait_stats(self, cond, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            st = self.stats()
            if cond(st):
                return st
            time.sleep(0.02)
        return self.stats()


def run_svm(work, n):
    """testpmd as the SVM: its NIC starts, it sends for a second, it quits (the NIC stops). Returns frames sent."""
    tp = subprocess.Popen(["dpdk-testpmd", "-l", "0,1", "--no-huge", "-m", "256", "--no-pci", "--no-telemetry",
                           "--file-prefix", "vhr-t%d" % os.getpid(), "--log-level=error",
                           "--vdev=net_virtio_user0,path=%s" % os.path.join(work, "vh.sock"), "--", "-i",
                           "--txd=256", "--rxd=256", "--total-num-mbufs=4096"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tp.stdin.write("set fwd txonly\nset txpkts 64\nstart\n")
    tp.stdin.flush()
    time.sleep(1.0)  # the traffic's length, not a wait for a condition
    out, _ = tp.communicate("stop\nquit\n", timeout=30)
    with open(os.path.join(work, "testpmd%d.log" % n), "w") as f:
        f.write(out)
    sent = re.findall(r"TX-packets:\s+(\d+)", out)
    return int(sent[0]) if sent else -1


def main():
    proxy, work = sys.argv[1], sys.argv[2]
    if subprocess.run(["sh", "-c", "command -v dpdk-testpmd"], capture_output=True).returncode != 0:
        check("dpdk-testpmd is installed (package dpdk-dev)", False, "missing")
        return failures
    write_client_frames(os.path.join(work, "client.pcap"))
    control = os.path.join(work, "vhr.sock")
    log = open(os.path.join(work, "vhost-secondary.log"), "w")
    sec = subprocess.Popen([proxy, "run", "-l", "0", "--no-huge", "-m", "256", "--no-pci", "--no-telemetry",
                            "--file-prefix", "vhr-s%d" % os.getpid(), "--log-level=error",
                            "--vdev=net_vhost0,iface=%s" % os.path.join(work, "vh.sock"),
                            "--vdev=net_pcap0,rx_pcap=%s,tx_pcap=%s" % (os.path.join(work, "client.pcap"),
                                                                       os.path.join(work, "link.pcap")),
                            "--", "--role", "secondary", "--svm-port", "net_vhost0", "--link-port", "net_pcap0",
                            "--heartbeat-ms", "0", "--vm-down-ms", str(VM_DOWN_MS), "--idle-sleep-us", "50",
                            "--control", control], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 15
        while not os.path.exists(control) and time.time() < deadline and sec.poll() is None:
            time.sleep(0.05)
        ctl = Control(control)
        st = ctl.wait_stats(lambda s: s["ports"]["svm"]["tx_pending"] == CLIENT_FRAMES, 5)
        check("the client's %d frames wait while the SVM's port is down (before the SVM starts)" % CLIENT_FRAMES,
              st["ports"]["svm"]["tx_pending"] == CLIENT_FRAMES and st["ports"]["svm"]["tx"] == 0,
              json.dumps(st["ports"]["svm"]))
        sent = [run_svm(work, 1)]
        st = ctl.wait_stats(lambda s: not s["ports"]["svm"]["link_up"], 5)
        taken = [st["ports"]["svm"]["rx"]]
        check("all %d reached the SVM when its port came up" % CLIENT_FRAMES,
              st["ports"]["svm"]["tx"] == CLIENT_FRAMES and st["ports"]["svm"]["held_while_down"] == CLIENT_FRAMES,
              json.dumps(st["ports"]["svm"]))
        sent.append(run_svm(work, 2))
        st = ctl.wait_stats(lambda s: s["ports"]["svm"]["link_downs"] == 2, 5)
        taken.append(st["ports"]["svm"]["rx"] - taken[0])
        sig = st["checkpoint_signals"]
        check("the SVM's restart is seen: two downs, one down-then-up, %.0f ms down" % sig["last_port_down_ms"],
              st["ports"]["svm"]["link_downs"] == 2 and sig["port_ended"] == 1 and sig["last_port_down_ms"] > 0,
              json.dumps(sig))
        dead = ctl.wait_event("event vm-dead svm", VM_DOWN_MS / 1000 + 3)
        st = ctl.stats()
        check("the SVM's port down past --vm-down-ms %d: event vm-dead svm, the secondary is silent" % VM_DOWN_MS,
              dead and st["vm_dead"], "event %s, vm_dead %s" % (dead, st["vm_dead"]))
    finally:
        sec.send_signal(2)
        try:
            sec.wait(timeout=15)
        except subprocess.TimeoutExpired:
            sec.kill()
            sec.wait()
        log.close()
    shape = link_shape(os.path.join(work, "link.pcap"))
    want = ["M1", "D%d" % taken[0], "M2", "D%d" % taken[1]]
    check("the link carried marker 1, the SVM's first %d frames, marker 2, its next %d (testpmd counted %d and %d)"
          % (taken[0], taken[1], sent[0], sent[1]),
          shape == want and min(taken) > 0 and taken[0] <= sent[0] and taken[1] <= sent[1],
          "link %s, want %s" % (shape, want))
    return failures


if __name__ == "__main__":
    sys.exit(main())
