#!/usr/bin/env python3
"""labclient.py — the lab's client workloads; exits non-zero on any wrong byte.

  labclient.py requests ADDR COUNT PORTBASE EXPECTED_FILE   GET /index.html COUNT times,
                                                            each over a fresh connection
  labclient.py get ADDR PATH EXPECTED_FILE                  one GET, body must equal the file
  labclient.py download ADDR PATH SHA256                    one GET, body's sha256 must match
  labclient.py watch ADDR PATH SHA256 KILL_TIME_FILE        a download through a failover: creates
                                                            KILL_TIME_FILE.started after 20 MB,
                                                            reads no more until a kill time is in
                                                            KILL_TIME_FILE (so the kill always
                                                            falls mid-download), and reports the
                                                            pause after it
  labclient.py loop ADDR SECONDS PORTBASE EXPECTED_FILE     requests over fresh connections for
                                                            SECONDS; reports the slowest
"""
import hashlib
import os
import socket
import sys
import time


def get(addr, path, sport=0, timeout=30):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", sport))
    s.settimeout(timeout)
    s.connect((addr, 80))
    s.sendall(("GET %s HTTP/1.0\r\nHost: lab\r\n\r\n" % path).encode())
    chunks = []
    while True:
        c = s.recv(1 << 20)
        if not c:
            break
        chunks.append(c)
    s.close()
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.0 200"):
        raise RuntimeError("bad response to %s: %r" % (path, head[:80]))
    return body


STARTED_BYTES = 20 << 20
KILL_WAIT_S = 60


def kill_time(kill_file):
    """The time written in KILL_TIME_FILE (0: no kill yet)."""
    try:
        return float(open(kill_file).read() or 0)
    except (OSError, ValueError):
        return 0.0


def wait_for_kill(kill_file):
    """The download holds still (TCP flow control) until the lab has killed a host."""
    deadline = time.time() + KILL_WAIT_S
    while not kill_time(kill_file) and time.time() < deadline:
        time.sleep(0.01)


def watch(addr, path, sha, kill_file):
    """Streams a download, hashing as it comes, and remembers when each chunk arrived."""
    s = socket.create_connection((addr, 80), timeout=60)
    s.sendall(("GET %s HTTP/1.0\r\nHost: lab\r\n\r\n" % path).encode())
    digest, arrivals, head, size = hashlib.sha256(), [], b"", 0
    while True:
        c = s.recv(1 << 20)
        if not c:
            break
        arrivals.append(time.time())
        if head is not None:
            head += c
            if b"\r\n\r\n" not in head:
                continue
            c = head.partition(b"\r\n\r\n")[2]
            head = None
        digest.update(c)
        size += len(c)
        if size >= STARTED_BYTES and not os.path.exists(kill_file + ".started"):
            open(kill_file + ".started", "w").close()
            wait_for_kill(kill_file)
            arrivals = [time.time()]  # the pause is counted from here, not from the hold
    s.close()
    kill = kill_time(kill_file)
    if not kill:
        print("watch: no kill within %d s of the %d MB mark: the failover was not exercised"
              % (KILL_WAIT_S, STARTED_BYTES >> 20))
        return False
    # The gap: the longest pause between two chunks that ends after the kill.
    pauses = [(b - a, a) for a, b in zip(arrivals, arrivals[1:]) if b > kill]
    gap, start = max(pauses) if pauses else (float("inf"), kill)
    ok = digest.hexdigest() == sha
    print("watch: %.1f MB, sha256 %s; the longest pause after the kill: %.0f ms (from %.0f ms after it)%s"
          % (size / 1e6, "correct" if ok else "WRONG", gap * 1000, (start - kill) * 1000,
             "" if pauses else " — NO BYTES AFTER THE KILL: the failover was not exercised"))
    return ok and bool(pauses)


def loop(addr, seconds, base, expected):
    want = open(expected, "rb").read()
    end, n, bad, slowest = time.time() + seconds, 0, 0, 0.0
    while time.time() < end:
        t = time.time()
        try:
            ok = get(addr, "/index.html", base + n % 5000, timeout=10) == want
        except OSError as e:
            print("loop: request %d failed: %r" % (n, e))
            ok = False
        slowest = max(slowest, time.time() - t)
        bad += not ok
        n += 1
        time.sleep(0.01)
    print("loop: %d of %d requests correct; slowest %.0f ms" % (n - bad, n, slowest * 1000))
    return bad == 0 and n > 0


def main():
    verb = sys.argv[1]
    t0 = time.time()
    if verb == "requests":
        addr, count, base, expected = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
        want = open(expected, "rb").read()
        bad = 0
        for i in range(count):
            if get(addr, "/index.html", base + i) != want:
                bad += 1
        print("requests: %d of %d correct in %.1f s" % (count - bad, count, time.time() - t0))
        sys.exit(1 if bad else 0)
    elif verb == "get":
        body = get(sys.argv[2], sys.argv[3])
        ok = body == open(sys.argv[4], "rb").read()
        print("get %s: %s" % (sys.argv[3], "correct" if ok else "WRONG BYTES"))
        sys.exit(0 if ok else 1)
    elif verb == "download":
        body = get(sys.argv[2], sys.argv[3], timeout=120)
        digest = hashlib.sha256(body).hexdigest()
        ok = digest == sys.argv[4]
        mb = len(body) / 1e6
        print("download: %.1f MB in %.1f s, sha256 %s" % (mb, time.time() - t0, "correct" if ok else "WRONG"))
        sys.exit(0 if ok else 1)
    elif verb == "watch":
        sys.exit(0 if watch(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]) else 1)
    elif verb == "loop":
        sys.exit(0 if loop(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]) else 1)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
