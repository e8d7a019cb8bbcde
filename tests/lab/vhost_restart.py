#!/usr/bin/env python3
"""vhost_restart.py PROXY WORKDIR — a VM's vhost-user NIC stopping and starting, on a real net_vhost port.

Each host's colo-proxy in turn serves a net_vhost port as the VM's NIC; the "VM" is
dpdk-testpmd with a net_virtio_user port on the same socket, which sends frames
(txonly) for a second and quits, twice: each quit stops the vhost device and each
start brings it up again, as QEMU does at every COLO checkpoint. The other ports are
net_pcap: they replay 100 client frames and record what colo-proxy sends.

The secondary:

Checks: the 100 frames wait while the SVM's port is down and all reach the SVM once it
is up; each start of the SVM puts one epoch marker on the link ahead of everything it
sent after; every frame colo-proxy took from the SVM reaches the link (testpmd may
count more: what was still in its ring when it quit never left it); the restart is
counted; a port
down longer than --vm-down-ms is a dead SVM (event vm-dead svm) and the secondary falls
silent.

The primary: the 100 client frames wait while the PVM's port is down and reach it when
it is up, mirrored to the link meanwhile; a checkpoint-done releases every PVM frame
held to the client port; the restart is counted; a PVM down past --vm-down-ms is dead
(event vm-dead pvm): the frames it held then are never released, not even at shutdown.

Prints "lab: PASS/FAIL ..." lines; the exit status is the number of failures.
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


def count_frames(path):
    data = open(path, "rb").read()
    off, n = 24, 0
    while off + 16 <= len(data):
        off += 16 + struct.unpack("<IIII", data[off:off + 16])[2]
        n += 1
    return n


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

    def send(self, line):
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.path)
        s.sendall(line.encode() + b"\n")
        s.recv(64)
        s.close()

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


def run_vm(work, sock, n):
    """testpmd as the VM: its NIC starts, it sends for a second, it quits (the NIC stops). Returns frames sent."""
    tp = subprocess.Popen(["dpdk-testpmd", "-l", "0,1", "--no-huge", "-m", "256", "--no-pci", "--no-telemetry",
                           "--file-prefix", "vhr-t%d" % os.getpid(), "--log-level=error",
                           "--vdev=net_virtio_user0,path=%s" % os.path.join(work, sock), "--", "-i",
                           "--txd=256", "--rxd=256", "--total-num-mbufs=4096"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tp.stdin.write("set fwd txonly\nset txpkts 64\nstart\n")
    tp.stdin.flush()
    time.sleep(1.0)  # the traffic's length, not a wait for a condition
    out, _ = tp.communicate("stop\nquit\n", timeout=30)
    with open(os.path.join(work, "testpmd-%s-%d.log" % (sock, n)), "w") as f:
        f.write(out)
    sent = re.findall(r"TX-packets:\s+(\d+)", out)
    return int(sent[0]) if sent else -1


def start_proxy(proxy, work, name, vdevs, args):
    control = os.path.join(work, name + ".sock")
    log = open(os.path.join(work, name + ".log"), "w")
    proc = subprocess.Popen([proxy, "run", "-l", "0", "--no-huge", "-m", "256", "--no-pci", "--no-telemetry",
                             "--file-prefix", "vhr-%s%d" % (name, os.getpid()), "--log-level=error"] +
                            ["--vdev=" + v for v in vdevs] +
                            ["--"] + args + ["--heartbeat-ms", "0", "--vm-down-ms", str(VM_DOWN_MS),
                                             "--idle-sleep-us", "50", "--control", control],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 15
    while not os.path.exists(control) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    return proc, log, Control(control)


def stop_proxy(proc, log):
    proc.send_signal(2)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def secondary_case(proxy, work):
    sec, log, ctl = start_proxy(proxy, work, "secondary",
                                ["net_vhost0,iface=%s" % os.path.join(work, "svm.sock"),
                                 "net_pcap0,rx_pcap=%s,tx_pcap=%s" % (os.path.join(work, "client.pcap"),
                                                                     os.path.join(work, "link.pcap"))],
                                ["--role", "secondary", "--svm-port", "net_vhost0", "--link-port", "net_pcap0"])
    try:
        st = ctl.wait_stats(lambda s: s["ports"]["svm"]["tx_pending"] == CLIENT_FRAMES, 5)
        check("secondary: the client's %d frames wait while the SVM's port is down (before the SVM starts)"
              % CLIENT_FRAMES, st["ports"]["svm"]["tx_pending"] == CLIENT_FRAMES and st["ports"]["svm"]["tx"] == 0,
              json.dumps(st["ports"]["svm"]))
        sent = [run_vm(work, "svm.sock", 1)]
        st = ctl.wait_stats(lambda s: not s["ports"]["svm"]["link_up"], 5)
        taken = [st["ports"]["svm"]["rx"]]
        check("secondary: all %d reached the SVM when its port came up" % CLIENT_FRAMES,
              st["ports"]["svm"]["tx"] == CLIENT_FRAMES and st["ports"]["svm"]["held_while_down"] == CLIENT_FRAMES,
              json.dumps(st["ports"]["svm"]))
        sent.append(run_vm(work, "svm.sock", 2))
        st = ctl.wait_stats(lambda s: s["ports"]["svm"]["link_downs"] == 2, 5)
        taken.append(st["ports"]["svm"]["rx"] - taken[0])
        sig = st["checkpoint_signals"]
        check("secondary: the SVM's restart is seen: two downs, one down-then-up, %.0f ms down"
              % sig["last_port_down_ms"],
              st["ports"]["svm"]["link_downs"] == 2 and sig["port_ended"] == 1 and sig["last_port_down_ms"] > 0,
              json.dumps(sig))
        dead = ctl.wait_event("event vm-dead svm", VM_DOWN_MS / 1000 + 3)
        st = ctl.stats()
        check("secondary: the SVM's port down past --vm-down-ms %d: event vm-dead svm, the secondary is silent"
              % VM_DOWN_MS, dead and st["vm_dead"], "event %s, vm_dead %s" % (dead, st["vm_dead"]))
    finally:
        stop_proxy(sec, log)
    shape = link_shape(os.path.join(work, "link.pcap"))
    want = ["M1", "D%d" % taken[0], "M2", "D%d" % taken[1]]
    check("secondary: the link carried marker 1, the SVM's first %d frames, marker 2, its next %d "
          "(testpmd counted %d and %d)" % (taken[0], taken[1], sent[0], sent[1]),
          shape == want and min(taken) > 0 and taken[0] <= sent[0] and taken[1] <= sent[1],
          "link %s, want %s" % (shape, want))


def primary_case(proxy, work):
    out = os.path.join(work, "to-clients.pcap")
    pri, log, ctl = start_proxy(proxy, work, "primary",
                                ["net_pcap0,rx_pcap=%s,tx_pcap=%s" % (os.path.join(work, "client.pcap"), out),
                                 "net_vhost0,iface=%s" % os.path.join(work, "pvm.sock"),
                                 "net_pcap1,rx_pcap=%s,tx_pcap=%s" % (os.path.join(work, "empty.pcap"),
                                                                     os.path.join(work, "mirrored.pcap"))],
                                ["--role", "primary", "--client-port", "net_pcap0", "--pvm-port", "net_vhost0",
                                 "--link-port", "net_pcap1"])
    try:
        st = ctl.wait_stats(lambda s: s["ports"]["pvm"]["tx_pending"] == CLIENT_FRAMES, 5)
        check("primary: the client's %d frames wait while the PVM's port is down, mirrored meanwhile"
              % CLIENT_FRAMES, st["ports"]["pvm"]["tx_pending"] == CLIENT_FRAMES and
              st["ports"]["link"]["tx"] == CLIENT_FRAMES, json.dumps(st["ports"]))
        run_vm(work, "pvm.sock", 1)
        st = ctl.wait_stats(lambda s: not s["ports"]["pvm"]["link_up"], 5)
        check("primary: all %d reached the PVM when its port came up" % CLIENT_FRAMES,
              st["ports"]["pvm"]["tx"] == CLIENT_FRAMES, json.dumps(st["ports"]["pvm"]))
        ctl.send("checkpoint-done")
        st = ctl.wait_stats(lambda s: s["held"] == 0 and s["ports"]["client"]["tx_pending"] == 0, 10)
        released = st["ports"]["client"]["tx"]
        check("primary: a checkpoint-done released every one of the %d PVM frames held" % st["pvm_in"],
              st["held"] == 0 and released == st["pvm_in"] and st["released"]["checkpoint"] == st["pvm_in"] > 0,
              "held %d, released %d of %d" % (st["held"], released, st["pvm_in"]))
        run_vm(work, "pvm.sock", 2)
        st = ctl.wait_stats(lambda s: s["ports"]["pvm"]["link_downs"] == 2, 5)
        sig = st["checkpoint_signals"]
        check("primary: the PVM's restart is a checkpoint in band: two begins, one end, %.0f ms down"
              % sig["last_port_down_ms"], sig["port_began"] == 2 and sig["port_ended"] == 1, json.dumps(sig))
        dead = ctl.wait_event("event vm-dead pvm", VM_DOWN_MS / 1000 + 3)
        st = ctl.stats()
        check("primary: the PVM's port down past --vm-down-ms: event vm-dead pvm; the %d frames it held stay"
              % st["vm_dead_unreleased"], dead and st["vm_dead"] and st["vm_dead_unreleased"] == st["held"] > 0,
              "event %s, vm_dead %s, unreleased %d, held %d" % (dead, st["vm_dead"], st["vm_dead_unreleased"],
                                                                st["held"]))
    finally:
        stop_proxy(pri, log)
    check("primary: the dead PVM's held frames never reached the clients, not even at shutdown (%d sent, all "
          "before)" % released, count_frames(out) == released, "%d in the pcap" % count_frames(out))


def main():
    proxy, work = sys.argv[1], sys.argv[2]
    if subprocess.run(["sh", "-c", "command -v dpdk-testpmd"], capture_output=True).returncode != 0:
        check("dpdk-testpmd is installed (package dpdk-dev)", False, "missing")
        return failures
    write_client_frames(os.path.join(work, "client.pcap"))
    with open(os.path.join(work, "empty.pcap"), "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    secondary_case(proxy, work)
    primary_case(proxy, work)
    return failures


if __name__ == "__main__":
    sys.exit(main())
