#!/usr/bin/env python3
"""bench/run.py — every benchmark in one run, side by side with QEMU 7.2's colo-compare.

Called by bench/run (which installs and builds first). Runs each scenario RUNS times,
keeps every figure of every run, and reports the median with the min–max spread:

  engine       the compare engine alone, packets in memory (bench_engine): packets/s by
               payload and connections, bytes per connection; and each trace pair through it
  pipeline     the DPDK data plane on in-memory ring ports (bench_pipeline), beside a bare DPDK
               forwarding loop over the same ports, and the hold it adds
  memif        two processes, primary and secondary, joined by net_memif (bench_pipeline memif-*)
  socket       socket mode vs QEMU's colo-compare vs a plain relay (socket_ceiling: nothing
               compared), same C load generator (chardev_load), by payload, over TCP and unix sockets
  connections  socket mode vs QEMU by number of flows (QEMU wipes its table at 16384)
  latency      hold latency added to matching packets at a fixed rate, p50/p99/p99.9 and CDF
  traces       recorded PVM/SVM pairs (pcap_fixtures/, or --pcap PVM.pcap SVM.pcap), many passes
               as new connections, socket mode vs QEMU, checkpoints taken at once on notify_dev
  divergence   throughput and checkpoint requests by divergence rate, the load generator
               answering each request at once on notify_dev, and the time from a divergent
               record to the next request
  hashflood    the connection table under tuples crafted to collide (hash_flood): insert and
               lookup cost of random tuples, of tuples colliding under the old unseeded hash
               and of tuples colliding under a known key, at 1,000, 65,536 and 1,000,000
Every socket-mode scenario replays a PVM/SVM pcap pair: bench/make_trace writes each
synthetic scenario's pair into a temporary directory, and chardev_load replays pairs,
checks each released frame against the PVM records sent (lost, reordered within a
connection, foreign) and plays COLO's checkpoints.

Writes bench/results/<date>/results.json, summary.md and PNG plots (gnuplot), and
replaces the generated part of docs/benchmarks.md (or of --page PATH, plots beside it in
bench/). Every figure on that part comes from this one run. `--report DIR` renders an
earlier run again. `--quick` and `--smoke` are smaller runs to try the tools and the page
(their figures are not for publishing: the page says which size ran). It never asserts a
speed: it reports.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(TOP, "build-release")
LOAD = os.path.join(BUILD, "bench", "chardev_load")
BEGIN, END = "<!-- bench/run: begin -->", "<!-- bench/run: end -->"

# How big each scenario is: the full run is what the page publishes.
SIZES = {
    "full": {"socket": 600000, "flows": (1, 100, 10000, 20000), "latency": 50000, "trace_loops": 200,
             "divergence": 500000, "diverge_every": (0, 100000, 10000, 1000, 100), "transports": ("tcp", "unix")},
    "quick": {"socket": 300000, "flows": (1, 100, 10000, 20000), "latency": 20000, "trace_loops": 40,
              "divergence": 200000, "diverge_every": (0, 100000, 10000, 1000, 100), "transports": ("tcp",)},
    "smoke": {"socket": 20000, "flows": (1, 100, 2000), "latency": 2000, "trace_loops": 2,
              "divergence": 20000, "diverge_every": (0, 1000, 100), "transports": ("tcp", "unix")},
}
SCENARIOS = ("engine", "pipeline", "memif", "socket", "connections", "latency", "traces", "divergence", "hashflood")
PAYLOADS = (64, 512, 1460)
# Goals the project set itself; the page says, from the run's figures, whether each is met.
TARGET_SOCKET_RATIO = 10
TARGET_FLOOD_RATIO = 2
FLOOD_CONNS = (1000, 65536, 1000000)
FLOOD_SETS = ("random", "old-hash", "known-key")


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw).stdout


def machine(mode, args):
    cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read())
    mem = int(re.search(r"MemTotal:\s*(\d+)", open("/proc/meminfo").read()).group(1)) // 1024
    dirty = sh(["git", "-C", TOP, "status", "--porcelain", "--untracked-files=no"]).strip()
    return {
        "cpu": cpu.group(1).strip() if cpu else "unknown", "cores": os.cpu_count(), "memory_mib": mem,
        "kernel": os.uname().release, "load_at_start": open("/proc/loadavg").read().split()[0],
        "dpdk_memory": mode, "dpdk": sh(["pkg-config", "--modversion", "libdpdk"]).strip(),
        "qemu": sh(["qemu-system-x86_64", "--version"]).splitlines()[0],
        "commit": (sh(["git", "-C", TOP, "rev-parse", "--short", "HEAD"]).strip() or "none") +
                  ("+changes" if dirty else ""),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["bench/run"] + sys.argv[1:]), "size": args.size,
    }


def dpdk_memory():
    """Hugepages when they can be had (--in-memory), --no-huge otherwise."""
    try:
        if int(open("/proc/sys/vm/nr_hugepages").read()) < 1024:  # 2 MiB pages: two 512 MiB processes (memif)
            open("/proc/sys/vm/nr_hugepages", "w").write("1024")
        free = int(re.search(r"HugePages_Free:\s*(\d+)", open("/proc/meminfo").read()).group(1))
        if free >= 512:
            return "--in-memory -m 512"
    except OSError:
        pass
    return "--no-huge -m 1024"


class Figures:
    """Every run's value for each named figure."""

    def __init__(self):
        self.values = {}

    def add(self, name, value):
        self.values.setdefault(name, []).append(float(value))

    def summary(self):
        return {k: {"median": statistics.median(v), "min": min(v), "max": max(v), "runs": v}
                for k, v in sorted(self.values.items())}


# ---- scenarios ----

def engine(fig, args):
    out = sh([os.path.join(BUILD, "bench", "bench_engine")])
    for payload, conns, mpps in re.findall(r"^(\d+)\s+(\d+)\s+([\d.]+)\s+[\d.]+\s+\d+%", out, re.M):
        fig.add("engine/pps/%s/%s" % (payload, conns), float(mpps) * 1e6)
    m = re.search(r"^memory: (\d+) idle connections.*?([\d.]+) bytes/connection allocated.*?([\d.]+) "
                  r"bytes/connection resident", out, re.M)
    if m:
        fig.add("engine/capacity", m.group(1))
        fig.add("engine/bytes_per_conn", m.group(2))
        fig.add("engine/resident_per_conn", m.group(3))
    m = re.search(r"^parse: ([\d.]+) ns", out, re.M)
    if m:
        fig.add("engine/parse_ns", m.group(1))
    for name, pvm, svm in trace_pairs(args):
        m = re.search(r"([\d.]+) Mpps compared", sh([os.path.join(BUILD, "bench", "bench_engine"), "--pcap", pvm, svm]))
        if m:
            fig.add("traces/engine/%s/pps" % name, float(m.group(1)) * 1e6)


def hashflood(fig):
    out = sh([os.path.join(BUILD, "bench", "hash_flood")] + [str(c) for c in FLOOD_CONNS])
    for conns, name, refused, ins, look, bystand in re.findall(
            r"^(\d+)\s+(random|old-hash|known-key)\s+\d+\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", out, re.M):
        base = "hashflood/%s/%s/" % (conns, name)
        for key, v in (("refused", refused), ("insert_ns", ins), ("lookup_ns", look), ("bystander_ns", bystand)):
            fig.add(base + key, v)


def pipeline(fig, mode):
    out = sh([os.path.join(BUILD, "bench", "bench_pipeline")] + mode.split() +
             ["--no-pci", "--no-telemetry", "--log-level=error", "-l", "0", "--file-prefix", "colo-run-%d" % os.getpid()])
    for role, payload, mpps in re.findall(r"^(primary|secondary|ceiling)\s+(\d+)\s+([\d.]+)", out, re.M):
        fig.add("pipeline/%s/pps/%s" % ("forward" if role == "ceiling" else role, payload), float(mpps) * 1e6)
    for payload, p50, p99, p999 in re.findall(r"^hold\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", out, re.M):
        for name, v in (("p50", p50), ("p99", p99), ("p999", p999)):
            fig.add("pipeline/hold/%s/%s_us" % (payload, name), v)


def memif(fig, mode):
    """Primary and secondary as two processes on two lcores, their link a net_memif."""
    bench = os.path.join(BUILD, "bench", "bench_pipeline")
    eal = mode.split() + ["--no-pci", "--no-telemetry", "--log-level=error"]
    for payload in (64, 1460):
        sock = "/tmp/colo-run-memif-%d.sock" % os.getpid()
        primary = subprocess.Popen([bench] + eal + ["-l", "0", "--file-prefix", "colo-run-mp%d" % os.getpid(),
                                   "--vdev=net_memif0,role=server,socket=%s" % sock, "--", "memif-primary",
                                   str(payload)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(1)
        secondary = subprocess.Popen([bench] + eal + ["-l", "1", "--file-prefix", "colo-run-ms%d" % os.getpid(),
                                     "--vdev=net_memif0,role=client,socket=%s" % sock, "--", "memif-secondary",
                                     str(payload)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            out = primary.communicate(timeout=300)[0]
        finally:
            secondary.kill()
            secondary.wait()
        m = re.search(r"^memif\s+\d+\s+([\d.]+)", out, re.M)
        if m:
            fig.add("memif/pps/%d" % payload, float(m.group(1)) * 1e6)
        if os.path.exists(sock):
            os.unlink(sock)


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [str(s.getsockname()[1]) for s in socks]
    for s in socks:
        s.close()
    return ports


def endpoints(transport, tmp, n=3):
    if transport == "unix":
        d = tempfile.mkdtemp(dir=tmp)
        return [os.path.join(d, name) for name in ("pin", "sin", "out", "nfy")[:n]]
    return free_ports(n)


def start_target(target, eps, transport):
    """eps: primary_in, secondary_in, outdev[, notify_dev]."""
    if target == "colo-proxy":
        spec = (lambda e: "unix:%s,server" % e) if transport == "unix" else (lambda e: "tcp:127.0.0.1:%s,server" % e)
        cmd = [os.path.join(BUILD, "colo-proxy"), "compare", "--primary_in", spec(eps[0]),
               "--secondary_in", spec(eps[1]), "--outdev", spec(eps[2])]
        if len(eps) > 3:
            cmd += ["--notify_dev", spec(eps[3])]
    elif target == "qemu":
        chardev = (lambda i, e: "socket,id=%s,path=%s,server=on,wait=off" % (i, e)) if transport == "unix" else \
            (lambda i, e: "socket,id=%s,host=127.0.0.1,port=%s,server=on,wait=off" % (i, e))
        compare = "colo-compare,id=c0,primary_in=pin,secondary_in=sin,outdev=out,iothread=io1"
        cmd = ["qemu-system-x86_64", "-M", "none", "-nodefaults", "-display", "none", "-object", "iothread,id=io1",
               "-chardev", chardev("pin", eps[0]), "-chardev", chardev("sin", eps[1]),
               "-chardev", chardev("out", eps[2])]
        if len(eps) > 3:
            cmd += ["-chardev", chardev("nfy", eps[3])]
            compare += ",notify_dev=nfy"
        cmd += ["-object", compare]
    else:
        cmd = [os.path.join(BUILD, "bench", "socket_ceiling")] + eps
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5 if target == "qemu" else 0.3)
    return proc


def make_trace(tmp, payload, packets, flows, batch=64, diverge_every=0):
    """The scenario's PVM/SVM pcap pair (bench/make_trace), written once per bench/run."""
    name = "%d-%d-%d-%d-%d" % (payload, packets, flows, batch, diverge_every)
    pvm, svm = (os.path.join(tmp, "trace-%s-%s.pcap" % (name, side)) for side in ("pvm", "svm"))
    if not os.path.exists(svm):
        cmd = [os.path.join(BUILD, "bench", "make_trace"), str(payload), str(packets), str(flows), pvm, svm,
               "--batch", str(batch)]
        sh(cmd + (["--diverge-every", str(diverge_every)] if diverge_every else []))
    return pvm, svm


def drive(target, transport, pair, tmp, rate=0, lat_file=None, notify=False, loops=1, usage=None):
    """Replays a pcap pair into a target with chardev_load; returns its figures and the target's RSS (KiB).
    usage, a dict, gets the read and write system calls the target made during the replay."""
    eps = endpoints(transport, tmp, 4 if notify else 3)
    proc = start_target(target, eps, transport)
    args = [LOAD] + eps[:3] + [str(proc.pid), "--pcap-pvm", pair[0], "--pcap-svm", pair[1], "--loops", str(loops)]
    if rate:
        args += ["--rate", str(rate), "--latency-file", lat_file]
    if notify:
        args += ["--notify", eps[3]]
    before = system_calls(proc.pid)
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=300).stdout.split()
        rss = resident_kib(proc.pid)
        after = system_calls(proc.pid)
        if usage is not None and before and after:
            usage.update({k: after[k] - before[k] for k in after})
    finally:
        proc.kill()
        proc.wait()
    return [float(x) for x in out], rss


def system_calls(pid):
    """Read and write system calls a process made so far (/proc/PID/io)."""
    try:
        io = open("/proc/%d/io" % pid).read()
        return {k: int(re.search(r"%s: (\d+)" % k, io).group(1)) for k in ("syscr", "syscw")}
    except (OSError, AttributeError):
        return {}


def resident_kib(pid):
    try:
        return int(re.search(r"VmRSS:\s*(\d+)", open("/proc/%d/status" % pid).read()).group(1))
    except (OSError, AttributeError):
        return 0


TARGETS = ("colo-proxy", "qemu", "relay")


def socket_mode(fig, size, tmp):
    for transport in size["transports"]:
        for payload in PAYLOADS:
            for target in TARGETS:
                usage = {}
                r, _ = drive(target, transport, make_trace(tmp, payload, size["socket"], 8), tmp, usage=usage)
                if len(r) >= 5:
                    base = "socket/%s/%s/%d" % (transport, target, payload)
                    if usage and r[2]:
                        fig.add(base + "/syscalls", (usage["syscr"] + usage["syscw"]) / r[2])
                    fig.add(base + "/pps", r[0])
                    fig.add(base + "/cpu_us", r[1])
                    fig.add(base + "/reordered", r[3])
                    fig.add(base + "/lost", r[4])


def connections(fig, size, tmp):
    for flows in size["flows"]:
        packets = max(size["socket"] // 3, flows * 10)
        for target in ("colo-proxy", "qemu"):
            r, rss = drive(target, "tcp", make_trace(tmp, 64, packets, flows), tmp)
            if len(r) >= 5:
                fig.add("connections/%s/%d/pps" % (target, flows), r[0])
                fig.add("connections/%s/%d/lost" % (target, flows), r[4])
                fig.add("connections/%s/%d/rss_mib" % (target, flows), rss / 1024)


def latency(fig, size, tmp, out_dir):
    for target in ("colo-proxy", "qemu"):
        lat_file = os.path.join(out_dir, "latency-%s.dat" % target)
        r, _ = drive(target, "tcp", make_trace(tmp, 64, size["latency"], 8, batch=1), tmp, rate=10000,
                     lat_file=lat_file)
        if len(r) >= 8:
            for name, v in zip(("p50", "p99", "p999"), r[5:8]):
                fig.add("latency/%s/%s_us" % (target, name), v)


def cpu_split(pid):
    """User and system CPU seconds of a process so far."""
    try:
        fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick
    except (OSError, IndexError, ValueError):
        return 0.0, 0.0


def profile(size, tmp):
    """Where socket mode's time goes, once per bench/run: its user/kernel split (/proc) and, when perf may
    sample it, its hottest functions, its own and the kernel's on its behalf (perf record)."""
    found = {}
    for payload in (64, 1460):
        pair = make_trace(tmp, payload, size["socket"], 8)
        eps = endpoints("tcp", tmp)
        proc = start_target("colo-proxy", eps, "tcp")
        data = os.path.join(tmp, "perf-%d.data" % payload)
        perf = subprocess.Popen(["perf", "record", "-q", "-F", "2999", "-p", str(proc.pid), "-o", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) if shutil.which("perf") else None
        time.sleep(0.3)
        before = cpu_split(proc.pid)
        out = sh([LOAD] + eps + [str(proc.pid), "--pcap-pvm", pair[0], "--pcap-svm", pair[1]], timeout=300).split()
        after = cpu_split(proc.pid)
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait()
        proc.kill()
        proc.wait()
        top = []
        if perf and os.path.exists(data):
            report = sh(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,symbol",
                         "--percent-limit", "1"])
            top = [(float(pct), dso, sym) for pct, dso, sym in
                   re.findall(r"^\s+([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(\S+)", report, re.M)][:12]
        found[str(payload)] = {"user_s": after[0] - before[0], "system_s": after[1] - before[1],
                               "packets": float(out[2]) if len(out) > 2 else 0, "top": top}
    return found


FIXTURE_PAIRS = ("http-identical", "http-resegmented", "many-connections", "udp-burst", "http-payload-differs")


def trace_pairs(args):
    if args.pcap:
        return [(os.path.basename(args.pcap[0]), args.pcap[0], args.pcap[1])]
    d = os.path.join(TOP, "pcap_fixtures")
    return [(n, os.path.join(d, n + "-pvm.pcap"), os.path.join(d, n + "-svm.pcap")) for n in FIXTURE_PAIRS]


def add_checkpointed(fig, base, r):
    """The figures of a replay with checkpoints played on notify_dev."""
    for name, i in (("pps", 0), ("reordered", 3), ("lost", 4), ("requests", 5)):
        fig.add(base + "/" + name, r[i])


def traces(fig, size, tmp, args):
    for name, pvm, svm in trace_pairs(args):
        for target in ("colo-proxy", "qemu"):
            r, _ = drive(target, "unix", (pvm, svm), tmp, notify=True, loops=size["trace_loops"])
            if len(r) >= 7:
                add_checkpointed(fig, "traces/%s/%s" % (target, name), r)


def divergence(fig, size, tmp):
    for every in size["diverge_every"]:
        for target in ("colo-proxy", "qemu"):
            pair = make_trace(tmp, 64, size["divergence"], 8, diverge_every=every)
            r, _ = drive(target, "unix", pair, tmp, notify=True)
            if len(r) >= 7:
                add_checkpointed(fig, "divergence/%s/%d" % (target, every), r)
                if every:
                    fig.add("divergence/%s/%d/to_request_us" % (target, every), r[6])


# ---- output ----

def med(s, key):
    return s[key]["median"] if key in s else None


def spread(s, key, scale=1.0, fmt="%.2f"):
    if key not in s:
        return "–"
    v = s[key]
    if v["min"] == v["max"]:
        return fmt % (v["median"] * scale)
    return (fmt + " (" + fmt + "–" + fmt + ")") % (v["median"] * scale, v["min"] * scale, v["max"] * scale)


def share(s, a, b, fmt="%.0f%%", scale=100.0):
    """a's median as a share (or multiple) of b's."""
    return fmt % (scale * s[a]["median"] / s[b]["median"]) if a in s and b in s and s[b]["median"] else "–"


def ratio(s, a, b):
    return share(s, a, b, "%.1f×", 1.0)


def machine_line(info, runs, seconds):
    size = "" if info.get("size", "full") == "full" else (
        " **A `--%s` run: smaller scenarios than a full run; not figures to publish.**" % info["size"])
    return ("Run: `%s` at commit %s, %s. Machine: %s, %d cores, %d MiB, Linux %s, load average %s at the start; "
            "DPDK %s (%s); %s. %d run%s per figure: median (min–max), one value when all runs agree; – where "
            "no run gave a figure (the scenario was not run, or the target did not finish it). The run took "
            "%.0f s.%s" % (info["command"], info["commit"], info["date"], info["cpu"], info["cores"],
                           info["memory_mib"], info.get("kernel", "?"), info.get("load_at_start", "?"), info["dpdk"],
                           info["dpdk_memory"], info["qemu"], runs, "" if runs == 1 else "s", seconds, size))


def caption(info):
    return "%s, %d cores; commit %s; %s" % (info["cpu"], info["cores"], info["commit"], info["date"][:10])


def targets_md(s):
    """The goals the project set itself, each against this run's median."""
    rows = []

    def row(goal, key, fmt, ok, scale=1.0):
        if key in s:
            v = med(s, key) * scale
            rows.append("| %s | %s | %s |" % (goal, fmt % v, "met" if ok(v) else "**not met**"))

    row("engine alone, 64 bytes, 1 connection: ≥ 10 Mpps on one core", "engine/pps/64/1", "%.2f Mpps",
        lambda v: v >= 10, 1e-6)
    for c in (10000, 1000000):
        a, b = "engine/pps/64/%d" % c, "engine/pps/64/1"
        if a in s and b in s:
            frac = med(s, a) / med(s, b)
            rows.append("| engine alone, 64 bytes, %s connections: within 30%% of 1 connection | %.0f%% | %s |" % (
                "{:,}".format(c), 100 * frac, "met" if frac >= 0.7 else "**not met**"))
    row("memory: ≤ 256 bytes per connection", "engine/bytes_per_conn", "%.1f bytes", lambda v: v <= 256)
    for c in FLOOD_CONNS:
        worst = max((med(s, "hashflood/%d/%s/%s" % (c, name, what)) / med(s, "hashflood/%d/random/%s" % (c, what))
                     for name in FLOOD_SETS[1:] for what in ("insert_ns", "lookup_ns", "bystander_ns")
                     if "hashflood/%d/%s/%s" % (c, name, what) in s and "hashflood/%d/random/%s" % (c, what) in s),
                    default=None)
        if worst is not None:
            rows.append("| connection table, %s connections: crafted tuples cost ≤ %d× random ones | %.2f× | %s |" % (
                "{:,}".format(c), TARGET_FLOOD_RATIO, worst, "met" if worst <= TARGET_FLOOD_RATIO else "**not met**"))
    row("DPDK primary, ring ports, 64 bytes: ≥ 5 Mpps", "pipeline/primary/pps/64", "%.2f Mpps", lambda v: v >= 5, 1e-6)
    if "pipeline/primary/pps/1460" in s:
        gbps = med(s, "pipeline/primary/pps/1460") * 1460 * 8 / 1e9
        rows.append("| DPDK primary, ring ports, 1460 bytes: ≥ 20 Gbit/s of payload | %.1f Gbit/s | %s |" % (
            gbps, "met" if gbps >= 20 else "**not met**"))
    row("DPDK hold added to a matching packet, 64 bytes: p99 ≤ 10 µs", "pipeline/hold/64/p99_us", "%.2f µs",
        lambda v: v <= 10)
    for transport in ("tcp", "unix"):
        for p in PAYLOADS:
            a, b = "socket/%s/colo-proxy/%d/pps" % (transport, p), "socket/%s/qemu/%d/pps" % (transport, p)
            if a in s and b in s and med(s, b):
                r = med(s, a) / med(s, b)
                rows.append("| socket mode over %s, %d bytes: ≥ %d× QEMU's packets/s | %.1f× | %s |" % (
                    transport, p, TARGET_SOCKET_RATIO, r, "met" if r >= TARGET_SOCKET_RATIO else "**not met**"))
    if not rows:
        return []
    return ["### Goals, against this run's medians", "", "| goal | this run | |", "|---|---:|---|"] + rows + [""]


def engine_md(s):
    if not any(k.startswith("engine/") for k in s):
        return []
    lines = ["### Engine alone (Mpps, preloaded packets, one core)", "",
             "| payload | 1 connection | 10,000 | 1,000,000 |", "|---:|---:|---:|---:|"]
    for p in PAYLOADS:
        lines.append("| %d | %s |" % (p, " | ".join(spread(s, "engine/pps/%d/%d" % (p, c), 1e-6)
                                                    for c in (1, 10000, 1000000))))
    lines += [""]
    if "engine/bytes_per_conn" in s:
        lines += ["Memory for a full table of %s connections (the default `--max-conns`): %s bytes per connection "
                  "allocated (table entry, lookup slots, checkpoint list), %s resident. `colo-proxy replay` prints the "
                  "allocated figure for its own table." % (
                      "{:,.0f}".format(med(s, "engine/capacity")), spread(s, "engine/bytes_per_conn", 1, "%.1f"),
                      spread(s, "engine/resident_per_conn", 1, "%.1f")), ""]
    if "engine/parse_ns" in s:
        lines += ["Parsing one IPv4/TCP frame with timestamp options: %s ns." % spread(s, "engine/parse_ns", 1, "%.1f"),
                  ""]
    return lines


def hashflood_md(s):
    if not any(k.startswith("hashflood/") for k in s):
        return []
    lines = ["### Connection table under crafted tuples (CPU ns per operation, one core)", "",
             "Half-full tables; each set in turn goes in, is looked up and leaves again; bystanders are the "
             "table's random flows, looked up while the set is in. ×random: the set's median over the random set's.",
             "",
             "| connections | tuples | insert | lookup | bystander lookup | refused | ×random (insert / lookup / bystander) |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for c in FLOOD_CONNS:
        for name in FLOOD_SETS:
            b = "hashflood/%d/%s/" % (c, name)
            if b + "lookup_ns" not in s:
                continue
            r = "hashflood/%d/random/" % c
            lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                "{:,}".format(c), name, spread(s, b + "insert_ns", 1, "%.1f"), spread(s, b + "lookup_ns", 1, "%.1f"),
                spread(s, b + "bystander_ns", 1, "%.1f"), spread(s, b + "refused", 1, "%.0f"),
                " / ".join(share(s, b + w, r + w, "%.2f×", 1.0) for w in ("insert_ns", "lookup_ns", "bystander_ns"))))
    return lines + [""]


def dpdk_md(s):
    if not any(k.startswith(("pipeline/", "memif/")) for k in s):
        return []
    lines = ["### DPDK data plane on in-memory ring ports (Mpps, one core)", "",
             "| payload | primary (released) | secondary (both directions) | forwarding loop | primary / forwarding loop |",
             "|---:|---:|---:|---:|---:|"]
    for p in PAYLOADS:
        pri, fwd = "pipeline/primary/pps/%d" % p, "pipeline/forward/pps/%d" % p
        if pri in s:
            lines.append("| %d | %s | %s | %s | %s |" % (p, spread(s, pri, 1e-6), spread(
                s, "pipeline/secondary/pps/%d" % p, 1e-6), spread(s, fwd, 1e-6), share(s, pri, fwd)))
    lines += ["", "Two processes joined by net_memif (primary releases, Mpps): %s at 64 bytes, %s at 1460 bytes." % (
        spread(s, "memif/pps/64", 1e-6), spread(s, "memif/pps/1460", 1e-6)), "",
        "Hold the primary adds to a matching packet (µs):", "", "| payload | p50 | p99 | p99.9 |", "|---:|---:|---:|---:|"]
    for p in (64, 1460):
        lines.append("| %d | %s |" % (p, " | ".join(spread(s, "pipeline/hold/%d/%s_us" % (p, q))
                                                    for q in ("p50", "p99", "p999"))))
    return lines + [""]


def socket_md(s):
    lines = []
    for transport in ("tcp", "unix"):
        if "socket/%s/colo-proxy/64/pps" % transport not in s:
            continue
        lines += ["### Socket mode over %s: colo-proxy, QEMU 7.2 colo-compare, plain relay (k packets/s; µs CPU "
                  "per packet)" % transport, "",
                  "| payload | colo-proxy | QEMU | colo-proxy / QEMU | CPU colo-proxy | CPU QEMU | lost (colo-proxy, "
                  "QEMU) | QEMU reordered | relay | colo-proxy / relay | reads+writes per packet (colo-proxy, relay) |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for p in PAYLOADS:
            b = "socket/%s/%%s/%d/%%s" % (transport, p)
            lines.append("| %d | %s | %s | %s | %s | %s | %s, %s | %s | %s | %s | %s, %s |" % (
                p, spread(s, b % ("colo-proxy", "pps"), 1e-3, "%.0f"), spread(s, b % ("qemu", "pps"), 1e-3, "%.0f"),
                ratio(s, b % ("colo-proxy", "pps"), b % ("qemu", "pps")),
                spread(s, b % ("colo-proxy", "cpu_us")), spread(s, b % ("qemu", "cpu_us")),
                spread(s, b % ("colo-proxy", "lost"), 1, "%.0f"), spread(s, b % ("qemu", "lost"), 1, "%.0f"),
                spread(s, b % ("qemu", "reordered"), 1, "%.0f"), spread(s, b % ("relay", "pps"), 1e-3, "%.0f"),
                share(s, b % ("colo-proxy", "pps"), b % ("relay", "pps")),
                spread(s, b % ("colo-proxy", "syscalls"), 1, "%.3f"), spread(s, b % ("relay", "syscalls"), 1, "%.3f")))
        over = [p for p in PAYLOADS if "socket/%s/relay/%d/pps" % (transport, p) in s and
                "socket/%s/colo-proxy/%d/pps" % (transport, p) in s and
                med(s, "socket/%s/colo-proxy/%d/pps" % (transport, p)) > med(s, "socket/%s/relay/%d/pps" % (transport, p))]
        lines += [""]
        if over:
            lines += ["Here colo-proxy moved more packets per second than the plain relay at %s bytes: the relay is "
                      "not an upper bound (see \"What the ratios mean\" above)." % ", ".join(map(str, over)), ""]
    return lines


def connections_md(s, size):
    if not any(k.startswith("connections/") for k in s):
        return []
    lines = ["### Connections (64-byte payloads over TCP; k packets/s, PVM frames lost, resident MiB at the end)", "",
             "| flows | colo-proxy | lost | RSS | QEMU | lost | RSS |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for f in size["flows"]:
        lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            "{:,}".format(f), spread(s, "connections/colo-proxy/%d/pps" % f, 1e-3, "%.0f"),
            spread(s, "connections/colo-proxy/%d/lost" % f, 1, "%.0f"),
            spread(s, "connections/colo-proxy/%d/rss_mib" % f, 1, "%.0f"),
            spread(s, "connections/qemu/%d/pps" % f, 1e-3, "%.0f"), spread(s, "connections/qemu/%d/lost" % f, 1, "%.0f"),
            spread(s, "connections/qemu/%d/rss_mib" % f, 1, "%.0f")))
    return lines + [""]


def latency_md(s):
    if not any(k.startswith("latency/") for k in s):
        return []
    lines = ["### Hold latency added to matching packets (10k packets/s, 64 bytes, TCP; µs)", "",
             "| target | p50 | p99 | p99.9 |", "|---|---:|---:|---:|"]
    for t in ("colo-proxy", "qemu"):
        lines.append("| %s | %s | %s | %s |" % (t, *(spread(s, "latency/%s/%s_us" % (t, q), 1, "%.0f")
                                                  for q in ("p50", "p99", "p999"))))
    return lines + [""]


def traces_md(s):
    names = sorted({k.split("/")[2] for k in s if k.startswith("traces/")})
    if not names:
        return []
    lines = ["### Recorded traces (socket mode over unix sockets, many passes as new connections; PVM frames released "
             "per second, checkpoint requests, PVM frames lost)", "",
             "| trace | engine alone M frames/s | colo-proxy k frames/s | requests | lost | QEMU k frames/s | "
             "requests | lost |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for n in names:
        b = "traces/%%s/%s/%%s" % n
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            n, spread(s, b % ("engine", "pps"), 1e-6), spread(s, b % ("colo-proxy", "pps"), 1e-3, "%.0f"),
            spread(s, b % ("colo-proxy", "requests"), 1, "%.0f"), spread(s, b % ("colo-proxy", "lost"), 1, "%.0f"),
            spread(s, b % ("qemu", "pps"), 1e-3, "%.0f"), spread(s, b % ("qemu", "requests"), 1, "%.0f"),
            spread(s, b % ("qemu", "lost"), 1, "%.0f")))
    return lines + [""]


def divergence_md(s, size):
    if not any(k.startswith("divergence/") for k in s):
        return []
    lines = ["### Divergence rate (64 bytes over unix sockets, at full load, each checkpoint completed at once on "
             "notify_dev)", "",
             "| one divergent SVM record in | colo-proxy k packets/s | requests | divergence → next request µs | "
             "QEMU k packets/s | requests | divergence → next request µs | QEMU lost | QEMU reordered |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    explained = []
    for every in size["diverge_every"]:
        b = "divergence/%%s/%d/%%s" % every
        if b % ("colo-proxy", "pps") not in s:
            continue
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            "never" if not every else "{:,}".format(every), spread(s, b % ("colo-proxy", "pps"), 1e-3, "%.0f"),
            spread(s, b % ("colo-proxy", "requests"), 1, "%.0f"), spread(s, b % ("colo-proxy", "to_request_us"), 1, "%.0f"),
            spread(s, b % ("qemu", "pps"), 1e-3, "%.0f"), spread(s, b % ("qemu", "requests"), 1, "%.0f"),
            spread(s, b % ("qemu", "to_request_us"), 1, "%.0f"), spread(s, b % ("qemu", "lost"), 1, "%.0f"),
            spread(s, b % ("qemu", "reordered"), 1, "%.0f")))
        if every and b % ("colo-proxy", "to_request_us") in s and b % ("qemu", "requests") in s:
            explained.append((every, med(s, b % ("colo-proxy", "to_request_us")) * 1e-6 * med(s, b % ("colo-proxy", "pps")),
                              med(s, b % ("colo-proxy", "requests")), med(s, b % ("qemu", "requests"))))
    lines += [""]
    if explained:
        every, ahead, ours, qemus = explained[0]
        lines += ["At one divergence in %s records, colo-proxy's delay is, at its own rate, the time to read about %.0f "
                  "records queued ahead of the divergent one; QEMU sent %.0f requests where colo-proxy, one per "
                  "divergence, sent %.0f (see \"Divergence → next request\" above for why the two delays are not "
                  "the same measure)." % ("{:,}".format(every), ahead, qemus, ours), ""]
    return lines


def profile_md(s, found):
    """For each payload where socket mode is under the goal: where its time went."""
    lines = []
    for payload, p in sorted(found.items(), key=lambda kv: int(kv[0])):
        key = "socket/tcp/%%s/%s/pps" % payload
        if key % "colo-proxy" not in s or key % "qemu" not in s or not p["packets"]:
            continue
        r = med(s, key % "colo-proxy") / med(s, key % "qemu")
        if r >= TARGET_SOCKET_RATIO:
            continue
        cpu = p["user_s"] + p["system_s"]
        lines += ["", "**%s-byte payloads over TCP: %.1f× QEMU.** In a profiled replay of the same trace, colo-proxy "
                      "used %.2f µs of CPU per packet, %.0f%% of it in the kernel (socket reads and writes: copying "
                      "records in and out) and %.0f%% in its own code." % (
                          payload, r, cpu / p["packets"] * 1e6, 100 * p["system_s"] / cpu if cpu else 0,
                          100 * p["user_s"] / cpu if cpu else 0)]
        if p["top"]:
            lines += ["", "Hottest functions (perf record at 2999 Hz on colo-proxy; share of all its samples):", "",
                      "| share | where | function |", "|---:|---|---|"]
            lines += ["| %.1f%% | %s | `%s` |" % (pct, dso, sym) for pct, dso, sym in p["top"]]
    if lines:
        lines = ["### Where socket mode's time goes (where it is under %d× QEMU)" % TARGET_SOCKET_RATIO] + lines + [""]
    return lines


def summary_md(s, info, runs, seconds, found, pngs):
    size = SIZES[info.get("size", "full")]
    lines = [machine_line(info, runs, seconds), ""]
    lines += targets_md(s) + engine_md(s) + hashflood_md(s) + dpdk_md(s) + socket_md(s) + connections_md(s, size) + latency_md(s)
    lines += traces_md(s) + divergence_md(s, size) + profile_md(s, found)
    if pngs:
        lines += ["### Plots", "", "Each plot is one setup; the machine, commit and date are in its caption "
                  "(%s)." % caption(info), ""]
        lines += ["![%s](bench/%s)" % (p[:-4], p) for p in pngs] + [""]
    return "\n".join(lines)


GNUPLOT_HEAD = """set terminal pngcairo size 960,540 font ",11"
set grid; set key outside bottom center horizontal
"""


def plot(s, info, out_dir):
    """One PNG per setup; each axis fits its data; the caption names machine, commit and date."""
    if not shutil.which("gnuplot"):
        return []

    def series(name, rows):
        path = os.path.join(out_dir, name + ".dat")
        with open(path, "w") as f:
            for x, key, scale in rows:
                if key in s:
                    f.write("%s %g %g %g\n" % (x, s[key]["median"] * scale, s[key]["min"] * scale,
                                               s[key]["max"] * scale))
        return path

    def curves(pairs):
        return ", ".join("'%s' using 1:2:3:4 with yerrorlines lw 2 title '%s'" % (p, t) for t, p in pairs
                         if os.path.getsize(p))

    cap = caption(info)
    plots = {}
    for transport in ("tcp", "unix"):
        if "socket/%s/colo-proxy/64/pps" % transport not in s:
            continue
        pairs = [(t, series("socket-%s-%s" % (transport, t),
                            [(p, "socket/%s/%s/%d/pps" % (transport, t, p), 1e-3) for p in PAYLOADS]))
                 for t in ("colo-proxy", "qemu", "relay")]
        plots["socket-%s-by-payload" % transport] = (
            "set title \"Socket mode over %s: packets/s by payload (median, min-max bars)\\n%s\"\n"
            "set xlabel 'payload (bytes)'; set ylabel 'k packets/s'; set xrange [0:1560]; set yrange [0:*]\n"
            "plot %s\n" % (transport, cap, curves(pairs).replace("title 'qemu'", "title 'QEMU 7.2 colo-compare'")
                           .replace("title 'relay'", "title 'plain relay (nothing compared)'")))
    pairs = [("%d bytes" % p, series("engine-%d" % p, [(c, "engine/pps/%d/%d" % (p, c), 1e-6)
                                                          for c in (1, 10000, 1000000)])) for p in PAYLOADS]
    if any(os.path.getsize(p) for _, p in pairs):
        plots["engine-by-connections"] = (
            "set title \"Compare engine alone, one core: packets/s by connections\\n%s\"\n"
            "set xlabel 'connections'; set ylabel 'M packets/s'; set logscale x; set xrange [0.5:2e6]; "
            "set yrange [0:*]\nplot %s\nunset logscale\n" % (cap, curves(pairs)))
    pairs = [(role, series("dpdk-%s" % role, [(p, "pipeline/%s/pps/%d" % (role, p), 1e-6) for p in PAYLOADS]))
             for role in ("primary", "secondary")]
    if any(os.path.getsize(p) for _, p in pairs):
        plots["dpdk-by-payload"] = (
            "set title \"DPDK data plane on in-memory ring ports, one core: packets/s by payload\\n%s\"\n"
            "set xlabel 'payload (bytes)'; set ylabel 'M packets/s'; set xrange [0:1560]; set yrange [0:*]\n"
            "plot %s\n" % (cap, curves(pairs)))
    flows = SIZES[info.get("size", "full")]["flows"]
    pairs = [(t, series("conn-%s" % t, [(f, "connections/%s/%d/pps" % (t, f), 1e-3) for f in flows]))
             for t in ("colo-proxy", "qemu")]
    lost = os.path.join(out_dir, "conn-lost.dat")
    with open(lost, "w") as f:
        for t, dy in (("colo-proxy", 0), ("qemu", 1)):
            for fl in flows:
                k = "connections/%s/%d" % (t, fl)
                if k + "/lost" in s and med(s, k + "/lost") > 0:
                    f.write("%d %g \"%s lost %.0f\"\n" % (fl, med(s, k + "/pps") * 1e-3, "QEMU" if t == "qemu" else t,
                                                            med(s, k + "/lost")))
    if any(os.path.getsize(p) for _, p in pairs):
        marks = (", '%s' using 1:2 with points pt 7 ps 2 lc rgb 'red' title 'PVM frames lost', "
                 "'%s' using 1:2:3 with labels offset 0,1.5 tc rgb 'red' notitle" % (lost, lost)) \
            if os.path.getsize(lost) else ""
        plots["connections"] = (
            "set title \"Socket mode vs QEMU 7.2 by TCP flows (64-byte payloads, TCP)\\n%s\"\n"
            "set xlabel 'flows'; set ylabel 'k packets/s'; set logscale x; set xrange [0.5:%g]; set yrange [0:*]\n"
            "plot %s%s\nunset logscale\n" % (cap, max(flows) * 2, curves(pairs).replace(
                "title 'qemu'", "title 'QEMU 7.2 colo-compare'"), marks))
    lat = [(t, os.path.join(out_dir, "latency-%s.dat" % t)) for t in ("colo-proxy", "qemu")]
    if all(os.path.exists(p) and os.path.getsize(p) for _, p in lat):
        plots["latency-cdf"] = (
            "set title \"Hold latency added to matching packets (10k packets/s, 64 bytes, TCP)\\n%s\"\n"
            "set xlabel 'latency (microseconds)'; set ylabel 'fraction of packets'; set logscale x; "
            "set yrange [0:1]; set xrange [*:*]\nplot '%s' using 1:2 with lines lw 2 title 'colo-proxy', "
            "'%s' using 1:2 with lines lw 2 title 'QEMU 7.2 colo-compare'\nunset logscale\n" % (cap, lat[0][1], lat[1][1]))
    made = []
    for name, body in plots.items():
        png = os.path.join(out_dir, name + ".png")
        r = subprocess.run(["gnuplot"], input=GNUPLOT_HEAD + "set output '%s'\n" % png + body, text=True,
                           capture_output=True)
        if r.returncode == 0 and os.path.exists(png):
            made.append(name + ".png")
        else:
            print("bench/run: plot %s failed: %s" % (name, r.stderr.strip()[:300]), flush=True)
    return made


def update_page(page, summary, pngs, out_dir):
    """Replaces the generated part of the page (made from docs/benchmarks.md when it does not exist yet)."""
    if not os.path.exists(page):
        shutil.copy(os.path.join(TOP, "docs", "benchmarks.md"), page)
    pics = os.path.join(os.path.dirname(os.path.abspath(page)), "bench")
    os.makedirs(pics, exist_ok=True)
    for old in os.listdir(pics):
        if old.endswith(".png") and old not in pngs:
            os.unlink(os.path.join(pics, old))
    for p in pngs:
        shutil.copy(os.path.join(out_dir, p), os.path.join(pics, p))
    block = "%s\n## The figures (generated by `bench/run`: do not edit by hand)\n\n%s%s" % (BEGIN, summary, END)
    text = open(page).read()
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    open(page, "w").write(text)


def report(out_dir, page):
    """Summary, plots and the page's generated part from a results directory."""
    saved = json.load(open(os.path.join(out_dir, "results.json")))
    pngs = plot(saved["figures"], saved["machine"], out_dir)
    md = summary_md(saved["figures"], saved["machine"], saved["runs"], saved["seconds"], saved.get("profile", {}), pngs)
    open(os.path.join(out_dir, "summary.md"), "w").write(md)
    update_page(page, md, pngs, out_dir)
    return md


def parse_args():
    ap = argparse.ArgumentParser(prog="bench/run", description="Every benchmark in one run, side by side with "
                                 "QEMU 7.2's colo-compare; writes the generated part of docs/benchmarks.md.")
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="size", action="store_const", const="quick",
                      help="smaller socket-mode scenarios, TCP only")
    size.add_argument("--smoke", dest="size", action="store_const", const="smoke",
                      help="tiny scenarios, one run unless --runs: tries every tool and the page, figures not to publish")
    ap.set_defaults(size="full")
    ap.add_argument("--runs", type=int, help="runs per scenario (default 3; 1 with --smoke)")
    ap.add_argument("--pcap", nargs=2, metavar=("PVM.pcap", "SVM.pcap"), help="your recorded pair instead of the fixtures")
    ap.add_argument("--only", help="comma-separated scenarios (default all: %s)" % ",".join(SCENARIOS))
    ap.add_argument("--page", default=os.path.join(TOP, "docs", "benchmarks.md"),
                    help="the page whose generated part is replaced (default docs/benchmarks.md; plots go to its bench/)")
    ap.add_argument("--report", metavar="DIR", help="render an earlier run (bench/results/DATE) again")
    args = ap.parse_args()
    if args.runs is None:
        args.runs = 1 if args.size == "smoke" else 3
    args.only = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = [o for o in args.only if o not in SCENARIOS]
    if unknown:
        ap.error("unknown scenario %s; choose from %s" % (", ".join(unknown), ",".join(SCENARIOS)))
    return args


def main():
    args = parse_args()
    if args.report:
        print(report(args.report, args.page))
        return
    size = SIZES[args.size]
    mode = dpdk_memory()
    info = machine(mode, args)
    print("bench/run: %s, %d cores; DPDK memory: %s (%s); %d runs per scenario; %s size"
          % (info["cpu"], info["cores"], mode, "hugepages" if "in-memory" in mode else "no hugepages available",
             args.runs, args.size), flush=True)
    out_dir = os.path.join(TOP, "bench", "results", datetime.datetime.now().strftime("%Y-%m-%d-%H%M%S"))
    os.makedirs(out_dir)
    fig = Figures()
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        steps = {"engine": lambda: engine(fig, args), "pipeline": lambda: pipeline(fig, mode),
                 "memif": lambda: memif(fig, mode), "socket": lambda: socket_mode(fig, size, tmp),
                 "connections": lambda: connections(fig, size, tmp), "latency": lambda: latency(fig, size, tmp, out_dir),
                 "traces": lambda: traces(fig, size, tmp, args), "divergence": lambda: divergence(fig, size, tmp),
                 "hashflood": lambda: hashflood(fig)}
        for i in range(args.runs):
            for name in SCENARIOS:
                if name not in args.only:
                    continue
                t = time.time()
                steps[name]()
                print("bench/run: run %d/%d %s done in %.0f s" % (i + 1, args.runs, name, time.time() - t), flush=True)
        found = {}
        if "socket" in args.only:
            t = time.time()
            found = profile(size, tmp)
            print("bench/run: profile done in %.0f s" % (time.time() - t), flush=True)
    seconds = time.time() - t0
    json.dump({"machine": info, "runs": args.runs, "seconds": seconds, "figures": fig.summary(), "profile": found},
              open(os.path.join(out_dir, "results.json"), "w"), indent=1)
    print(report(out_dir, args.page))
    print("bench/run: results in %s; %s updated" % (os.path.relpath(out_dir, TOP), os.path.relpath(args.page, TOP)))


if __name__ == "__main__":
    main()
