#!/usr/bin/env python3
"""check.py PROXY — the documentation says what the program does.

  * `man ./docs/colo-proxy.8` renders, with no warning from man or groff;
  * every option any command's --help names is in the man page, and every option
    of the commands that read a config file is in docs/config.md;
  * every metric family a running colo-proxy exports (socket mode, rewrite mode,
    the DPDK primary and secondary on ring ports) is in docs/operations.md;
  * the systemd units verify cleanly (systemd-analyze, no warning);
  * quick start 3's [run] example runs as colo-proxy-run@vm1.service under a real systemd
    (as root: systemd as PID 1 of its own namespaces, tests/docs/systemd_ns.py, since it
    is not PID 1 on CI machines): the running process has the unit's user, capabilities,
    umask and sandbox, QEMU as a unit in the unit's group connects to its vhost-user
    socket and makes the monitor colo-proxy connects to, a crash is followed by a restart
    QEMU survives, and `systemctl stop` stops it cleanly;
  * every ini example in docs/ passes `--check`;
  * quick start 1 (replay) runs as written and shows what it promises, and the memory per
    connection README gives is the figure `replay` prints;
  * every page leads somewhere: each relative link and each repository path named in
    the Markdown pages, the man page, the systemd units and include/ exists, and no
    text in the repository points outside it (`../` out of the tree, a `shared/`
    folder, an "issue N" of a tracker users cannot see).
Each check prints "docs: PASS|FAIL what".
"""
import fnmatch
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import systemd_ns

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.normpath(os.path.join(HERE, "..", ".."))
DOCS = os.path.join(TOP, "docs")
FAILURES = 0


def verdict(what, ok, detail=""):
    global FAILURES
    detail = " | ".join(line.strip() for line in detail.splitlines() if line.strip())
    print("docs: %s %s%s" % ("PASS" if ok else "FAIL", what, "" if ok or not detail else " (%s)" % detail), flush=True)
    FAILURES += not ok


def read(name):
    return open(os.path.join(DOCS, name)).read()


def rendered_man():
    env = dict(os.environ, MANWIDTH="120", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
    r = subprocess.run(["man", "--warnings", "-l", os.path.join(DOCS, "colo-proxy.8")], capture_output=True,
                       text=True, env=env)
    g = subprocess.run(["groff", "-man", "-ww", "-z", os.path.join(DOCS, "colo-proxy.8")], capture_output=True,
                       text=True)
    verdict("man ./docs/colo-proxy.8 renders with no warning", r.returncode == 0 and not r.stderr.strip()
            and not g.stderr.strip() and "SYNOPSIS" in r.stdout, (r.stderr + g.stderr)[:300])
    # Undo the hyphenation and the "‐" man uses for a hyphen, so options read as typed.
    return re.sub(r"[\u2010\u2212]", "-", r.stdout)


def help_options(proxy, command):
    r = subprocess.run([proxy, command, "--help"], capture_output=True, text=True)
    return r.returncode, sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z0-9_-]*", r.stdout)))


def check_options(proxy, man):
    config = read("config.md")
    for command in ("run", "compare", "rewrite", "replay", "status", "explain", "witness"):
        rc, opts = help_options(proxy, command)
        missing_man = [o for o in opts if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(o), man)]
        verdict("colo-proxy %s --help: its %d options are all in the man page" % (command, len(opts)),
                rc == 0 and not missing_man, "missing: %s" % " ".join(missing_man))
        if command in ("status", "explain"):
            continue
        keys = [o for o in opts if o not in ("--config", "--check", "--help")]
        missing_cfg = [o for o in keys if "`%s`" % o[2:] not in config and o not in config]
        verdict("colo-proxy %s --help: its options are all in docs/config.md" % command, not missing_cfg,
                "missing: %s" % " ".join(missing_cfg))


def scrape(proxy, args, control, wait=0.5):
    p = subprocess.Popen([proxy] + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    names = set()
    deadline = time.time() + 15
    while time.time() < deadline and not names:
        time.sleep(wait)
        r = subprocess.run([proxy, "status", "--control", control, "--prometheus"], capture_output=True, text=True)
        names = set(re.findall(r"^# TYPE (\S+) ", r.stdout, re.M))
    p.send_signal(2)
    try:
        p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
    return names


def check_metrics(proxy, tmp):
    ops = read("operations.md")
    s = lambda n: "unix:%s,server" % os.path.join(tmp, n)
    c = lambda n: os.path.join(tmp, n)
    eal = ["-l", "0", "--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry", "--log-level=error",
           "--vdev=net_ring0", "--vdev=net_ring1", "--vdev=net_ring2"]
    runs = {
        "compare": (["compare", "--primary_in", s("p"), "--secondary_in", s("s"), "--outdev", s("o"),
                     "--control", c("c.sock"), "--qmp", "unix:" + c("no-qemu"), "--bypass", "proto=udp"], "c.sock"),
        "rewrite": (["rewrite", "--mirror_in", s("m"), "--to_svm", s("t"), "--from_svm", s("f"), "--to_primary",
                     s("tp"), "--control", c("r.sock")], "r.sock"),
        "run primary": (["run"] + eal + ["--file-prefix", "docs-p", "--", "--role", "primary", "--client-port",
                         "net_ring0", "--pvm-port", "net_ring1", "--link-port", "net_ring2", "--mbufs", "4096",
                         "--control", c("p.sock")], "p.sock"),
        "run secondary": (["run"] + eal + ["--file-prefix", "docs-s", "--", "--role", "secondary", "--svm-port",
                           "net_ring1", "--link-port", "net_ring2", "--mbufs", "4096", "--control", c("s.sock")],
                          "s.sock"),
    }
    for mode, (args, sock) in runs.items():
        names = scrape(proxy, args, c(sock))
        missing = sorted(n for n in names if "`%s`" % n not in ops)
        verdict("%s: its %d metric families are all in docs/operations.md" % (mode, len(names)),
                names and not missing, "missing: %s" % " ".join(missing))


def check_units(proxy, tmp):
    units = os.path.join(tmp, "units")
    os.makedirs(units)
    paths = []
    for name in sorted(os.listdir(os.path.join(TOP, "contrib", "systemd"))):
        if not name.endswith("@.service"):
            continue
        text = open(os.path.join(TOP, "contrib", "systemd", name)).read()
        path = os.path.join(units, name.replace("@.", "@vm1."))
        open(path, "w").write(text.replace("/usr/local/bin/colo-proxy", proxy))
        paths.append(path)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no"] + paths, capture_output=True, text=True)
    verdict("the %d systemd units verify with no warning" % len(paths), len(paths) == 3 and r.returncode == 0
            and not (r.stdout + r.stderr).strip(), (r.stdout + r.stderr)[:400])


def unit_settings(name):
    """A unit file's [Service] settings, each key's values in order."""
    settings = {}
    for line in open(os.path.join(TOP, "contrib", "systemd", name)):
        m = re.match(r"^(\w+)=(.*)$", line.strip())
        if m:
            settings.setdefault(m.group(1), []).append(m.group(2))
    return settings


# Quick start 3's [run] example as its unit, started by a real systemd (tests/docs/systemd_ns.py): the
# unit's files installed as docs/operations.md installs them, and QEMU as a unit of its own, in the
# group colo-proxy, written as the quick start says.
RUN_UNIT, QEMU_UNIT = "colo-proxy-run@vm1.service", "qemu-colo-primary@vm1.service"
RUNDIR, STATEDIR = "/run/colo-proxy/vm1", "/var/lib/colo-proxy/vm1"
CONTROL, VHOST, QMP = RUNDIR + "/control.sock", RUNDIR + "/vhost-pvm.sock", RUNDIR + "/qmp.sock"
QEMU_UNIT_TEXT = """[Unit]
Description=QEMU with its vhost-user NIC on colo-proxy-run@%i's socket
Wants=colo-proxy-run@%i.service
After=colo-proxy-run@%i.service

[Service]
User=colo-docs-qemu
UMask=0007
ExecStart={qemu} -M none -nodefaults -display none \\
    -chardev socket,id=vu0,path=/run/colo-proxy/%i/vhost-pvm.sock,reconnect=1 -netdev vhost-user,id=hn0,chardev=vu0 \\
    -qmp unix:/run/colo-proxy/%i/qmp.sock,server=on,wait=off
"""
QEMU_USER = 'u colo-docs-qemu - "QEMU, in the group colo-proxy"\nm colo-docs-qemu colo-proxy\n'
INSTALL = """install -m 755 colo-proxy /usr/local/bin/colo-proxy
install -m 644 colo-proxy-run@.service qemu-colo-primary@.service /etc/systemd/system/
systemd-sysusers "$PWD/colo-proxy.sysusers" "$PWD/qemu.sysusers"
install -d -m 755 /etc/colo-proxy
install -m 644 vm1.conf /etc/colo-proxy/vm1.conf
"""
CAP_NUMBERS = {"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13}  # linux/capability.h


def cap_mask(names):
    """The capability set /proc/PID/status shows for the unit's capability names."""
    return "%016x" % sum(1 << CAP_NUMBERS[name] for name in names.split())


def can_raise_limits():
    """CAP_SYS_RESOURCE (24) is in this process's bounding set: systemd could raise a hard limit."""
    bounding = [line.split()[1] for line in open("/proc/self/status") if line.startswith("CapBnd:")]
    return bool(int(bounding[0], 16) & 1 << 24)


def wait_for(condition, seconds=20):
    deadline = time.time() + seconds
    while True:
        result = condition()
        if result or time.time() > deadline:
            return result
        time.sleep(0.2)


class RunUnit:
    """colo-proxy-run@vm1 and QEMU's unit in one systemd: what the checks ask of them."""

    def __init__(self, sd, netns):
        self.sd, self.netns = sd, netns

    def journal(self, unit, lines=3):
        r = self.sd.run(["journalctl", "-u", unit, "-o", "cat", "--no-pager", "-n", str(lines)])
        return " | ".join(r.stdout.strip().splitlines())

    def main_pid(self, unit=RUN_UNIT):
        return self.sd.show(unit, "MainPID")

    def qmp_connected(self):
        r = self.sd.run(["/usr/local/bin/colo-proxy", "status", "--control", CONTROL])
        return r.returncode == 0 and re.search(r"^\s*qmp_connected\s+1\b", r.stdout, re.M) is not None

    def vhost_connected(self):
        ss = subprocess.run(["ip", "netns", "exec", self.netns, "ss", "-xH", "state", "established"],
                            capture_output=True, text=True).stdout
        return VHOST in ss

    def start(self, problems):
        for unit in (RUN_UNIT, QEMU_UNIT):
            r = self.sd.run(["systemctl", "start", unit], timeout=60)
            if r.returncode != 0:
                problems.append("systemctl start %s: %s %s" % (unit, r.stderr.strip(), self.journal(unit)))
                return False
        if wait_for(self.qmp_connected) and wait_for(self.vhost_connected):
            return True
        problems.append("colo-proxy and QEMU did not connect (%s: %s; %s: %s)" % (
            RUN_UNIT, self.journal(RUN_UNIT), QEMU_UNIT, self.journal(QEMU_UNIT)))
        return False

    def sandbox_problems(self, unit):
        """The unit's process as the unit says: its user, capabilities, umask, sandbox and log."""
        sd, problems, main = self.sd, [], self.main_pid()
        uid, gid = (sd.run(["id", flag, unit["User"][0]]).stdout.strip() for flag in ("-u", "-g"))
        status = dict(line.split(":", 1) for line in sd.run(["cat", "/proc/%s/status" % main]).stdout.splitlines())
        caps = cap_mask(unit["AmbientCapabilities"][0])
        want = {"Uid": " ".join([uid] * 4), "Gid": " ".join([gid] * 4), "Groups": gid, "CapPrm": caps,
                "CapEff": caps, "CapAmb": caps, "CapBnd": caps, "NoNewPrivs": "1", "Seccomp": "2",
                "Umask": unit["UMask"][0]}
        for key, value in want.items():
            got = " ".join(status.get(key, "").split())
            if got != value:
                problems.append("its %s is %s, not %s" % (key, got or "missing", value))
        inside = ["nsenter", "-t", main, "-m"]
        as_user = inside + ["-S", uid, "-G", gid]
        for path in ("/usr", "/etc", "/var/lib"):  # ProtectSystem=strict, even for root
            r = sd.run(inside + ["touch", path + "/.colo-docs-probe"])
            if "Read-only file system" not in r.stderr:
                problems.append("%s is writable in its sandbox (%s)" % (path, r.stderr.strip() or "touch worked"))
        for path in (RUNDIR, STATEDIR, "/tmp"):
            r = sd.run(as_user + ["touch", path + "/.colo-docs-probe"])
            if r.returncode != 0:
                problems.append("its user cannot write %s: %s" % (path, r.stderr.strip()))
            sd.run(inside + ["rm", "-f", path + "/.colo-docs-probe"])
        if sd.run(as_user + ["touch", "/run/.colo-docs-probe"]).returncode == 0:
            problems.append("its user can make files in /run outside %s" % RUNDIR)
            sd.run(inside + ["rm", "-f", "/run/.colo-docs-probe"])
        mounts = sd.run(["cat", "/proc/%s/mountinfo" % main]).stdout
        if not re.search(r"^\S+ \S+ \S+ /systemd-private-\S+/tmp /tmp ", mounts, re.M):
            problems.append("its /tmp is not a private one (PrivateTmp)")
        owners = {RUNDIR: "colo-proxy:colo-proxy 2770", STATEDIR: "colo-proxy:colo-proxy 700",
                  VHOST: "colo-proxy:colo-proxy 770", CONTROL: "colo-proxy:colo-proxy 600",
                  QMP: "colo-docs-qemu:colo-proxy 770"}
        for path, owner in owners.items():
            got = sd.run(["stat", "-c", "%U:%G %a", path]).stdout.strip()
            if got != owner:
                problems.append("%s is %s, not %s" % (path, got or "missing", owner))
        journal = sd.run(["journalctl", "-u", RUN_UNIT, "_TRANSPORT=journal", "-o", "cat", "--no-pager"]).stdout
        if "qmp: connected to unix:" + QMP not in journal:
            problems.append("its log (--log journal) is not in the journal: %s" % journal[-200:])
        memlock = re.search(r"^Max locked memory\s+(\S+)", sd.run(["cat", "/proc/%s/limits" % main]).stdout, re.M)
        memlock = memlock.group(1) if memlock else "missing"
        if memlock != "unlimited" and can_raise_limits():
            problems.append("its locked-memory limit is %s, not LimitMEMLOCK=infinity" % memlock)
        elif memlock != "unlimited":
            print("docs: note LimitMEMLOCK=infinity became %s bytes: this machine's capability bounding set has no "
                  "CAP_SYS_RESOURCE to raise the hard limit, so systemd set the closest it could" % memlock)
        return problems

    def crash_and_back(self, problems):
        """SIGKILL: Restart=on-failure starts colo-proxy again; QEMU's unit (Wants=, not Requires=) stays, and
        its vhost-user NIC and colo-proxy's monitor connection come back."""
        sd, old, qemu = self.sd, self.main_pid(), self.main_pid(QEMU_UNIT)
        sd.run(["systemctl", "kill", "--signal=SIGKILL", RUN_UNIT])
        if not wait_for(lambda: sd.show(RUN_UNIT, "NRestarts") == "1" and sd.show(RUN_UNIT, "ActiveState") == "active"
                        and self.main_pid() not in ("0", old)):
            problems.append("systemd did not start it again: NRestarts %s, %s" % (
                sd.show(RUN_UNIT, "NRestarts"), self.journal(RUN_UNIT)))
            return
        if not wait_for(self.qmp_connected):
            problems.append("the restarted colo-proxy did not connect to QEMU's monitor: " + self.journal(RUN_UNIT))
        if wait_for(self.vhost_connected):
            if self.main_pid(QEMU_UNIT) != qemu:
                problems.append("systemd restarted QEMU along with colo-proxy (QEMU was %s, is %s)" % (
                    qemu, self.main_pid(QEMU_UNIT)))
            return
        if sd.show(QEMU_UNIT, "ActiveState") != "failed":
            problems.append("QEMU's vhost-user NIC did not come back to the restarted colo-proxy")
            return
        # QEMU 7.2 sometimes crashes while it reconnects a vhost-user netdev (a fault of QEMU's, seen 1 run
        # in 4 here): a new QEMU must then find the restarted colo-proxy and the shared sockets as the first did.
        print("docs: note QEMU exited while reconnecting (%s); its unit is started again" % self.journal(QEMU_UNIT, 2))
        sd.run(["systemctl", "start", QEMU_UNIT], timeout=60)
        if not (wait_for(self.qmp_connected) and wait_for(self.vhost_connected)):
            problems.append("a new QEMU did not connect to the restarted colo-proxy: " + self.journal(QEMU_UNIT))

    def stop(self, problems):
        """SIGTERM drains and exits 0; the runtime directory stays, with QEMU's monitor socket in it."""
        sd = self.sd
        r = sd.run(["systemctl", "stop", RUN_UNIT], timeout=90)
        state = {p: sd.show(RUN_UNIT, p) for p in ("ActiveState", "Result", "ExecMainStatus", "MainPID")}
        if r.returncode != 0 or state != {"ActiveState": "inactive", "Result": "success", "ExecMainStatus": "0",
                                          "MainPID": "0"}:
            problems.append("after systemctl stop: %s %s; %s" % (r.stderr.strip(), state, self.journal(RUN_UNIT)))
        if sd.run(["test", "-S", QMP]).returncode != 0:
            problems.append("%s did not outlive the unit (RuntimeDirectoryPreserve=yes)" % QMP)
        sd.run(["systemctl", "stop", QEMU_UNIT], timeout=60)


def check_run_unit(proxy, tmp):
    """Quick start 3's [run] example as colo-proxy-run@vm1.service, started, crashed and stopped by systemd,
    with QEMU's unit sharing its runtime directory: colo-proxy serves its vhost-user socket there, QEMU
    connects to it and makes its monitor there, colo-proxy connects to the monitor."""
    started = ("quick start 3's [run] example starts as %s under systemd: its user, capabilities, umask and "
               "sandbox, its sockets shared with QEMU's unit, its log in the journal" % RUN_UNIT)
    pid1 = open("/proc/1/comm").read().strip()
    reason = systemd_ns.unavailable()
    if reason:
        print("docs: SKIP %s (PID 1 is %s, and systemd cannot be started in namespaces of its own: %s)"
              % (started, pid1, reason), flush=True)
        return
    version = subprocess.run([systemd_ns.SYSTEMD, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    print("docs: note PID 1 is %s; %s runs as PID 1 of its own PID, mount, UTS and cgroup namespaces "
          "(tests/docs/systemd_ns.py) and starts the units" % (pid1, version), flush=True)
    unit = unit_settings("colo-proxy-run@.service")
    block = [b for b in ini_blocks("quickstart.md") if b.startswith("[run]")][0]
    qemu = shutil.which("qemu-system-x86_64") or "/usr/bin/qemu-system-x86_64"
    units = os.path.join(TOP, "contrib", "systemd")
    inputs = {"colo-proxy": open(proxy, "rb").read(),
              "colo-proxy-run@.service": open(os.path.join(units, "colo-proxy-run@.service"), "rb").read(),
              "colo-proxy.sysusers": open(os.path.join(units, "colo-proxy.sysusers"), "rb").read(),
              "qemu-colo-primary@.service": QEMU_UNIT_TEXT.format(qemu=qemu).encode(),
              "qemu.sysusers": QEMU_USER.encode(),
              "vm1.conf": block.replace("-l 2", "-l 0").encode()}  # this machine may have 2 cores
    for stale in os.listdir("/run/netns") if os.path.isdir("/run/netns") else []:  # of a run killed outright
        m = re.fullmatch(r"colo-docs-(\d+)", stale)
        if m and not os.path.exists("/proc/" + m.group(1)):
            subprocess.run(["ip", "netns", "del", stale], capture_output=True)
    ns = "colo-docs-%d" % os.getpid()
    sd = systemd_ns.Systemd(ns, INSTALL, inputs)
    try:
        subprocess.run(["ip", "netns", "add", ns], check=True)
        for i in (0, 1):
            subprocess.run(["ip", "-n", ns, "link", "add", "eth%d" % i, "type", "veth", "peer", "name", "peer%d" % i],
                           check=True)
            for dev in ("eth%d" % i, "peer%d" % i):
                subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        problems = []
        try:
            state = sd.start()
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            verdict(started, False, "systemd: %s" % e)
            return
        if state != "running":
            problems.append("systemd is %s: %s" % (state, sd.run(["systemctl", "--failed", "--no-legend"]).stdout))
        run = RunUnit(sd, ns)
        if run.start(problems):
            problems += run.sandbox_problems(unit)
        verdict(started, not problems, "; ".join(problems))
        if problems:
            return
        run.crash_and_back(problems)
        verdict("%s comes back after a crash (Restart=on-failure), and QEMU's NIC and monitor with it, QEMU's unit "
                "left running" % RUN_UNIT, not problems, "; ".join(problems))
        problems = []
        run.stop(problems)
        verdict("systemctl stop %s stops it cleanly and keeps its runtime directory, QEMU's socket in it"
                % RUN_UNIT, not problems, "; ".join(problems))
    finally:
        left = sd.close()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        if os.path.exists("/run/netns/" + ns):
            left.append("network namespace " + ns)
        verdict("systemd and everything it started are gone afterwards (no process, cgroup, mount or namespace left)",
                not left, "; ".join(left))


def ini_blocks(name):
    return re.findall(r"```ini\n(.*?)```", read(name), re.S)


def check_examples(proxy, tmp):
    reports = os.path.join(tmp, "reports")
    os.makedirs(reports, exist_ok=True)
    for doc in ("config.md", "quickstart.md", "migration.md"):
        for i, block in enumerate(ini_blocks(doc)):
            text = re.sub(r"/var/lib/colo-proxy(/vm1)?", reports, block)
            # /run/colo-proxy/NAME is systemd's RuntimeDirectory: made here as the unit would make it
            text = text.replace("/run/colo-proxy", os.path.join(tmp, "run", "colo-proxy"))
            for sock in re.findall(re.escape(os.path.join(tmp, "run", "colo-proxy")) + r"/[^\s,]+", text):
                os.makedirs(os.path.dirname(sock), exist_ok=True)
            path = os.path.join(tmp, "example.conf")
            open(path, "w").write(text)
            for group in re.findall(r"^\[(\w+)\]", text, re.M):
                r = subprocess.run([proxy, group, "--config", path, "--check"], capture_output=True, text=True)
                verdict("%s example %d, [%s]: --check says OK" % (doc, i + 1, group),
                        r.returncode == 0 and "configuration OK" in r.stdout, r.stderr.strip())


def check_bytes_per_conn(proxy):
    """The memory figure README and the architecture give is the one the program prints."""
    pair = [os.path.join(TOP, "pcap_fixtures", "http-identical-%s.pcap" % side) for side in ("pvm", "svm")]
    r = subprocess.run([proxy, "replay", "--max-conns", "1048576"] + pair, capture_output=True, text=True)
    m = re.search(r"memory: (\d+) bytes per connection of capacity", r.stdout)
    figure = "%s bytes per connection of capacity" % (m.group(1) if m else "?")
    stale = []
    for name in ("README.md", "docs/architecture.md", "docs/security.md", "docs/qemu-faults.md"):
        given = re.findall(r"(\d+) bytes per connection", re.sub(r"\s+", " ", open(os.path.join(TOP, name)).read()))
        stale += ["%s says %s" % (name, n) for n in given if not m or n != m.group(1)]
        stale += [] if given or name.endswith(("security.md", "qemu-faults.md")) else ["%s gives none" % name]
    verdict("README and the docs give the memory per connection `replay` prints (%s)" % figure,
            m is not None and not stale, "; ".join(stale) if m else r.stdout[-200:] + r.stderr[-200:])


def check_quickstart_replay(tmp):
    doc = read("quickstart.md")
    section = doc.split("## 1.")[1].split("\n## ")[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    shutil.rmtree("/tmp/colo-quickstart", ignore_errors=True)
    r = subprocess.run(["bash", "-euc", "\n".join(blocks)], cwd=TOP, capture_output=True, text=True, timeout=120)
    out = r.stdout
    verdict("quick start 1 runs as written: the report, one divergence, explain's view and hint",
            r.returncode == 0 and "268 released (all)" in out and
            "divergence 1 (payload) on tcp 10.99.0.2:80 > 10.99.0.1:41002" in out and "hint: " in out
            and os.path.exists("/tmp/colo-quickstart/divergence-1-pvm.pcap"), (out[-300:] + r.stderr[-300:]))


# Where a path named in running text is read from: the top of the repository.
REPO_DIRS = ("docs", "src", "include", "tests", "bench", "scripts", "contrib", "pcap_fixtures", ".ci")
PATH_WORD = re.compile(r"(?<![\w./~$<-])((?:\./)?(?:%s)/[\w.@*{}/,+-]*[\w*}/])"
                       % "|".join(re.escape(d) for d in REPO_DIRS))
MD_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
OUTSIDE = [(re.compile(r"(?<![\w-])shared/"), "a shared/ folder users do not have"),
           (re.compile(r"\bissues? #?\d+", re.I), "an issue number users cannot look up")]
MD_NAME = re.compile(r"(?<![\w./*-])([\w-]+\.md)\b")
# Made by a run, never committed: named in the docs as where output goes.
GENERATED = ("bench/results",)


def tracked(*patterns):
    r = subprocess.run(["git", "-C", TOP, "ls-files", "--"] + list(patterns), capture_output=True, text=True)
    if r.returncode == 0 and r.stdout.strip():
        return sorted(set(r.stdout.split()))
    found = []  # not a git checkout (an exported tree): its files, matched as git matches a pathspec
    for root, dirs, files in os.walk(TOP):
        rel = os.path.relpath(root, TOP)
        dirs[:] = [d for d in dirs if not d.startswith((".", "build")) and os.path.join(rel, d) != "bench/results"]
        for f in files:
            name = os.path.normpath(os.path.join(rel, f))
            if any(fnmatch.fnmatch(name, p) for p in patterns):
                found.append(name)
    return sorted(found)


def expand_braces(word):
    m = re.search(r"\{([^{}]*)\}", word)
    if not m:
        return [word]
    return [w for alt in m.group(1).split(",") for w in expand_braces(word[:m.start()] + alt + word[m.end():])]


def exists_in_repo(path):
    """A path that names something inside the repository: globs, {a,b} and placeholder parts (NAME) allowed."""
    for word in expand_braces(path):
        word = "/".join("*" if re.fullmatch(r"[A-Z][A-Z_]+", part) else part for part in word.split("/"))
        full = os.path.normpath(os.path.join(TOP, word))
        if not (full + "/").startswith(TOP.rstrip("/") + "/"):
            return False
        if word.startswith(GENERATED):
            continue
        if not glob.glob(full):
            return False
    return True


def link_targets(name, text):
    """(target as written, path from the top) of every relative Markdown link and named repository path."""
    here = os.path.dirname(name)
    found = []
    for target in MD_LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue
        found.append((target, os.path.normpath(os.path.join(here, target.split("#")[0]))))
    prose = MD_LINK.sub(" ", text)
    for word in PATH_WORD.findall(prose):
        found.append((word, os.path.normpath(word.rstrip("/")) if not word.startswith("./") else word[2:]))
    return found


def man_text(text):
    """The man page's words as a reader sees them: groff escapes for hyphens and zero widths undone."""
    return re.sub(r"\\&|\\f[BIRP]", "", text).replace("\\-", "-").replace("\\(em", " ")


def check_links():
    sources = tracked("*.md", "docs/colo-proxy.8", "include/*", "contrib/systemd/*")
    broken, outside = [], []
    for name in sources:
        text = open(os.path.join(TOP, name), errors="replace").read()
        if name.endswith(".8"):
            text = man_text(text)
        for written, path in link_targets(name, text):
            if path.startswith("..") or not exists_in_repo(path):
                broken.append("%s: %s" % (name, written))
        prose = MD_LINK.sub(" ", text)  # a link's ../ is checked above: it must stay inside
        outside += ["%s:%d: ../ (a path outside the repository)" % (name, prose[:m.start()].count("\n") + 1)
                    for m in re.finditer(r"\.\./", prose)]
    verdict("every relative link and repository path in %d files (Markdown, the man page, the units, include/) exists"
            % len(sources), not broken, "; ".join(broken[:8]) + (" …" if len(broken) > 8 else ""))
    every = tracked("*")
    pages = {os.path.basename(n) for n in every if n.endswith(".md")} | {"summary.md"}  # bench/run writes it
    for name in every:
        if name == "tests/docs/check.py" or name.startswith("tests/fuzz/") or name.endswith((".pcap", ".png")):
            continue
        try:
            text = open(os.path.join(TOP, name)).read()
        except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
            continue
        for pattern, what in OUTSIDE:
            outside += ["%s:%d: %s (%s)" % (name, text[:m.start()].count("\n") + 1, m.group(0), what)
                        for m in pattern.finditer(text)]
        outside += ["%s:%d: %s (a page that is not in the repository)" % (name, text[:m.start()].count("\n") + 1,
                                                                         m.group(1))
                    for m in MD_NAME.finditer(text) if m.group(1) not in pages]
    verdict("no text in the repository points outside it (../ out of the tree, shared/, issue numbers, pages "
            "it does not have)",
            not outside, "; ".join(outside[:8]) + (" …" if len(outside) > 8 else ""))


def main():
    proxy = os.path.abspath(sys.argv[1])
    # SIGTERM (a timeout, an interrupted CI job) unwinds like an exception, so every check cleans up.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    tmp = tempfile.mkdtemp(prefix="colo-docs-")
    try:
        check_links()
        man = rendered_man()
        check_options(proxy, man)
        check_metrics(proxy, tmp)
        check_units(proxy, tmp)
        check_run_unit(proxy, tmp)
        check_examples(proxy, tmp)
        check_quickstart_replay(tmp)
        check_bytes_per_conn(proxy)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
