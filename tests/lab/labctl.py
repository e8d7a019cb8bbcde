#!/usr/bin/env python3
"""labctl.py — talk to a colo-proxy control socket, for the lab.

  labctl.py SOCKET stats                 print the stats JSON line
  labctl.py SOCKET send COMMAND          send one command (checkpoint-done, shutdown)
  labctl.py SOCKET agent DELAY_MS LOG    act as the checkpoint listener: answer every
                                         "event checkpoint-request" with checkpoint-done
                                         after DELAY_MS, append each request to LOG
  labctl.py SOCKET wait-idle SECONDS     wait until nothing is held (held == 0)
"""
import json
import socket
import sys
import time


def connect(path, timeout=5.0):
    deadline = time.time() + timeout
    while True:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            return s
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def request(path, command):
    s = connect(path)
    s.sendall((command + "\n").encode())
    f = s.makefile("r")
    while True:
        line = f.readline()
        if not line:
            raise SystemExit("labctl: control socket closed")
        if not line.startswith("event "):
            s.close()
            return line.strip()


def stats(path):
    return json.loads(request(path, "stats"))


def agent(path, delay_ms, log):
    s = connect(path)
    f = s.makefile("r")
    with open(log, "a") as out:
        for line in f:
            line = line.strip()
            if line.startswith("event checkpoint-request"):
                out.write(line.split()[-1] + "\n")
                out.flush()
                time.sleep(delay_ms / 1000.0)
                s.sendall(b"checkpoint-done\n")
            elif line == "event stopped":
                return


def wait_idle(path, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        st = stats(path)
        if st.get("held", 0) == 0 and all(p["tx_pending"] == 0 for p in st["ports"].values()):
            return
        time.sleep(0.1)
    raise SystemExit("labctl: still holding packets after %s s" % seconds)


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    path, verb = sys.argv[1], sys.argv[2]
    if verb == "stats":
        print(json.dumps(stats(path)))
    elif verb == "send":
        print(request(path, sys.argv[3]))
    elif verb == "agent":
        agent(path, int(sys.argv[3]), sys.argv[4])
    elif verb == "wait-idle":
        wait_idle(path, float(sys.argv[3]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
