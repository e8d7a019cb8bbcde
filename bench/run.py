#!/usr/bin/env python3
"""bench/run.py — every benchmark in one run, side by side with QEMU 7.2's colo-compare.

Called by bench/run (which installs and builds first). Runs each scenario RUNS times,
keeps every figure of every run, and reports the median with the min–max spread:

  engine       the compare engine alone, packets in memory (bench_engine): packets/s by
               payload and connections, bytes per connection; and each trace pair through it
  pipeline     the DPDK data plane on in-memory ring ports (bench_pipeline), beside a bare DPDK
               forwarding loop over the same ports (the ceiling), and the hold it adds
  memif        two processes, primary and secondary, joined by net_memif (bench_pipeline memif-*)
  socket       socket mode vs QEMU's colo-compare vs the socket ceiling (nothing compared),
               same C load generator (chardev_load), by payload, over TCP (and unix sockets
               without --quick)
Every socket-mode scenario replays a PVM/SVM pcap pair: bench/make_trace writes each
synthetic scenario's pair (payload, flows, divergence rate, pacing) into a temporary
directory, and chardev_load replays pairs, checks each released frame against the PVM
records sent (lost, reordered within a connection, foreign) and plays COLO's checkpoints.
  connections  socket mode vs QEMU by number of flows (QEMU wipes its table at 16384)
  latency      hold latency added to matching packets at a fixed rate, p50/p99/p99.9 and CDF
  traces       recorded PVM/SVM pairs (pcap_fixtures/, or --pcap PVM.pcap SVM.pcap), many passes
               as new connections, socket mode vs QEMU, checkpoints taken at once on notify_dev
  divergence   throughput and checkpoint requests by divergence rate (none, 1 in 10^5 … 1 in 10^2),
               the load generator answering each request at once on notify_dev, and the time
               from a divergent record to the request

Writes bench/results/<date>/results.json, summary.md and PNG plots (gnuplot), and
replaces the generated part of docs/benchmarks.md (with the plots copied to docs/bench/).
`--report bench/results/<date>` renders an earlier run again.
It never asserts a speed: it reports.
"""
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


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw).stdout


def machine(mode):
    cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read())
    mem = int(re.search(r"MemTotal:\s*(\d+)", open("/proc/meminfo").read()).group(1)) // 1024
    return {
        "cpu": cpu.group(1).strip() if cpu else "unknown", "cores": os.cpu_count(), "memory_mib": mem,
        "dpdk_memory": mode, "dpdk": sh(["pkg-config", "--modversion", "libdpdk"]).strip(),
        "qemu": sh(["qemu-system-x86_64", "--version"]).splitlines()[0],
        "commit": (sh(["git", "-C", TOP, "rev-parse", "--short", "HEAD"]).strip() or "none") +
                  ("+changes" if sh(["git", "-C", TOP, "status", "--porcelain", "--untracked-files=no"]).strip() else ""),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(["bench/run"] + sys.argv[1:]),
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

def engine(fig):
    out = sh([os.path.join(BUILD, "bench", "bench_engine")])
    for payload, conns, mpps in re.findall(r"^(\d+)\s+(\d+)\s+([\d.]+)\s+[\d.]+\s+\d+%", out, re.M):
        fig.add("engine/pps/%s/%s" % (payload, conns), float(mpps) * 1e6)
    m = re.search(r"([\d.]+) bytes/connection allocated", out)
    if m:
        fig.add("engine/bytes_per_conn", m.group(1))
    for name, pvm, svm in trace_pairs():
        m = re.search(r"([\d.]+) Mpps compared", sh([os.path.join(BUILD, "bench", "bench_engine"), "--pcap", pvm, svm]))
        if m:
            fig.add("traces/engine/%s/pps" % name, float(m.group(1)) * 1e6)


def pipeline(fig, mode):
    out = sh([os.path.join(BUILD, "bench", "bench_pipeline")] + mode.split() +
             ["--no-pci", "--no-telemetry", "--log-level=error", "-l", "0", "--file-prefix", "colo-run-%d" % os.getpid()])
    for role, payload, mpps in re.findall(r"^(primary|secondary|ceiling)\s+(\d+)\s+([\d.]+)", out, re.M):
        fig.add("pipeline/%s/pps/%s" % (role, payload), float(mpps) * 1e6)
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


def start_target(target, eps, transport, tmp):
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


def drive(target, transport, pair, tmp, rate=0, lat_file=None, notify=False, loops=1):
    """Replays a pcap pair into a target with chardev_load; returns its figures and the target's RSS (KiB)."""
    eps = endpoints(transport, tmp, 4 if notify else 3)
    proc = start_target(target, eps, transport, tmp)
    args = [LOAD] + eps[:3] + [str(proc.pid), "--pcap-pvm", pair[0], "--pcap-svm", pair[1], "--loops", str(loops)]
    if rate:
        args += ["--rate", str(rate), "--latency-file", lat_file]
    if notify:
        args += ["--notify", eps[3]]
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=300).stdout.split()
        rss = resident_kib(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    return [float(x) for x in out], rss


def resident_kib(pid):
    try:
        return int(re.search(r"VmRSS:\s*(\d+)", open("/proc/%d/status" % pid).read()).group(1))
    except (OSError, AttributeError):
        return 0


TARGETS = ("colo-proxy", "qemu", "ceiling")


def socket_mode(fig, quick, tmp):
    packets = 300000 if quick else 600000
    for transport in ("tcp",) if quick else ("tcp", "unix"):
        for payload in (64, 512, 1460):
            for target in TARGETS:
                r, _ = drive(target, transport, make_trace(tmp, payload, packets, 8), tmp)
                if len(r) >= 5:
                    base = "socket/%s/%s/%d" % (transport, target, payload)
                    fig.add(base + "/pps", r[0])
                    fig.add(base + "/cpu_us", r[1])
                    fig.add(base + "/reordered", r[3])
                    fig.add(base + "/lost", r[4])


def connections(fig, quick, tmp):
    for flows in (1, 100, 10000, 20000):
        packets = max(100000, flows * 10)
        for target in ("colo-proxy", "qemu"):
            r, rss = drive(target, "tcp", make_trace(tmp, 64, packets, flows), tmp)
            if len(r) >= 5:
                fig.add("connections/%s/%d/pps" % (target, flows), r[0])
                fig.add("connections/%s/%d/lost" % (target, flows), r[4])
                fig.add("connections/%s/%d/rss_mib" % (target, flows), rss / 1024)


def latency(fig, quick, tmp, out_dir):
    packets = 20000 if quick else 50000
    for target in ("colo-proxy", "qemu"):
        lat_file = os.path.join(out_dir, "latency-%s.dat" % target)
        r, _ = drive(target, "tcp", make_trace(tmp, 64, packets, 8, batch=1), tmp, rate=10000, lat_file=lat_file)
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


def profile(quick, tmp):
    """Where socket mode's time goes, once per bench/run: its user/kernel split (/proc) and, when perf may
    sample it, its hottest functions, its own and the kernel's on its behalf (perf record)."""
    found = {}
    for payload in (64, 1460):
        pair = make_trace(tmp, payload, 300000 if quick else 600000, 8)
        eps = endpoints("tcp", tmp)
        proc = start_target("colo-proxy", eps, "tcp", tmp)
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


def trace_pairs():
    if "--pcap" in sys.argv:
        i = sys.argv.index("--pcap")
        return [(os.path.basename(sys.argv[i + 1]), sys.argv[i + 1], sys.argv[i + 2])]
    d = os.path.join(TOP, "pcap_fixtures")
    return [(n, os.path.join(d, n + "-pvm.pcap"), os.path.join(d, n + "-svm.pcap")) for n in FIXTURE_PAIRS]


def add_checkpointed(fig, base, r):
    """The figures of a replay with checkpoints played on notify_dev."""
    for name, i in (("pps", 0), ("reordered", 3), ("lost", 4), ("requests", 5)):
        fig.add(base + "/" + name, r[i])


def traces(fig, quick, tmp):
    loops = 40 if quick else 200
    for name, pvm, svm in trace_pairs():
        for target in ("colo-proxy", "qemu"):
            r, _ = drive(target, "unix", (pvm, svm), tmp, notify=True, loops=loops)
            if len(r) >= 7:
                add_checkpointed(fig, "traces/%s/%s" % (target, name), r)


DIVERGE_EVERY = (0, 100000, 10000, 1000, 100)


def divergence(fig, quick, tmp):
    packets = 200000 if quick else 500000
    for every in DIVERGE_EVERY:
        for target in ("colo-proxy", "qemu"):
            pair = make_trace(tmp, 64, packets, 8, diverge_every=every)
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
    return (fmt + " (" + fmt + "–" + fmt + ")") % (v["median"] * scale, v["min"] * scale, v["max"] * scale)


def ratio(s, a, b):
    return "%.1f×" % (s[a]["median"] / s[b]["median"]) if a in s and b in s and s[b]["median"] else "–"


def profile_md(s, found):
    """For each payload where socket mode is under 10x QEMU: where its time went."""
    lines = []
    for payload, p in sorted(found.items(), key=lambda kv: int(kv[0])):
        key = "socket/tcp/%%s/%s/pps" % payload
        if key % "colo-proxy" not in s or key % "qemu" not in s or not p["packets"]:
            continue
        r = med(s, key % "colo-proxy") / med(s, key % "qemu")
        if r >= 10:
            continue
        cpu = p["user_s"] + p["system_s"]
        lines += ["", "**%s-byte payloads: %.1f× QEMU, under the 10× target.** In a profiled run of the same "
                      "trace, colo-proxy used %.2f µs of CPU per packet, %.0f%% of it in the kernel (socket reads and "
                      "writes: copying records in and out) and %.0f%% in its own code." % (
                          payload, r, cpu / p["packets"] * 1e6, 100 * p["system_s"] / cpu if cpu else 0,
                          100 * p["user_s"] / cpu if cpu else 0)]
        if p["top"]:
            lines += ["", "Hottest functions (perf record at 2999 Hz on colo-proxy; share of all its samples):", "",
                      "| share | where | function |", "|---:|---|---|"]
            lines += ["| %.1f%% | %s | `%s` |" % (pct, dso, sym) for pct, dso, sym in p["top"]]
    if lines:
        lines = ["", "### Where socket mode's time goes (where the 10× target is not met)"] + lines + [
            "", "The socket ceiling column above is the same generator and sockets with nothing compared: "
                "what is left between colo-proxy and the ceiling is its own work; what is left between the "
                "ceiling and 10× QEMU is the kernel's copying on a machine whose two cores the generator shares."]
    return lines


def summary_md(s, info, runs, seconds, found):
    lines = ["Machine: %s, %d cores, %d MiB; DPDK %s (%s); %s; colo-proxy %s; %s; `%s`; %d runs per "
             "figure, median (min–max); the run took %.0f s." % (info["cpu"], info["cores"], info["memory_mib"],
                                                                  info["dpdk"], info["dpdk_memory"], info["qemu"],
                                                                  info["commit"], info["date"], info["command"],
                                                                  runs, seconds), ""]
    lines += ["### Engine alone (Mpps, preloaded packets, one core)", "",
              "| payload | 1 connection | 10k | 1M |", "|---:|---:|---:|---:|"]
    for p in (64, 512, 1460):
        lines.append("| %d | %s |" % (p, " | ".join(spread(s, "engine/pps/%d/%d" % (p, c), 1e-6)
                                                     for c in (1, 10000, 1000000))))
    lines += ["", "Bytes per idle connection: %s." % spread(s, "engine/bytes_per_conn", 1, "%.0f"), ""]
    lines += ["### DPDK in-memory ring ports (Mpps, one core)", "",
              "The ceiling is a bare rx/tx forwarding loop over the same ring ports with the same generator; "
              "the primary takes two frames in (PVM and SVM) for each it releases.", "",
              "| payload | primary | secondary | ceiling | primary / ceiling |", "|---:|---:|---:|---:|---:|"]
    for p in (64, 512, 1460):
        if "pipeline/primary/pps/%d" % p in s:
            pri, ceil = "pipeline/primary/pps/%d" % p, "pipeline/ceiling/pps/%d" % p
            lines.append("| %d | %s | %s | %s | %s |" % (
                p, spread(s, pri, 1e-6), spread(s, "pipeline/secondary/pps/%d" % p, 1e-6), spread(s, ceil, 1e-6),
                "%.0f%%" % (100 * med(s, pri) / med(s, ceil)) if ceil in s else "–"))
    lines += ["", "Two processes joined by net_memif (primary releases, Mpps): %s at 64 bytes, %s at 1460 bytes." % (
        spread(s, "memif/pps/64", 1e-6), spread(s, "memif/pps/1460", 1e-6))]
    lines += ["", "Hold the primary adds to a matching packet in DPDK mode (µs; target ≤ 10 at p99):", "",
              "| payload | p50 | p99 | p99.9 |", "|---:|---:|---:|---:|"]
    for p in (64, 1460):
        lines.append("| %d | %s |" % (p, " | ".join(spread(s, "pipeline/hold/%d/%s_us" % (p, q))
                                                     for q in ("p50", "p99", "p999"))))
    for transport in ("tcp", "unix"):
        if "socket/%s/colo-proxy/64/pps" % transport not in s:
            continue
        lines += ["", "### Socket mode over %s vs QEMU 7.2 colo-compare (k packets/s; µs CPU per packet)" % transport,
                  "", "| payload | colo-proxy | QEMU | ratio | CPU colo-proxy | CPU QEMU | QEMU reordered | "
                      "ceiling | colo-proxy / ceiling |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for p in (64, 512, 1460):
            b = "socket/%s/%%s/%d/%%s" % (transport, p)
            lines.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                p, spread(s, b % ("colo-proxy", "pps"), 1e-3, "%.0f"), spread(s, b % ("qemu", "pps"), 1e-3, "%.0f"),
                ratio(s, b % ("colo-proxy", "pps"), b % ("qemu", "pps")),
                spread(s, b % ("colo-proxy", "cpu_us")), spread(s, b % ("qemu", "cpu_us")),
                spread(s, b % ("qemu", "reordered"), 1, "%.0f"), spread(s, b % ("ceiling", "pps"), 1e-3, "%.0f"),
                "%.0f%%" % (100 * med(s, b % ("colo-proxy", "pps")) / med(s, b % ("ceiling", "pps")))
                if b % ("ceiling", "pps") in s and b % ("colo-proxy", "pps") in s else "–"))
    lines += ["", "### Connections (64-byte payloads over TCP; k packets/s, frames lost, resident MiB at the end)", "",
              "| flows | colo-proxy | lost | RSS | QEMU | lost | RSS |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for f in (1, 100, 10000, 20000):
        lines.append("| %d | %s | %s | %s | %s | %s | %s |" % (
            f, spread(s, "connections/colo-proxy/%d/pps" % f, 1e-3, "%.0f"),
            spread(s, "connections/colo-proxy/%d/lost" % f, 1, "%.0f"),
            spread(s, "connections/colo-proxy/%d/rss_mib" % f, 1, "%.0f"),
            spread(s, "connections/qemu/%d/pps" % f, 1e-3, "%.0f"), spread(s, "connections/qemu/%d/lost" % f, 1, "%.0f"),
            spread(s, "connections/qemu/%d/rss_mib" % f, 1, "%.0f")))
    lines += ["", "### Hold latency added to matching packets (10k packets/s, 64 bytes, TCP; µs)", "",
              "| target | p50 | p99 | p99.9 |", "|---|---:|---:|---:|"]
    for t in ("colo-proxy", "qemu"):
        lines.append("| %s | %s | %s | %s |" % (t, *(spread(s, "latency/%s/%s_us" % (t, q), 1, "%.0f")
                                                   for q in ("p50", "p99", "p999"))))
    names = sorted({k.split("/")[2] for k in s if k.startswith("traces/")})
    if names:
        lines += ["", "### Recorded traces (socket mode over unix sockets, many passes as new connections; PVM frames "
                      "released per second, checkpoint requests, frames lost)", "",
                  "| trace | engine alone M frames/s | colo-proxy k frames/s | requests | lost | QEMU k frames/s | "
                  "requests | lost |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for n in names:
            b = "traces/%%s/%s/%%s" % n
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                n, spread(s, b % ("engine", "pps"), 1e-6), spread(s, b % ("colo-proxy", "pps"), 1e-3, "%.0f"), spread(s, b % ("colo-proxy", "requests"), 1, "%.0f"),
                spread(s, b % ("colo-proxy", "lost"), 1, "%.0f"), spread(s, b % ("qemu", "pps"), 1e-3, "%.0f"),
                spread(s, b % ("qemu", "requests"), 1, "%.0f"), spread(s, b % ("qemu", "lost"), 1, "%.0f")))
    lines += ["", "### Divergence rate (64 bytes over unix sockets, at full load; the load generator completes each "
                  "checkpoint at once on notify_dev; divergence → request includes the queue ahead of the record)", "",
              "| one divergent SVM record in | colo-proxy k packets/s | requests | divergence → request µs | "
              "QEMU k packets/s | requests | divergence → request µs | QEMU lost | QEMU reordered |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for every in DIVERGE_EVERY:
        b = "divergence/%%s/%d/%%s" % every
        if b % ("colo-proxy", "pps") not in s:
            continue
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            "never" if not every else "{:,}".format(every), spread(s, b % ("colo-proxy", "pps"), 1e-3, "%.0f"),
            spread(s, b % ("colo-proxy", "requests"), 1, "%.0f"), spread(s, b % ("colo-proxy", "to_request_us"), 1, "%.0f"),
            spread(s, b % ("qemu", "pps"), 1e-3, "%.0f"), spread(s, b % ("qemu", "requests"), 1, "%.0f"),
            spread(s, b % ("qemu", "to_request_us"), 1, "%.0f"), spread(s, b % ("qemu", "lost"), 1, "%.0f"),
            spread(s, b % ("qemu", "reordered"), 1, "%.0f")))
    lines += ["", "Each checkpoint is modelled as COLO takes one: the load generator stops both streams, waits "
                  "until the target has read what they sent, answers COLO_CHECKPOINT, and the SVM carries on from "
                  "the PVM's next record (what it had sent past that point is sent again; its records for earlier "
                  "PVM records never are, so divergences not yet sent vanish with the checkpoint, as they would). "
                  "That is why these runs use unix sockets: only there can the generator see that the target has "
                  "read everything."]
    lines += profile_md(s, found)
    return "\n".join(lines) + "\n"


def plot(s, out_dir):
    if not shutil.which("gnuplot"):
        return []
    made = []

    def series(name, keys):
        path = os.path.join(out_dir, name + ".dat")
        with open(path, "w") as f:
            for x, key in keys:
                if key in s:
                    f.write("%s %g %g %g\n" % (x, s[key]["median"], s[key]["min"], s[key]["max"]))
        return path

    payloads = (64, 512, 1460)
    curves = [("colo-proxy socket (tcp)", series("tp-proxy", [(p, "socket/tcp/colo-proxy/%d/pps" % p) for p in payloads])),
              ("QEMU 7.2 colo-compare (tcp)", series("tp-qemu", [(p, "socket/tcp/qemu/%d/pps" % p) for p in payloads])),
              ("socket ceiling (tcp)", series("tp-ceiling", [(p, "socket/tcp/ceiling/%d/pps" % p) for p in payloads])),
              ("engine alone, 1 conn", series("tp-engine", [(p, "engine/pps/%d/1" % p) for p in payloads])),
              ("DPDK ring ports (primary)", series("tp-pipeline", [(p, "pipeline/primary/pps/%d" % p) for p in payloads])),
              ("DPDK forwarding ceiling", series("tp-dpdk-ceiling", [(p, "pipeline/ceiling/pps/%d" % p) for p in payloads]))]
    flows = (1, 100, 10000, 20000)
    conn_curves = [("colo-proxy socket", series("conn-proxy", [(f, "connections/colo-proxy/%d/pps" % f) for f in flows])),
                   ("QEMU 7.2 colo-compare", series("conn-qemu", [(f, "connections/qemu/%d/pps" % f) for f in flows]))]
    script = """set terminal pngcairo size 900,540 font ",11"
set grid; set key outside bottom center horizontal
set output '{d}/throughput-vs-payload.png'
set title 'Packets/s by payload (median, min-max bars)'; set xlabel 'payload (bytes)'; set ylabel 'packets/s'
set logscale y
plot {tp}
set output '{d}/throughput-vs-connections.png'
set title 'Socket mode vs QEMU by number of TCP flows (64-byte payloads)'; set xlabel 'flows'
set logscale x
plot {cn}
unset logscale
set output '{d}/latency-cdf.png'
set title 'Hold latency added to matching packets (10k packets/s, 64 bytes, TCP)'
set xlabel 'latency (microseconds)'; set ylabel 'fraction of packets'; set logscale x
plot '{d}/latency-colo-proxy.dat' using 1:2 with lines lw 2 title 'colo-proxy', '{d}/latency-qemu.dat' using 1:2 with lines lw 2 title 'QEMU 7.2 colo-compare'
""".format(d=out_dir,
           tp=", ".join("'%s' using 1:2:3:4 with yerrorlines title '%s'" % (p, t) for t, p in curves),
           cn=", ".join("'%s' using 1:2:3:4 with yerrorlines title '%s'" % (p, t) for t, p in conn_curves))
    subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    for name in ("throughput-vs-payload", "throughput-vs-connections", "latency-cdf"):
        if os.path.exists(os.path.join(out_dir, name + ".png")):
            made.append(name + ".png")
    return made


def update_docs(summary, pngs, out_dir):
    docs = os.path.join(TOP, "docs", "benchmarks.md")
    pics = os.path.join(TOP, "docs", "bench")
    os.makedirs(pics, exist_ok=True)
    for p in pngs:
        shutil.copy(os.path.join(out_dir, p), os.path.join(pics, p))
    block = "%s\n## Latest `bench/run` (generated: do not edit by hand)\n\n%s\n%s\n%s" % (
        BEGIN, summary, "".join("![%s](bench/%s)\n" % (p[:-4], p) for p in pngs), END)
    text = open(docs).read()
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    open(docs, "w").write(text)


def report(out_dir):
    """Summary, plots and the docs section from a results directory."""
    saved = json.load(open(os.path.join(out_dir, "results.json")))
    md = summary_md(saved["figures"], saved["machine"], saved["runs"], saved["seconds"], saved.get("profile", {}))
    open(os.path.join(out_dir, "summary.md"), "w").write(md)
    update_docs(md, plot(saved["figures"], out_dir), out_dir)
    return md


def main():
    if "--report" in sys.argv:  # re-render an earlier run: bench/run --report bench/results/DATE
        print(report(sys.argv[sys.argv.index("--report") + 1]))
        return
    quick = "--quick" in sys.argv
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 3
    mode = dpdk_memory()
    info = machine(mode)
    print("bench/run: %s, %d cores; DPDK memory: %s (%s); %d runs per scenario%s"
          % (info["cpu"], info["cores"], mode, "hugepages" if "in-memory" in mode else "no hugepages available",
             runs, ", quick" if quick else ""), flush=True)
    out_dir = os.path.join(TOP, "bench", "results", datetime.datetime.now().strftime("%Y-%m-%d-%H%M%S"))
    os.makedirs(out_dir)
    fig = Figures()
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            for name, step in (("engine", lambda: engine(fig)), ("pipeline", lambda: pipeline(fig, mode)),
                               ("memif", lambda: memif(fig, mode)),
                               ("socket", lambda: socket_mode(fig, quick, tmp)),
                               ("connections", lambda: connections(fig, quick, tmp)),
                               ("latency", lambda: latency(fig, quick, tmp, out_dir)),
                               ("traces", lambda: traces(fig, quick, tmp)),
                               ("divergence", lambda: divergence(fig, quick, tmp))):
                t = time.time()
                step()
                print("bench/run: run %d/%d %s done in %.0f s" % (i + 1, runs, name, time.time() - t), flush=True)
        t = time.time()
        found = profile(quick, tmp)
        print("bench/run: profile done in %.0f s" % (time.time() - t), flush=True)
    seconds = time.time() - t0
    s = fig.summary()
    json.dump({"machine": info, "runs": runs, "seconds": seconds, "figures": s, "profile": found},
              open(os.path.join(out_dir, "results.json"), "w"), indent=1)
    print(report(out_dir))
    print("bench/run: results in %s; docs/benchmarks.md updated" % os.path.relpath(out_dir, TOP))


if __name__ == "__main__":
    main()
