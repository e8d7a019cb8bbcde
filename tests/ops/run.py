#!/usr/bin/env python3
"""run.py PROXY — what an operator touches, driven as an operator would.

Socket mode (`colo-proxy compare`, configured by a config file alone: listening
on all three chardev sockets, a control socket, a metrics port, a divergence
report directory) is fed a real PVM/SVM fixture pair whose payloads differ
once. The checkpoint it asks for is completed over the control socket
(checkpoint-done). Then:
  * `colo-proxy status` prints the table, `--json` JSON whose counters agree
    with what was sent (every PVM record released, one divergence, one request);
  * a real HTTP GET of /metrics returns Prometheus text whose every sample line
    is well formed and whose counters match the JSON; other paths get 404;
  * `colo-proxy status` against a socket nobody serves fails with a clear line;
  * the divergence's report exists, its pcaps read back with libpcap (tcpdump),
    and `colo-proxy explain` shows the connection, the offset, the marked byte;
  * `colo-proxy replay --reports` writes the same report for the same pair;
  * `--check` accepts good config files and refuses bad ones (unknown key,
    bad value, not a flag, missing group, missing endpoint, unreadable file) for
    every command, each with a line naming the key or value and the fix.
Each check prints "ops: PASS|FAIL what".
"""
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

FAILURES = 0
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "..", "pcap_fixtures")


def verdict(what, ok, detail=""):
    global FAILURES
    print("ops: %s %s%s" % ("PASS" if ok else "FAIL", what, "" if ok or not detail else " (%s)" % detail),
          flush=True)
    FAILURES += not ok


def read_pcap(path):
    data = open(path, "rb").read()
    frames, off = [], 24
    while off + 16 <= len(data):
        caplen = struct.unpack("<I", data[off + 8:off + 12])[0]
        frames.append(data[off + 16:off + 16 + caplen])
        off += 16 + caplen
    return frames


def record(frame):
    return struct.pack("!I", len(frame)) + frame


def connect_unix(path, timeout=10):
    deadline = time.time() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def read_records(sock, count, timeout):
    sock.settimeout(timeout)
    buf, out = b"", []
    try:
        while len(out) < count:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
            while len(buf) >= 4 and len(buf) >= 4 + struct.unpack("!I", buf[:4])[0]:
                n = struct.unpack("!I", buf[:4])[0]
                out.append(buf[4:4 + n])
                buf = buf[4 + n:]
    except socket.timeout:
        pass
    return out


def flow_of(frame):
    """The bytes that name an IPv4 5-tuple (the fixture is IPv4)."""
    return frame[26:38]


def same_per_flow(released, sent):
    """Every frame exactly once, each flow in its order (flows may interleave differently)."""
    def flows(frames):
        by = {}
        for f in frames:
            by.setdefault(flow_of(f), []).append(f)
        return by
    return len(released) == len(sent) and flows(released) == flows(sent)


def control(path, line):
    s = connect_unix(path)
    s.sendall(line.encode() + b"\n")
    s.settimeout(5)
    answer = s.recv(4096).decode()
    s.close()
    return answer.strip()


def status(proxy, ctl, *args):
    return subprocess.run([proxy, "status", "--control", ctl, *args], capture_output=True, text=True, timeout=10)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


PROM_SAMPLE = re.compile(r'^colo_proxy_[a-z0-9_]+(\{[a-z_]+="[^"]*"\})? -?[0-9.e+-]+$')


def check_prometheus(text, js):
    lines = [l for l in text.splitlines() if l and not l.startswith("#")]
    bad = [l for l in lines if not PROM_SAMPLE.match(l)]
    verdict("every metrics sample line is well formed (%d lines)" % len(lines), lines and not bad, bad[:3])
    types = re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M)
    verdict("every family has HELP and TYPE, counters end in _total",
            types and all(t != "counter" or n.endswith("_total") for n, t in types)
            and len(re.findall(r"^# HELP ", text, re.M)) == len(types))
    want = 'colo_proxy_divergences_total{kind="payload"} %d' % js["divergences"]["payload"]
    verdict("metrics agree with status --json (%s)" % want, want in lines)
    verdict("metrics carry hold-latency quantiles",
            any(l.startswith('colo_proxy_hold_latency_seconds{quantile="0.99"}') for l in lines))


def wait_for(path, text, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path) and text in open(path).read():
            return True
        time.sleep(0.05)
    return False


def check_sighup(proxy, p, conf, conf_text, logfile, ctl):
    """logrotate's way: move the file, SIGHUP; the file's new bypass rule is taken, a bad file is not."""
    os.rename(logfile, logfile + ".1")
    with open(conf, "w") as f:
        f.write(conf_text.replace("proto=udp,guest_port=123;", "proto=udp,guest_port=123; proto=udp,guest_port=53;"))
    p.send_signal(signal.SIGHUP)
    verdict("SIGHUP reopens the moved log file", wait_for(logfile, "SIGHUP: log reopened"))
    verdict("SIGHUP reloads the config file", wait_for(logfile, "reloaded: divergence reports"))
    js = json.loads(status(proxy, ctl, "--json").stdout)
    verdict("the reloaded bypass rules show in status", sorted(js.get("bypass_packets", {})) ==
            ["proto=tcp,peer=192.0.2.0/24", "proto=udp,guest_port=123", "proto=udp,guest_port=53"],
            js.get("bypass_packets"))
    with open(conf, "w") as f:
        f.write(conf_text.replace("compare_timeout = 60000", "compare_timeout = soon"))
    p.send_signal(signal.SIGHUP)
    verdict("a bad config on SIGHUP is refused and the proxy runs on",
            wait_for(logfile, "reload failed") and status(proxy, ctl).returncode == 0 and p.poll() is None)
    with open(conf, "w") as f:
        f.write(conf_text)


def pcap_count(path):
    r = subprocess.run(["tcpdump", "-nr", path], capture_output=True, text=True)
    return len(r.stdout.splitlines()) if r.returncode == 0 else -1


def check_report(proxy, reports, who):
    meta = os.path.join(reports, "divergence-1.txt")
    verdict("%s wrote divergence-1.txt and its two pcaps" % who,
            all(os.path.exists(os.path.join(reports, "divergence-1" + sfx)) for sfx in (".txt", "-pvm.pcap", "-svm.pcap")))
    counts = [pcap_count(os.path.join(reports, "divergence-1-%s.pcap" % side)) for side in ("pvm", "svm")]
    verdict("%s's report pcaps read back with libpcap (%s packets)" % (who, counts), all(c >= 1 for c in counts))
    for f in ("divergence-1.txt", "divergence-1-svm.pcap"):
        r = subprocess.run([proxy, "explain", os.path.join(reports, f)], capture_output=True, text=True)
        out = r.stdout
        verdict("explain %s (%s): connection, offset, side-by-side view, marked byte, hint" % (f, who),
                r.returncode == 0 and "divergence 1 (payload) on tcp 10.99.0.2:80 > 10.99.0.1:41002" in out
                and "at stream offset 490" in out and "PVM" in out and "SVM" in out
                and re.search(r"^ +\^\^", out, re.M) and "\nhint: " in out
                and "|ixture line 0000|" in out and "|ixture line .000|" in out, out + r.stderr)
        verdict("explain %s (%s): plural forms right, offsets in decimal only (no hex address column)" % (f, who),
                "PVM: 7 packets held" in out and "SVM: 1 packet held;" in out and "of 1448 bytes" in out
                and re.search(r"^ *stream offset +PVM", out, re.M) and re.search(r"^ +478 69 78 74 ", out, re.M)
                and not re.search(r"^[0-9a-f]{10} ", out, re.M), out)
    bad = subprocess.run([proxy, "explain", meta + ".nope"], capture_output=True, text=True)
    verdict("explain refuses a file that is no report, saying what to give", bad.returncode != 0 and
            "divergence-N.txt" in bad.stderr, bad.stderr)


CONFIGS = {
    "compare": ("primary_in = tcp:127.0.0.1:9001\nsecondary_in = tcp:0.0.0.0:9004,server\n"
                "outdev = tcp:127.0.0.1:9005\nvnet_hdr_support = true\nqmp = unix:/run/qmp.sock\n"
                "compare_timeout = 3000\nexpired_scan_cycle = 1000\nmax_queue_size = 1024\n"),
    "rewrite": ("mirror_in = tcp:127.0.0.1:9003\nto_svm = tcp:127.0.0.1:9100,server\n"
                "from_svm = tcp:127.0.0.1:9101,server\nto_primary = tcp:10.0.0.1:9004\n"),
    "run": ("eal = -l 1 --vdev=net_af_packet0,iface=eth0 --vdev=net_af_packet1,iface=eth1\n"
            "role = primary\nclient-port = net_af_packet0\npvm-port = net_vhost0\nlink-port = net_af_packet1\n"
            "control = /run/colo-proxy.sock\nmetrics = 9464\n"),
}


def config_check(proxy, tmp, command, body, group=None):
    path = os.path.join(tmp, "check.conf")
    with open(path, "w") as f:
        f.write("[%s]\n%s" % (group or command, body))
    return subprocess.run([proxy, command, "--config", path, "--check"], capture_output=True, text=True, timeout=10)


def check_config_checker(proxy, tmp):
    for command, body in CONFIGS.items():
        r = config_check(proxy, tmp, command, body)
        verdict("--check accepts a good [%s] file" % command, r.returncode == 0 and "configuration OK" in r.stdout,
                r.stdout + r.stderr)
    bad_cases = [
        ("compare", CONFIGS["compare"] + "compare_timout = 3000\n", None,
         ["unknown key 'compare_timout'", "did you mean 'compare_timeout'"]),
        ("compare", CONFIGS["compare"].replace("3000", "soon"), None,
         ["--compare_timeout 'soon' is not a whole number", "key 'compare_timeout' in [compare]"]),
        ("compare", CONFIGS["compare"].replace("vnet_hdr_support = true", "vnet_hdr_support = maybe"), None,
         ["--vnet_hdr_support 'maybe' is a flag: give it alone, or write on or off",
          "key 'vnet_hdr_support' in [compare]"]),
        ("compare", CONFIGS["compare"].replace("outdev = tcp:127.0.0.1:9005\n", ""), None,
         ["needs --outdev"]),
        ("compare", CONFIGS["compare"].replace("tcp:127.0.0.1:9001", "udp:9001"), None,
         ["--primary_in 'udp:9001': use tcp:HOST:PORT or unix:PATH"]),
        ("compare", CONFIGS["compare"], "rewrite", ["has no [compare] group"]),
        ("compare", "this is not ini\n", None, ["not a key-value pair"]),
        ("rewrite", CONFIGS["rewrite"] + "max-conns = 0\n", None, ["--max-conns '0' is not a whole number >= 16"]),
        ("run", CONFIGS["run"].replace("role = primary", "role = tertiary"), None,
         ["--role 'tertiary': use primary or secondary", "key 'role' in [run]"]),
        ("run", CONFIGS["run"].replace("pvm-port = net_vhost0\n", ""), None, ["the primary role needs --pvm-port"]),
        ("run", CONFIGS["run"].replace("metrics = 9464", "metrics = 99999"), None, ["not PORT or ADDR:PORT"]),
        ("run", CONFIGS["run"].replace("-l 1", "-l '1"), None, ["eal = "]),
    ]
    for command, body, group, wanted in bad_cases:
        r = config_check(proxy, tmp, command, body, group)
        verdict("--check refuses a bad [%s] file: %s" % (group or command, wanted[0]),
                r.returncode == 2 and all(w in r.stderr for w in wanted) and "Traceback" not in r.stderr,
                r.stderr)
    r = subprocess.run([proxy, "compare", "--config", os.path.join(tmp, "missing.conf"), "--check"],
                       capture_output=True, text=True)
    verdict("--check names a config file it cannot read", r.returncode == 2 and "missing.conf" in r.stderr
            and "No such file" in r.stderr, r.stderr)


COMMANDS = ("run", "compare", "rewrite", "replay", "status", "explain", "witness")


def all_prefixed(command, text):
    lines = [l for l in text.splitlines() if l]
    return bool(lines) and all(l.startswith("colo-proxy %s: " % command) for l in lines)


def endpoints(tmp, name, **extra):
    """compare's three endpoints as servers in tmp, as option words."""
    words = []
    for role in ("primary_in", "secondary_in", "outdev"):
        words += ["--" + role, extra.get(role, "unix:%s,server" % os.path.join(tmp, "%s-%s" % (name, role)))]
    return words


def check_command_line(proxy, tmp):
    """The command line as a newcomer meets it: help, version, misspellings, QEMU's spellings."""
    r = subprocess.run([proxy, "--version"], capture_output=True, text=True)
    verdict("colo-proxy --version prints the version", r.returncode == 0 and
            re.match(r"^colo-proxy \d+\.\d+\.\d+\n$", r.stdout), r.stdout + r.stderr)
    for command in COMMANDS:
        runs = [subprocess.run([proxy, *args], capture_output=True, text=True)
                for args in (["help", command], [command, "-h"], [command, "--help"])]
        verdict("colo-proxy help %s, %s -h and %s --help print its usage" % (command, command, command),
                all(x.returncode == 0 and x.stdout == runs[2].stdout and x.stdout.startswith(
                    "usage: colo-proxy %s" % command) for x in runs), [x.stdout[:60] + x.stderr for x in runs])
    for args in (["help", "compre"], ["compre"]):
        r = subprocess.run([proxy, *args], capture_output=True, text=True)
        verdict("colo-proxy %s names the command that does not exist and the nearest one" % " ".join(args),
                r.returncode == 2 and "unknown command 'compre' (did you mean compare?)" in r.stderr, r.stderr)
    misspelt = [("compare", ["--qmpp", "unix:/x"], "unknown option '--qmpp' (did you mean --qmp?)"),
                ("compare", ["--compare-timout=5"], "unknown option '--compare-timout' (did you mean --compare-timeout?)"),
                ("rewrite", ["--to-svm", "x"], "unknown option '--to-svm' (did you mean --to_svm?)"),
                ("replay", ["--reprots", "x", "a", "b"], "unknown option '--reprots' (did you mean --reports?)"),
                ("status", ["--contorl", "x"], "unknown option '--contorl' (did you mean --control?)"),
                ("witness", ["--lease-mss", "5"], "unknown option '--lease-mss' (did you mean --lease-ms?)"),
                ("witness", ["--listen", "localhost:7440", "--key-file", "/dev/null"],
                 "--listen 'localhost:7440' is not ADDR:PORT with a numeric address"),
                ("run", ["--", "--role", "primary", "--heartbeat-mss", "5"],
                 "unknown option '--heartbeat-mss' (did you mean --heartbeat-ms?)"),
                ("compare", ["--json"], "unknown option '--json'"),
                ("rewrite", ["--qmp"], "option '--qmp' needs a value"),
                ("compare", ["--check=yes"], "option '--check' takes no value"),
                ("compare", ["--vnet_hdr_support", "on"],
                 "'on' after --vnet_hdr_support: a value of --vnet_hdr_support is written --vnet_hdr_support=on"),
                ("rewrite", ["--qmp", "unix:/x", "stray"], "'stray' is no option: rewrite takes options only"),
                ("status", ["json"], "'json' is no option: status takes options only")]
    for command, args, want in misspelt:
        r = subprocess.run([proxy, command, *args], capture_output=True, text=True)
        verdict("%s %s: '%s', every line 'colo-proxy %s: '" % (command, " ".join(args), want, command),
                r.returncode == 2 and want in r.stderr and all_prefixed(command, r.stderr), r.stderr)
    for command, args in (("compare", endpoints(tmp, "qemu")), ("rewrite", [
            "--mirror_in", "tcp:127.0.0.1:9003", "--to_svm", "unix:%s,server=on" % os.path.join(tmp, "q-to-svm"),
            "--from_svm", "unix:%s,server=on" % os.path.join(tmp, "q-from-svm"), "--to_primary", "tcp:127.0.0.1:9004"])):
        for value in ("on", "off", "true"):
            r = subprocess.run([proxy, command, *args, "--vnet_hdr_support=" + value, "--qmp", "unix:/x", "--check"],
                               capture_output=True, text=True)
            verdict("%s takes QEMU's spelling --vnet_hdr_support=%s (and ,server=on)" % (command, value),
                    r.returncode == 0 and "configuration OK" in r.stdout, r.stderr)
        r = subprocess.run([proxy, command, *args, "--vnet_hdr_support=maybe", "--check"], capture_output=True, text=True)
        verdict("%s refuses --vnet_hdr_support=maybe, saying on or off" % command,
                r.returncode == 2 and "write on or off" in r.stderr and all_prefixed(command, r.stderr), r.stderr)


MISSING = "/nonexistent-colo-ops"


def check_paths_at_check(proxy, tmp):
    """--check refuses, for every path option of every command, a directory that does not exist."""
    good = endpoints(tmp, "paths")
    rewrite = ["--mirror_in", "tcp:127.0.0.1:9003", "--to_svm", "unix:%s,server" % os.path.join(tmp, "p-to-svm"),
               "--from_svm", "unix:%s,server" % os.path.join(tmp, "p-from-svm"), "--to_primary", "tcp:127.0.0.1:9004"]
    run = ["--", "--role", "primary", "--client-port", "0", "--pvm-port", "1", "--link-port", "2"]
    pcaps = [os.path.join(FIXTURES, "http-payload-differs-%s.pcap" % side) for side in ("pvm", "svm")]
    cases = [
        ("compare", good + ["--control", MISSING + "/ctl"], "--control '%s/ctl'" % MISSING),
        ("compare", good + ["--divergence-reports", MISSING], "--divergence-reports '%s'" % MISSING),
        ("compare", endpoints(tmp, "paths", outdev="unix:%s/o,server" % MISSING), "--outdev '%s/o'" % MISSING),
        ("compare", good + ["--log", "file:%s/log" % MISSING], "--log '%s/log'" % MISSING),
        ("rewrite", rewrite + ["--control", MISSING + "/ctl"], "--control '%s/ctl'" % MISSING),
        ("rewrite", rewrite[:2] + ["--to_svm", "unix:%s/s,server" % MISSING] + rewrite[4:], "--to_svm '%s/s'" % MISSING),
        ("run", run + ["--control", MISSING + "/ctl"], "--control '%s/ctl'" % MISSING),
        ("run", run + ["--divergence-reports", MISSING], "--divergence-reports '%s'" % MISSING),
        ("replay", ["--reports", MISSING] + pcaps, "--reports '%s'" % MISSING),
        ("replay", ["--out", MISSING + "/out.pcap"] + pcaps, "--out '%s/out.pcap'" % MISSING),
    ]
    for command, args, want in cases:
        r = subprocess.run([proxy, command, *args, "--check"], capture_output=True, text=True)
        verdict("%s --check refuses %s: its directory does not exist, and says mkdir -p" % (command, want),
                r.returncode == 2 and want in r.stderr and "does not exist" in r.stderr and
                "mkdir -p '%s'" % MISSING in r.stderr and all_prefixed(command, r.stderr), r.stdout + r.stderr)
    short_key = os.path.join(tmp, "short.key")
    open(short_key, "w").write("too short\n")
    for args, want in ((["--key-file", MISSING + "/key"], "--key-file '%s/key'" % MISSING),
                       (["--key-file", short_key], "holds 9 bytes; a key is 16 to 256 bytes, e.g. made with 'head -c 32")):
        r = subprocess.run([proxy, "witness", "--listen", "127.0.0.1:7440", *args, "--check"], capture_output=True,
                           text=True)
        verdict("witness --check refuses a key it cannot use: %s" % want,
                r.returncode == 2 and want in r.stderr and all_prefixed("witness", r.stderr), r.stderr)
    for args, want in ((["--checkpoint-times", MISSING + "/t.txt"] + pcaps, "--checkpoint-times '%s/t.txt'" % MISSING),
                       ([pcaps[0], MISSING + "/svm.pcap"], "'%s/svm.pcap': cannot read it" % MISSING)):
        r = subprocess.run([proxy, "replay", *args, "--check"], capture_output=True, text=True)
        verdict("replay --check refuses an input it cannot read: %s" % want,
                r.returncode == 2 and want in r.stderr, r.stderr)
    r = subprocess.run([proxy, "compare", *good, "--control", MISSING + "/ctl"], capture_output=True, text=True,
                       timeout=10)
    verdict("compare refuses to start on the same missing directory, with the same line",
            r.returncode == 2 and "--control '%s/ctl'" % MISSING in r.stderr and "started" not in r.stderr, r.stderr)


def check_replay_cli(proxy, tmp):
    pvm, svm = (os.path.join(FIXTURES, "http-payload-differs-%s.pcap" % side) for side in ("pvm", "svm"))
    r = subprocess.run([proxy, "replay", "--reports", MISSING, pvm, svm], capture_output=True, text=True)
    verdict("replay --reports MISSING fails before any work, naming the directory and the fix",
            r.returncode == 2 and r.stdout == "" and "--reports '%s': '%s' does not exist" % (MISSING, MISSING)
            in r.stderr, r.stdout[:200] + r.stderr)
    r = subprocess.run([proxy, "replay", pvm, svm], capture_output=True, text=True)
    out = r.stdout
    verdict("the replay report shows when each checkpoint was requested and done",
            "  checkpoint 1: requested at 0.677690 s (divergence), done at 0.767690 s (90.0 ms later" in out, out)
    verdict("the replay report marks the differing byte under both rows, and names the next step",
            re.search(r"^  SVM: 10 30 .*\n {7}\^\^ {46}  \^ {15}$", out, re.M) and
            "next: run again with --reports DIR, then colo-proxy explain DIR/divergence-1.txt" in out, out)
    frames = len(read_pcap(pvm)) + len(read_pcap(svm))
    r = subprocess.run([proxy, "replay", "--json", "--vnet-hdr", pvm, svm], capture_output=True, text=True)
    js = json.loads(r.stdout or "{}")
    verdict("replay --vnet-hdr on a capture without vnet headers: every frame malformed (%d), no divergence "
            "reported on garbage, every PVM frame released" % frames,
            r.returncode == 0 and js.get("malformed_vnet_hdr") == frames and js.get("divergence_count") == 0
            and js.get("released") == len(read_pcap(pvm)), r.stdout[:400])
    verdict("... and warns once, saying what to check", r.stderr.count("warning:") == 1 and
            "plausible 12-byte virtio-net header" in r.stderr, r.stderr)


def check_checkpoint_channel(proxy, tmp):
    args = endpoints(tmp, "chan")
    r = subprocess.run([proxy, "compare", *args, "--check"], capture_output=True, text=True)
    verdict("--check without --qmp or --notify_dev passes with a warning that no checkpoint can be asked for",
            r.returncode == 0 and "colo-proxy compare: warning: neither --qmp nor --notify_dev" in r.stderr, r.stderr)
    r = subprocess.run([proxy, "compare", *args, "--qmp", "unix:/x", "--check"], capture_output=True, text=True)
    verdict("--check with --qmp does not warn", r.returncode == 0 and "warning" not in r.stderr, r.stderr)
    for extra, channel in (([], "none"), (["--qmp", "unix:%s" % os.path.join(tmp, "chan-qmp")], "qmp")):
        ctl = os.path.join(tmp, "chan.ctl")
        p = subprocess.Popen([proxy, "compare", *args, "--control", ctl, *extra], stderr=subprocess.PIPE, text=True)
        try:
            connect_unix(ctl).close()
            table = status(proxy, ctl).stdout
            js = json.loads(status(proxy, ctl, "--json").stdout or "{}")
            prom = status(proxy, ctl, "--prometheus").stdout
            verdict("status shows checkpoint channel %s in the table, JSON and Prometheus alike" % channel,
                    re.search(r"^checkpoint_channel +%s$" % re.escape(channel), table, re.M)
                    and js.get("checkpoint_channel") == channel
                    and 'colo_proxy_checkpoint_channel{channel="%s"} 1' % channel in prom, table + prom)
        finally:
            p.terminate()
            err = p.communicate(timeout=10)[1]
        verdict("compare's start line names the checkpoint channel (%s)%s" % (channel, ", with a warning" if
                channel == "none" else ""), "checkpoint channel: %s" % ("none" if channel == "none" else "QMP at")
                in err and ("warning: neither --qmp nor --notify_dev" in err) == (channel == "none"), err)


def fake_qmp(path):
    """A QMP server that greets, takes qmp_capabilities, and stays."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(10)
    conn, _ = srv.accept()
    conn.sendall(b'{"QMP": {"version": {}, "capabilities": []}}\r\n')
    conn.settimeout(10)
    buf = b""
    while b"qmp_capabilities" not in buf:
        buf += conn.recv(4096)
    conn.sendall(b'{"return": {}, "id": "cap"}\r\n')
    return srv, conn


PEERLESS_WARN_S = 5  # chardev_endpoint.c


def check_daemon_talks(proxy, tmp):
    """A start line; one warning while outdev and QMP are missing (not one per retry); a line when each comes up."""
    out, qmp = os.path.join(tmp, "talk-out"), os.path.join(tmp, "talk-qmp")
    logfile = os.path.join(tmp, "talk.log")
    args = endpoints(tmp, "talk", outdev="unix:" + out) + ["--qmp", "unix:" + qmp, "--log-level", "debug"]
    with open(logfile, "w") as log:
        p = subprocess.Popen([proxy, "compare", *args], stderr=log)
    peers = []
    try:
        verdict("compare logs one start line: what it listens on, connects to, waits for",
                wait_for(logfile, "started: primary_in listens on unix:%s" % os.path.join(tmp, "talk-primary_in"))
                and wait_for(logfile, "outdev connects to unix:%s; checkpoint channel: QMP at unix:%s" % (out, qmp))
                and wait_for(logfile, "waiting for QEMU's chardevs and its monitor to connect"), open(logfile).read())
        verdict("an unreachable outdev and QMP are warned about, with the reason",
                wait_for(logfile, "warning: outdev: cannot reach unix:%s: No such file or directory" % out)
                and wait_for(logfile, "warning: qmp: cannot reach QEMU's monitor at unix:%s: No such file" % qmp),
                open(logfile).read())
        time.sleep(1.5)  # several retries (outdev every 200 ms, QMP backing off from 100 ms): none said again
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(out)
        srv.listen(1)
        peers.append(srv)
        peers.extend(fake_qmp(qmp))
        came_up = wait_for(logfile, "outdev connected to unix:%s after " % out) and \
            wait_for(logfile, "qmp: connected to unix:%s after " % qmp)
        text = open(logfile).read()
        verdict("each comes up with one line saying after how many failed attempts", came_up and
                re.search(r"outdev connected to \S+ after ([3-9]|\d\d+) failed attempts", text), text)
        verdict("the warnings were rate-limited: one each while retrying", text.count("outdev: cannot reach") == 1
                and text.count("qmp: cannot reach") == 1, text)
        verdict("a listening endpoint with no peer yet says so, once (in %d s)" % PEERLESS_WARN_S,
                wait_for(logfile, "warning: primary_in: no peer has connected to unix:%s (QEMU's chardev connects "
                         "here) (1 time so far" % os.path.join(tmp, "talk-primary_in"), PEERLESS_WARN_S + 10)
                and open(logfile).read().count("primary_in: no peer") == 1, open(logfile).read())
        prim = connect_unix(os.path.join(tmp, "talk-primary_in"))
        peers.append(prim)
        verdict("... and one line when it comes", wait_for(logfile, "primary_in connected to unix:%s, after 1 warning "
                                                           "that no peer had" % os.path.join(tmp, "talk-primary_in")),
                open(logfile).read())
    finally:
        p.terminate()
        p.wait(timeout=10)
        for s in peers:
            s.close()


def check_metrics_in_loopback_namespace(proxy, tmp):
    """--metrics PORT where only lo is up: 127.0.0.1 is bound without the resolver; a bind error says its errno."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        print("ops: SKIP metrics in a loopback-only namespace (needs root and ip)", flush=True)
        return
    ns = "colo-ops-%d" % os.getpid()
    subprocess.run(["ip", "netns", "add", ns], check=True)
    procs = []
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        port = 9464
        inside = ["ip", "netns", "exec", ns]
        ctl = os.path.join(tmp, "ns.ctl")
        p = subprocess.Popen(inside + [proxy, "compare", *endpoints(tmp, "ns"), "--control", ctl, "--metrics",
                                       str(port)], stderr=subprocess.PIPE, text=True)
        procs.append(p)
        connect_unix(ctl).close()
        get = subprocess.run(inside + ["python3", "-c", "import urllib.request; print(urllib.request.urlopen("
                                       "'http://127.0.0.1:%d/metrics', timeout=5).status)" % port],
                             capture_output=True, text=True, timeout=20)
        verdict("--metrics %d serves in a namespace with only loopback" % port, get.stdout.strip() == "200",
                get.stdout + get.stderr)
        again = subprocess.run(inside + [proxy, "compare", *endpoints(tmp, "ns2"), "--metrics", str(port)],
                               capture_output=True, text=True, timeout=10)
        verdict("a second one on the same port fails with the real errno, not 'Success'",
                again.returncode == 2 and "cannot serve metrics on 127.0.0.1:%d: bind: Address already in use" % port
                in again.stderr and "Success" not in again.stderr, again.stderr)
    finally:
        for p in procs:
            p.terminate()
            p.communicate(timeout=10)
        subprocess.run(["ip", "netns", "del", ns])


def check_rewrite_status(proxy, tmp):
    """The secondary's socket mode answers status too: its role, its sockets, its rewriting counters."""
    eps = {r: os.path.join(tmp, "rw-" + r) for r in ("mirror_in", "to_svm", "from_svm", "to_primary")}
    ctl = os.path.join(tmp, "rw.ctl")
    args = [proxy, "rewrite", "--control", ctl]
    for role, path in eps.items():
        args += ["--" + role, "unix:%s,server" % path]
    p = subprocess.Popen(args, stderr=subprocess.DEVNULL)
    try:
        mirror = connect_unix(eps["mirror_in"])
        deadline = time.time() + 5
        js = {}
        while time.time() < deadline and js.get("socket_connected", {}).get("mirror_in") != 1:
            r = status(proxy, ctl, "--json")
            js = json.loads(r.stdout) if r.returncode == 0 else {}
            time.sleep(0.05)
        verdict("rewrite mode answers status --json: role, sockets, rewriting counters",
                js.get("role") == "rewrite" and js.get("socket_connected", {}).get("mirror_in") == 1
                and js.get("socket_connected", {}).get("to_svm") == 0 and "offsets_learned" in js, js)
        mirror.close()
    finally:
        p.terminate()
        p.wait(timeout=10)


def run_briefly(proxy, tmp, *extra):
    """Socket mode for a moment, with one peer connecting: its stderr."""
    eps = {r: os.path.join(tmp, "lg-" + r) for r in ("p", "s", "o")}
    p = subprocess.Popen([proxy, "compare", "--primary_in", "unix:%s,server" % eps["p"], "--secondary_in",
                          "unix:%s,server" % eps["s"], "--outdev", "unix:%s,server" % eps["o"], *extra],
                         stderr=subprocess.PIPE, text=True)
    peer = connect_unix(eps["o"])
    time.sleep(0.3)
    p.terminate()
    err = p.communicate(timeout=10)[1]
    peer.close()
    return p.returncode, err


def check_log_options(proxy, tmp):
    rc, err = run_briefly(proxy, tmp)
    verdict("by default info lines reach stderr (a peer connecting, the summary)",
            rc == 0 and "outdev connected" in err and "summary: PVM records in 0" in err, err)
    rc, err = run_briefly(proxy, tmp, "--log-level", "warning")
    verdict("--log-level warning keeps info lines out", rc == 0 and "connected" not in err and "summary" not in err, err)
    journald = os.path.exists("/run/systemd/journal/socket")
    rc, err = run_briefly(proxy, tmp, "--log", "journal")
    verdict("--log journal: %s" % ("to the journal" if journald else "no journald here, so stderr instead of nothing"),
            rc == 0 and (("summary" not in err) if journald else ("summary: PVM records in 0" in err)), err)
    for args, want in ((["--log", "syslog"], "use stderr, journal or file:PATH"),
                       (["--log-level", "loud"], "use error, warning, info or debug"),
                       (["--log", "file:/nonexistent/dir/x.log"],
                        "--log '/nonexistent/dir/x.log': '/nonexistent/dir' does not exist")):
        r = subprocess.run([proxy, "compare", *args, "--check"], capture_output=True, text=True)
        verdict("%s is refused with what to write instead" % " ".join(args), r.returncode == 2 and want in r.stderr,
                r.stderr)


def check_dpdk_reload(proxy, tmp):
    """The DPDK data plane, from a config file alone; SIGHUP hands the new bypass rules to the lcore."""
    conf, ctl, logfile = (os.path.join(tmp, n) for n in ("run.conf", "run.sock", "run.log"))
    text = ("[run]\neal = -l 0 --no-huge -m 256 --no-pci --no-shconf --no-telemetry --log-level=error "
            "--file-prefix colo-ops-%d --vdev=net_ring0 --vdev=net_ring1 --vdev=net_ring2\n"
            "role = primary\nclient-port = net_ring0\npvm-port = net_ring1\nlink-port = net_ring2\n"
            "mbufs = 4096\nidle-sleep-us = 100\ncontrol = %s\nlog = file:%s\n" % (os.getpid(), ctl, logfile))
    open(conf, "w").write(text)
    p = subprocess.Popen([proxy, "run", "--config", conf], stderr=subprocess.DEVNULL)
    try:
        up = wait_for(logfile, "primary running on lcore", 20)
        js = json.loads(status(proxy, ctl, "--json").stdout or "{}") if up else {}
        verdict("run from a config file alone: EAL and options from [run], status answers",
                js.get("role") == "primary" and "bypass_packets" not in js, js)
        open(conf, "w").write(text + "bypass = proto=udp,guest_port=123\ndivergence-reports-per-minute = 5\n")
        p.send_signal(signal.SIGHUP)
        reloaded = wait_for(logfile, "reloaded: divergence reports off, at most 5 a minute; 1 bypass rules")
        js = json.loads(status(proxy, ctl, "--json").stdout or "{}")
        verdict("SIGHUP reloads the DPDK data plane's bypass rules and report rate through its ring",
                reloaded and js.get("bypass_packets") == {"proto=udp,guest_port=123": 0}, js.get("bypass_packets"))
        open(conf, "w").write(text.replace("role = primary", "role = tertiary"))
        p.send_signal(signal.SIGHUP)
        verdict("a bad [run] on SIGHUP is refused and the data plane runs on",
                wait_for(logfile, "reload failed") and p.poll() is None and status(proxy, ctl).returncode == 0)
    finally:
        p.send_signal(signal.SIGINT)
        rc = p.wait(timeout=20)
    verdict("the data plane stops cleanly after reloads (%d)" % rc, rc == 0)


def main():
    proxy = os.path.abspath(sys.argv[1])
    pvm = read_pcap(os.path.join(FIXTURES, "http-payload-differs-pvm.pcap"))
    svm = read_pcap(os.path.join(FIXTURES, "http-payload-differs-svm.pcap"))
    tmp = tempfile.mkdtemp(prefix="colo-ops-")
    sock = {r: os.path.join(tmp, r) for r in ("p", "s", "o", "ctl")}
    port = free_port()
    reports = os.path.join(tmp, "reports")
    os.mkdir(reports)
    conf = os.path.join(tmp, "colo-proxy.conf")
    logfile = os.path.join(tmp, "colo-proxy.log")
    conf_text = ("# socket mode, every option from the file\n[compare]\n"
                 "primary_in = unix:%s,server\nsecondary_in = unix:%s,server\noutdev = unix:%s,server\n"
                 "control = %s\nmetrics = %d\ncompare_timeout = 60000\ndivergence-reports = %s\n"
                 "log = file:%s\nbypass = proto=udp,guest_port=123; proto=tcp,peer=192.0.2.0/24\n"
                 % (sock["p"], sock["s"], sock["o"], sock["ctl"], port, reports, logfile))
    with open(conf, "w") as f:
        f.write(conf_text)
    check = subprocess.run([proxy, "compare", "--config", conf, "--check"], capture_output=True, text=True)
    verdict("--check accepts the config socket mode is about to run", check.returncode == 0 and
            "configuration OK" in check.stdout, check.stderr)
    log = open(os.path.join(tmp, "proxy.log"), "w+")
    p = subprocess.Popen([proxy, "compare", "--config", conf], stderr=log)
    try:
        out = connect_unix(sock["o"])
        prim = connect_unix(sock["p"])
        sec = connect_unix(sock["s"])
        prim.sendall(b"".join(record(f) for f in pvm))
        sec.sendall(b"".join(record(f) for f in svm))
        deadline = time.time() + 10
        while time.time() < deadline:
            js = json.loads(status(proxy, sock["ctl"], "--json").stdout or "{}")
            if js.get("checkpoint_requests", {}).get("divergence") and \
               js.get("pvm_packets") == len(pvm) and js.get("svm_packets") == len(svm):
                break
            time.sleep(0.1)
        verdict("the divergence asks for one checkpoint", js.get("checkpoint_requests", {}).get("divergence") == 1,
                js.get("checkpoint_requests"))
        verdict("checkpoint-done on the control socket is taken", control(sock["ctl"], "checkpoint-done") == "ok")
        released = read_records(out, len(pvm), 10)
        verdict("every PVM record leaves outdev exactly once, in its flow's order (%d)" % len(pvm),
                same_per_flow(released, pvm), "%d released" % len(released))
        table = status(proxy, sock["ctl"])
        verdict("colo-proxy status prints the table", table.returncode == 0 and
                re.search(r"^divergences +payload 1,", table.stdout, re.M) and "hold_latency_seconds" in table.stdout,
                table.stdout[:200] + table.stderr)
        js = json.loads(status(proxy, sock["ctl"], "--json").stdout)
        verdict("status shows each bypass rule and its count", js.get("bypass_packets") ==
                {"proto=udp,guest_port=123": 0, "proto=tcp,peer=192.0.2.0/24": 0}, js.get("bypass_packets"))
        verdict("status --json accounts for every PVM packet",
                js["pvm_packets"] == len(pvm) and sum(js["released_packets"].values()) == len(pvm)
                and js["hold_latency_seconds"]["count"] == len(pvm) and js["checkpoints"] == 1
                and js["checkpoint_wait_seconds"]["count"] == 1 and js["socket_connected"]["outdev"] == 1, js)
        body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5)
        verdict("GET /metrics answers 200 text/plain",
                body.status == 200 and body.headers["Content-Type"].startswith("text/plain"))
        check_prometheus(body.read().decode(), js)
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/other" % port, timeout=5)
            verdict("other paths answer 404", False)
        except urllib.error.HTTPError as e:
            verdict("other paths answer 404", e.code == 404)
        verdict("the metrics endpoint listens on loopback only",
                subprocess.run(["ss", "-Hltn", "sport = :%d" % port], capture_output=True, text=True)
                .stdout.split()[3].startswith("127.0.0.1:"))
        verdict("an unknown control command is refused by name",
                control(sock["ctl"], "frobnicate").startswith("error unknown command 'frobnicate'"))
        check_sighup(proxy, p, conf, conf_text, logfile, sock["ctl"])
    finally:
        p.terminate()
        rc = p.wait(timeout=10)
    verdict("socket mode exits cleanly (%d)" % rc, rc == 0)
    gone = status(proxy, os.path.join(tmp, "nobody"))
    verdict("status against a dead socket says what to do", gone.returncode == 1 and "--control" in gone.stderr,
            gone.stderr)
    rotated = open(logfile + ".1").read()
    verdict("the log file has time, level and the divergence's line naming its report",
            re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info colo-proxy compare: divergence 1 \(payload\) on tcp "
                      r"10\.99\.0\.2:80 > 10\.99\.0\.1:41002 at stream offset 490; report %s/divergence-1\.txt$"
                      % re.escape(reports), rotated, re.M), rotated[:500])
    log.seek(0)
    verdict("with a log file, stderr stays quiet", log.read().strip() == "", "")
    check_report(proxy, reports, "socket mode")
    replayed = os.path.join(tmp, "replayed")
    os.mkdir(replayed)
    r = subprocess.run([proxy, "replay", "--reports", replayed,
                        os.path.join(FIXTURES, "http-payload-differs-pvm.pcap"),
                        os.path.join(FIXTURES, "http-payload-differs-svm.pcap")], capture_output=True, text=True)
    verdict("replay --reports runs", r.returncode == 0, r.stderr)
    check_report(proxy, replayed, "replay")
    r = subprocess.run([proxy, "replay", "--json", "--bypass", "proto=tcp,guest_port=80",
                        os.path.join(FIXTURES, "http-payload-differs-pvm.pcap"),
                        os.path.join(FIXTURES, "http-payload-differs-svm.pcap")], capture_output=True, text=True)
    js = json.loads(r.stdout or "{}")
    from_port_80 = sum(1 for f in pvm if f[12:14] == b"\x08\x00" and f[23] == 6 and
                       f[14 + (f[14] & 15) * 4:][:2] == b"\x00\x50")
    verdict("a bypass rule leaves its flows uncompared: no divergence, its %d PVM frames released as bypassed"
            % from_port_80, r.returncode == 0 and js.get("released_by_reason", {}).get("bypassed") == from_port_80
            and js.get("released") == len(pvm) and sum(js.get("divergences_by_kind", {"x": 1}).values()) == 0,
            r.stdout[:300] + r.stderr)
    check_config_checker(proxy, tmp)
    check_command_line(proxy, tmp)
    check_paths_at_check(proxy, tmp)
    check_replay_cli(proxy, tmp)
    check_checkpoint_channel(proxy, tmp)
    check_daemon_talks(proxy, tmp)
    check_metrics_in_loopback_namespace(proxy, tmp)
    check_rewrite_status(proxy, tmp)
    check_log_options(proxy, tmp)
    check_dpdk_reload(proxy, tmp)
    if FAILURES:
        log.seek(0)
        sys.stderr.write(log.read()[-4000:])
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
