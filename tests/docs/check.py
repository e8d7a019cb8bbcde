#!/usr/bin/env python3
"""check.py PROXY — the documentation says what the program does.

  * `man ./docs/colo-proxy.8` renders, with no warning from man or groff;
  * every option any command's --help names is in the man page, and every option
    of the commands that read a config file is in docs/config.md;
  * every metric family a running colo-proxy exports (socket mode, rewrite mode,
    the DPDK primary and secondary on ring ports) is in docs/operations.md;
  * the systemd units verify cleanly (systemd-analyze, no warning);
  * quick start 3's [run] example starts as colo-proxy-run@.service runs it (as root: the
    unit's user, capabilities, umask, runtime directory and sandbox applied by hand in a
    network and a mount namespace, since systemd is not PID 1 on CI machines), and a
    QEMU in the unit's group connects to its vhost-user socket and makes the monitor
    colo-proxy connects to;
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
import subprocess
import sys
import tempfile
import time

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


# ProtectSystem=strict, PrivateTmp=yes, ProtectHome=yes, the unit's writable directories, then
# the unit's user, capabilities and umask: what systemd would set up, done by hand in a mount
# namespace (systemd is not PID 1 here, so it cannot start the unit itself).
SANDBOX = r"""set -eu
writable="$1"; shift
mount --make-rprivate /
for d in /tmp /var/tmp; do mount -t tmpfs -o mode=1777 tmpfs "$d"; done
for d in /home /root /run/user; do [ ! -d "$d" ] || mount -t tmpfs -o mode=0755,ro tmpfs "$d"; done
for d in $writable; do mount --bind "$d" "$d"; done
awk '{print $2}' /proc/self/mounts | sed 's/\\040/ /g' | sort -u | while read -r m; do
    case "$m" in /dev|/dev/*|/proc|/proc/*|/sys|/sys/*|/tmp|/var/tmp) continue ;; esac
    for d in $writable; do [ "$m" != "$d" ] || continue 2; done
    mount -o remount,bind,ro "$m" 2>/dev/null || true
done
if touch /run/.colo-docs-probe 2>/dev/null || touch /usr/.colo-docs-probe 2>/dev/null; then
    echo "sandbox: the system is still writable" >&2; exit 97
fi
umask "$UNIT_UMASK"
cd / # systemd's working directory for a system unit, and not the clone, which may be root's alone
exec setpriv --reuid="$UNIT_UID" --regid="$UNIT_GID" --clear-groups --no-new-privs \
    --inh-caps="$UNIT_CAPS" --ambient-caps="$UNIT_CAPS" --bounding-set="$UNIT_CAPS" "$@"
"""


QEMU_UID = 65533  # an account-less uid: QEMU as a user other than colo-proxy's, in its group


def caps_arg(names):
    return ",".join(["-all"] + ["+" + c.lower()[4:] for c in names.split()])


def check_run_unit(proxy, tmp):
    """Quick start 3's [run] example under colo-proxy-run@.service's user, capabilities and sandbox, with a
    QEMU in the unit's group sharing the runtime directory: colo-proxy serves its vhost-user socket there,
    QEMU connects to it and makes its monitor there, colo-proxy connects to the monitor."""
    what = ("quick start 3's [run] example starts as colo-proxy-run@.service would run it, shares its sockets with "
            "QEMU, and starts again after a crash")
    print("docs: note PID 1 is %s, so the unit's user, capabilities, umask and sandbox are applied by hand"
          % open("/proc/1/comm").read().strip(), flush=True)
    if os.geteuid() != 0:
        print("docs: SKIP %s (needs root: a network namespace, a mount namespace, setpriv)" % what, flush=True)
        return
    unit = unit_settings("colo-proxy-run@.service")
    name = "docscheck%d" % os.getpid()
    rundir, statedir = "/run/colo-proxy/" + name, "/var/lib/colo-proxy/" + name
    made = [d for d in ("/run/colo-proxy", "/var/lib/colo-proxy") if not os.path.isdir(d)]
    ns, qemu, px, log = "colo-docs-%d" % os.getpid(), None, None, os.path.join(tmp, "run-unit.log")
    # The unit's user is colo-proxy (contrib/systemd/colo-proxy.sysusers); nobody:nogroup stands in for it
    # unless it exists, and QEMU runs as another user (QEMU_UID) in that group.
    try:
        import pwd
        user = pwd.getpwnam(unit["User"][0])
        uid, gid = user.pw_uid, user.pw_gid
    except KeyError:
        uid, gid = 65534, 65534
    try:
        for d in made:
            os.makedirs(d, mode=0o755)
        os.makedirs(rundir)
        os.chown(rundir, uid, gid)
        os.chmod(rundir, int(unit["RuntimeDirectoryMode"][0], 8))
        os.makedirs(statedir)
        os.chown(statedir, uid, gid)
        os.chmod(statedir, int(unit.get("StateDirectoryMode", ["0755"])[0], 8))
        # The binary where the unit expects it to be readable: a clone in a 0700 home is not, and
        # ProtectHome hides /root and /home anyway.
        bindir = os.path.join(rundir, "bin")
        os.makedirs(bindir, mode=0o755)
        binary = os.path.join(bindir, "colo-proxy")
        shutil.copy(proxy, binary)
        block = [b for b in ini_blocks("quickstart.md") if b.startswith("[run]")][0]
        conf = os.path.join(rundir, name + ".conf")
        open(conf, "w").write(block.replace("/run/colo-proxy/vm1", rundir).replace("-l 2", "-l 0"))
        os.chmod(conf, 0o644)
        subprocess.run(["ip", "netns", "add", ns], check=True)
        for i in (0, 1):
            subprocess.run(["ip", "-n", ns, "link", "add", "eth%d" % i, "type", "veth", "peer", "name", "peer%d" % i],
                           check=True)
            for dev in ("eth%d" % i, "peer%d" % i):
                subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)

        def unit_lines(key):
            """The unit's command lines for KEY, with this check's binary, config, instance and user."""
            lines = []
            for value in unit[key]:
                words = value.replace("%i", name).split()
                words = [binary if w == "/usr/local/bin/colo-proxy" else conf if w == "/etc/colo-proxy/%s.conf" % name
                         else str(uid) if w == unit["User"][0] and words[0].endswith("/find") else w for w in words]
                lines.append(["stderr" if w == "journal" else w for w in words])  # the journal may not run here
            return lines

        env = dict(os.environ, UNIT_UID=str(uid), UNIT_GID=str(gid), UNIT_UMASK=unit["UMask"][0],
                   UNIT_CAPS=caps_arg(unit["AmbientCapabilities"][0]))
        sandbox = ["ip", "netns", "exec", ns, "unshare", "--mount", "bash", "-c", SANDBOX, "sandbox",
                   rundir + " " + statedir]
        vhost, control = os.path.join(rundir, "vhost-pvm.sock"), os.path.join(rundir, "control.sock")
        problems = []

        def start_unit(attempt):
            """ExecStartPre lines in order, then ExecStart; the process once it answers on its control socket
            (its ports are started by then: a vhost-user socket file exists before it listens)."""
            for line in unit_lines("ExecStartPre"):
                r = subprocess.run(sandbox + line, env=env, capture_output=True, text=True)
                if r.returncode != 0:
                    problems.append("%s: ExecStartPre %s failed: %s" % (attempt, line[0], (r.stdout + r.stderr)[-200:]))
            proc = subprocess.Popen(sandbox + unit_lines("ExecStart")[0], env=env, stdout=open(log, "a"),
                                    stderr=subprocess.STDOUT)
            deadline = time.time() + 20
            while time.time() < deadline and proc.poll() is None and subprocess.run(
                    [proxy, "status", "--control", control], capture_output=True).returncode != 0:
                time.sleep(0.2)
            return proc

        def connected(attempt, proc):
            """colo-proxy up and connected to QEMU's monitor, as its status says."""
            deadline, status = time.time() + 20, ""
            while time.time() < deadline and proc.poll() is None and qemu.poll() is None:
                status = subprocess.run([proxy, "status", "--control", control], capture_output=True, text=True).stdout
                if re.search(r"^\s*qmp_connected\s+1\b", status, re.M):
                    return True
                time.sleep(0.5)
            if proc.poll() is not None:
                problems.append("%s: colo-proxy exited %s: %s" % (attempt, proc.returncode,
                                                                  " ".join(open(log).read().splitlines()[-2:])))
            if qemu.poll() is not None:
                problems.append("%s: QEMU exited %s: %s" % (attempt, qemu.returncode,
                                                            " ".join(open(log + ".qemu").read().splitlines()[-2:])))
            problems.append("%s: colo-proxy did not connect to QEMU's monitor in %s" % (attempt, rundir))
            return False

        def reconnected():
            """QEMU's vhost-user NIC is connected to the restarted colo-proxy's socket again."""
            deadline = time.time() + 20
            while time.time() < deadline:
                ss = subprocess.run(["ip", "netns", "exec", ns, "ss", "-xH", "state", "established"],
                                    capture_output=True, text=True).stdout
                if vhost in ss:
                    return True
                time.sleep(0.5)
            return False

        def start_qemu():
            return subprocess.Popen(["ip", "netns", "exec", ns, "setpriv", "--reuid=%d" % QEMU_UID,
                                     "--regid=%d" % gid, "--clear-groups", "bash", "-c",
                                     "cd /; umask 0007; exec qemu-system-x86_64 -M none -nodefaults -display none "
                                     "-chardev socket,id=vu0,path=%s,reconnect=1 -netdev vhost-user,id=hn0,chardev=vu0 "
                                     "-qmp unix:%s/qmp.sock,server=on,wait=off" % (vhost, rundir)],
                                    stdout=subprocess.DEVNULL, stderr=open(log + ".qemu", "a"))

        def qemu_back_after_restart():
            """QEMU reconnects to the restarted colo-proxy. QEMU 7.2 sometimes crashes while it
            reconnects a vhost-user netdev (a fault of QEMU's, seen 1 run in 4 here): a new QEMU
            must then find the restarted colo-proxy and its shared sockets as the first one did."""
            nonlocal qemu
            if reconnected():
                return True
            if qemu.poll() is None:
                return False
            print("docs: note QEMU exited %s while reconnecting (%s); a new QEMU is started" % (
                qemu.returncode, " ".join(open(log + ".qemu").read().splitlines()[-2:])))
            qemu = start_qemu()
            return connected("a new QEMU after the restart", px) and reconnected()

        px = start_unit("start")
        qemu = start_qemu()
        if connected("start", px):
            st = os.stat(vhost)
            if st.st_uid != uid or st.st_gid != gid or not st.st_mode & 0o060:
                problems.append("the vhost-user socket is not the unit user's and group-writable (%o)" % st.st_mode)
            px.kill()  # a crash: Restart=on-failure starts it again in the directory it left behind
            px.wait()
            px = start_unit("restart after a crash")
            if connected("restart after a crash", px) and not qemu_back_after_restart():
                problems.append("QEMU's vhost-user NIC did not come back to the restarted colo-proxy")
        if qemu.poll() is not None:
            problems.append("QEMU exited %s: %s" % (qemu.returncode,
                                                     " ".join(open(log + ".qemu").read().splitlines()[-2:])))
        verdict(what, not problems, "; ".join(problems))
    finally:
        for proc in (qemu, px):
            if proc and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(rundir, ignore_errors=True)
        shutil.rmtree(statedir, ignore_errors=True)
        for d in reversed(made):
            try:
                os.rmdir(d)
            except OSError:
                pass


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
