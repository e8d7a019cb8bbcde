#!/usr/bin/env python3
"""check.py PROXY — the documentation says what the program does.

  * `man ./docs/colo-proxy.8` renders, with no warning from man or groff;
  * every option any command's --help names is in the man page, and every option
    of the commands that read a config file is in docs/config.md;
  * every metric family a running colo-proxy exports (socket mode, rewrite mode,
    the DPDK primary and secondary on ring ports) is in docs/operations.md;
  * the systemd units verify cleanly (systemd-analyze, no warning);
  * every ini example in docs/ passes `--check`;
  * quick start 1 (replay) runs as written and shows what it promises.
Each check prints "docs: PASS|FAIL what".
"""
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
    for command in ("run", "compare", "rewrite", "replay", "status", "explain"):
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


def main():
    proxy = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="colo-docs-")
    try:
        man = rendered_man()
        check_options(proxy, man)
        check_metrics(proxy, tmp)
        check_units(proxy, tmp)
        check_examples(proxy, tmp)
        check_quickstart_replay(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
