#!/usr/bin/env python3
"""badwire.py IFACE_A IFACE_B LOSS REORDER — a bad cable between two interfaces.

Forwards every frame that arrives on one interface out of the other, except that
each is dropped with probability LOSS, and with probability REORDER held back and
sent after the next frame going the same way. Runs until SIGTERM, then prints
"badwire: N frames, D dropped, R reordered". For the lab's link between the proxies
(the kernel here has no netem).
"""
import random
import select
import signal
import socket
import sys

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def main():
    a, b, loss, reorder = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    socks = {}
    for name in (a, b):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((name, 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        socks[name] = s
    other = {a: socks[b], b: socks[a]}
    held = {a: None, b: None}
    counts = {"frames": 0, "dropped": 0, "reordered": 0}
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    by_fd = {s.fileno(): name for name, s in socks.items()}
    while running[0]:
        try:
            ready, _, _ = select.select(list(socks.values()), [], [], 0.2)
        except InterruptedError:
            continue
        for s in ready:
            name = by_fd[s.fileno()]
            frame, addr = s.recvfrom(65535)
            if addr[2] == PACKET_OUTGOING:
                continue
            counts["frames"] += 1
            if random.random() < loss:
                counts["dropped"] += 1
                continue
            if held[name] is None and random.random() < reorder:
                held[name] = frame
                counts["reordered"] += 1
                continue
            try:
                other[name].send(frame)
                if held[name] is not None:
                    other[name].send(held[name])
                    held[name] = None
            except OSError:
                pass
    print("badwire: %(frames)d frames, %(dropped)d dropped, %(reordered)d reordered" % counts, flush=True)


if __name__ == "__main__":
    main()
