"""A real systemd for tests/docs/check.py, on a machine whose PID 1 need not be systemd.

systemd runs as PID 1 of its own PID, mount, UTS and cgroup namespaces, on this machine's root and in a
network namespace the caller made. In its mount namespace /etc, /var and /usr/local are overlays on the
machine's, /run and /tmp are empty tmpfs and /proc/sys is read-only: what a test installs (units, users,
config files, a binary) and whatever systemd and its units write stay there and vanish with it. Its
cgroup is a child of this process's cgroup2 cgroup, mounted as its /sys/fs/cgroup. It loads units only
from its /etc/systemd/system (the test's units, journald's and empty targets), so nothing of this
machine's own boot starts. close() kills it and everything it started, and says what was left behind.
"""
import ctypes
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

SYSTEMD = "/lib/systemd/systemd"
JOURNALD_UNITS = ("systemd-journald.service", "systemd-journald.socket", "systemd-journald-dev-log.socket")
# Empty stand-ins for the targets a service's default dependencies and the test's units name.
TARGETS = ("sysinit", "basic", "sockets", "shutdown", "network", "network-online", "multi-user")
PR_SET_PDEATHSIG = 1

# PID 1 of the new namespaces until it execs systemd: the namespace's file systems, then the test's setup.
BOOT = r"""set -eu
work=$1
mount --make-rprivate /
touch "$work/console"
mount --bind "$work/console" /dev/console
mount -t tmpfs -o mode=0700 tmpfs "$work/layers"
for d in etc var usr/local; do
    layer="$work/layers/${d//\//-}"
    mkdir -p "$layer/upper" "$layer/work"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$layer/upper,workdir=$layer/work" "/$d"
done
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=0755 tmpfs /etc/systemd/system
if mountpoint -q /sys/fs/cgroup; then umount -R /sys/fs/cgroup; fi
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
for unit in $JOURNALD_UNITS; do cp "/lib/systemd/system/$unit" /etc/systemd/system/; done
for target in $TARGETS; do printf '[Unit]\nDescription=%s\n' "$target" >"/etc/systemd/system/$target.target"; done
printf '[Unit]\nDescription=colo-docs\nWants=systemd-journald.socket systemd-journald-dev-log.socket\n' \
    >/etc/systemd/system/colo-docs.target
mkdir -p /etc/systemd/journald.conf.d
printf '[Journal]\nReadKMsg=no\n' >/etc/systemd/journald.conf.d/colo-docs.conf
cd "$work/in"
. "$work/setup.sh"
cd /
mount -t tmpfs -o mode=1777 tmpfs /tmp
export SYSTEMD_UNIT_PATH=/etc/systemd/system container=colo-docs
exec "$SYSTEMD" --system --unit=colo-docs.target
"""


def cgroup2_dir():
    """This process's cgroup in a mounted cgroup2 hierarchy, if it has one it may write."""
    ours = [line.split(":", 2)[2].strip() for line in open("/proc/self/cgroup") if line.startswith("0::")]
    if not ours:
        return None
    for line in open("/proc/self/mountinfo"):
        fields = line.split()
        sep = fields.index("-")
        if fields[sep + 1] != "cgroup2":
            continue
        rel = os.path.relpath(ours[0], fields[3])
        path = os.path.normpath(os.path.join(fields[4], rel))
        if not rel.startswith("..") and os.access(path, os.W_OK):
            return path
    return None


def remove_stale(parent):
    """The empty cgroups and the files of earlier runs killed before they could remove theirs."""
    for name in os.listdir(tempfile.gettempdir()):
        m = re.fullmatch(r"colo-systemd-(\d+)-\w+", name)
        if m and not os.path.exists("/proc/" + m.group(1)):
            shutil.rmtree(os.path.join(tempfile.gettempdir(), name), ignore_errors=True)
    for name in os.listdir(parent):
        m = re.fullmatch(r"colo-systemd-(\d+)", name)
        if m and not os.path.exists("/proc/" + m.group(1)):
            for root, _, _ in os.walk(os.path.join(parent, name), topdown=False):
                try:
                    os.rmdir(root)
                except OSError:
                    pass


def unavailable():
    """Why systemd cannot be run here (None when it can)."""
    if os.geteuid() != 0:
        return "needs root: namespaces, mounts and a cgroup"
    if not os.access(SYSTEMD, os.X_OK):
        return "no %s (Debian package systemd)" % SYSTEMD
    for tool in ("unshare", "nsenter", "mountpoint"):
        if not shutil.which(tool):
            return "no %s (Debian package util-linux)" % tool
    if not any(line.split()[-1] == "overlay" for line in open("/proc/filesystems")):
        return "the kernel has no overlay file system, which keeps systemd's /etc and /var apart from this machine's"
    if cgroup2_dir() is None:
        return "no writable cgroup2 hierarchy holds this process (/proc/self/mountinfo), so systemd has none to run in"
    return None


class Systemd:
    """systemd in its own namespaces. setup: shell lines run as root in its mount namespace before it
    starts, in a directory holding the files named by inputs ({name: bytes})."""

    def __init__(self, netns, setup, inputs):
        self.netns, self.setup, self.inputs = netns, setup, inputs
        self.work = self.cgroup = self.proc = self.pid = None

    def start(self):
        self.work = tempfile.mkdtemp(prefix="colo-systemd-%d-" % os.getpid())
        os.makedirs(os.path.join(self.work, "layers"))
        os.makedirs(os.path.join(self.work, "in"))
        for name, data in self.inputs.items():
            open(os.path.join(self.work, "in", name), "wb").write(data)
        open(os.path.join(self.work, "setup.sh"), "w").write(self.setup)
        remove_stale(cgroup2_dir())
        self.cgroup = os.path.join(cgroup2_dir(), "colo-systemd-%d" % os.getpid())
        os.mkdir(self.cgroup)
        procs = os.path.join(self.cgroup, "cgroup.procs")
        libc = ctypes.CDLL(None, use_errno=True)

        def into_cgroup_dying_with_us():
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            with open(procs, "w") as f:
                f.write("0")

        env = dict(os.environ, SYSTEMD=SYSTEMD, JOURNALD_UNITS=" ".join(JOURNALD_UNITS), TARGETS=" ".join(TARGETS))
        self.proc = subprocess.Popen(
            ["nsenter", "--net=/run/netns/" + self.netns, "unshare", "--pid", "--fork", "--kill-child", "--mount",
             "--uts", "--cgroup", "--mount-proc", "bash", "-c", BOOT, "systemd-boot", self.work],
            env=env, stdout=open(self.log(), "w"), stderr=subprocess.STDOUT, preexec_fn=into_cgroup_dying_with_us)
        self.pid = self.wait_for_pid1()
        return self.wait_for_boot()

    def log(self):
        return os.path.join(self.work, "boot.log")

    def tail(self):
        """The last lines the boot script and systemd wrote, for a failure message."""
        text = ""
        for name in ("boot.log", "console"):
            path = os.path.join(self.work, name)
            if os.path.exists(path):
                text += open(path, errors="replace").read()
        return " | ".join(text.strip().splitlines()[-4:])

    def wait_for_pid1(self):
        """unshare's child once it has become systemd."""
        deadline = time.time() + 20
        while time.time() < deadline and self.proc.poll() is None:
            try:
                children = open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)).read().split()
                if children and open("/proc/%s/comm" % children[0]).read().strip() == "systemd":
                    return int(children[0])
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("systemd did not start (unshare %s): %s" % (
            "exited %s" % self.proc.returncode if self.proc.poll() is not None else "still running", self.tail()))

    def wait_for_boot(self):
        """running or degraded, once systemd answers (its socket appears a moment after it starts)."""
        deadline = time.time() + 60
        while True:
            r = self.run(["systemctl", "is-system-running", "--wait"], timeout=60)
            state = r.stdout.strip()
            if state in ("running", "degraded"):
                return state
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("systemd did not finish starting (%s): %s" % (
                    state or r.stderr.strip(), self.tail()))
            time.sleep(0.1)

    def run(self, argv, timeout=30):
        """argv as root in systemd's namespaces (its PIDs, its /run, its network)."""
        return subprocess.run(["nsenter", "-t", str(self.pid), "-m", "-p", "-n", "-u", "--"] + argv,
                              capture_output=True, text=True, timeout=timeout)

    def show(self, unit, prop):
        return self.run(["systemctl", "show", "-P", prop, unit]).stdout.strip()

    def close(self):
        """Kills systemd and everything in its namespaces; what could not be cleaned up, if anything."""
        left = []
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
        if self.cgroup and os.path.isdir(self.cgroup):
            deadline = time.time() + 10
            while time.time() < deadline and "populated 1" in open(os.path.join(self.cgroup, "cgroup.events")).read():
                time.sleep(0.1)
            for root, _, _ in os.walk(self.cgroup, topdown=False):
                try:
                    os.rmdir(root)
                except OSError as e:
                    left.append("cgroup %s: %s" % (root, e.strerror))
        if self.work:
            left += ["mount %s" % line.split()[4] for line in open("/proc/self/mountinfo") if self.work in line]
            shutil.rmtree(self.work, ignore_errors=True)
        return left
