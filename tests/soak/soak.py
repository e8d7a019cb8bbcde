#!/usr/bin/env python3
"""tests/soak/soak.py PROXY SECONDS [TOOLS_DIR] — socket mode for a long run, memory and accounting watched.

One `colo-proxy compare` (unix sockets, notify_dev) serves, back to back until SECONDS are
up, replays of the recorded pairs in turn — HTTP, UDP bursts, many connections, and a
pair whose payloads differ (real divergences) — each pass of a replay a new set of
connections (bench/chardev_load, 20 passes, numbered on from the last replay's), with a
checkpoint every 100 ms on QEMU's timer besides the ones the divergences ask for. After each replay it samples the
proxy's resident memory (tests/lab/resident.py: under ASan, what lies outside ASan's shadow
and small-block heap, whose quarantine of freed blocks grows whatever the proxy holds). It
checks that no replay lost or reordered a PVM frame, that the proxy's summary accounts for
every PVM record, and that memory is flat: the resident size at the end is within 8 MiB of
the largest seen in the first quarter (the connection table and record slot pools are
allocated up front and kept; what grows after warm-up is a leak). CI runs 60 s of it
under each build; docs/reliability.md records longer runs.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(TOP, "tests", "lab"))
from resident import resident_kib  # noqa: E402
PAIRS = ("http-identical", "udp-burst", "many-connections", "http-payload-differs", "ipv6-identical")


def main():
    proxy, seconds = sys.argv[1], float(sys.argv[2])
    tools = sys.argv[3] if len(sys.argv) > 3 else os.path.join(TOP, "build-release", "bench")
    d = tempfile.mkdtemp()
    ep = {n: os.path.join(d, n) for n in ("pin", "sin", "out", "nfy")}
    log = open(os.path.join(d, "log"), "w+")
    proc = subprocess.Popen([proxy, "compare", "--primary_in", "unix:%s,server" % ep["pin"],
                             "--secondary_in", "unix:%s,server" % ep["sin"], "--outdev", "unix:%s,server" % ep["out"],
                             "--notify_dev", "unix:%s,server" % ep["nfy"]], stderr=log)
    time.sleep(0.5)
    t0, samples, replays, bad, sent, requests, periodic = time.time(), [], 0, 0, 0, 0, 0
    while time.time() - t0 < seconds:
        name = PAIRS[replays % len(PAIRS)]
        pair = [os.path.join(TOP, "pcap_fixtures", "%s-%s.pcap" % (name, side)) for side in ("pvm", "svm")]
        out = subprocess.run([os.path.join(tools, "chardev_load"), ep["pin"], ep["sin"], ep["out"], str(proc.pid),
                              "--pcap-pvm", pair[0], "--pcap-svm", pair[1], "--loops", "20",
                              "--first-pass", str(replays * 20 % 65536),
                              "--notify", ep["nfy"], "--periodic-checkpoint-ms", "100"],
                             capture_output=True, text=True, timeout=120).stdout.split()
        replays += 1
        if len(out) < 8 or out[3] != "0" or out[4] != "0":
            bad += 1
            print("soak: replay %d of %s: %s" % (replays, name, " ".join(out)), flush=True)
        else:
            sent += int(out[2])
            requests += int(out[5])
            periodic += int(out[7])
        kib, counted = resident_kib(proc.pid)
        samples.append((time.time() - t0, kib))
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=30)
    log.seek(0)
    text = log.read()
    m = re.search(r"PVM records in (\d+), released (\d+)", text)
    got_in, released = (int(m.group(1)), int(m.group(2))) if m else (-1, -2)
    warm = [kib for t, kib in samples if t <= seconds / 4] or [samples[0][1]]
    end = samples[-1][1]
    failures = 0

    def verdict(what, ok):
        nonlocal failures
        failures += not ok
        print("soak: %s %s" % ("PASS" if ok else "FAIL", what), flush=True)

    verdict("%d replays in %.0f s (%d PVM frames released, %d checkpoints asked for, %d periodic): none lost "
            "or reordered a frame" % (replays, time.time() - t0, sent, requests, periodic), bad == 0 and replays > 0)
    verdict("the proxy's summary accounts for every PVM record (%d in, %d released), exit status %d"
            % (got_in, released, rc), rc == 0 and got_in == released == sent)
    verdict("memory flat: %d KiB at most in the first quarter, %d KiB at the end (%d samples; %s)"
            % (max(warm), end, len(samples), counted), end <= max(warm) + 8192)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
