#!/usr/bin/env python3
"""What the disk alone allows for group-commit latency on this machine.

Runs back-to-back `write + fdatasync` of SIZE bytes on a file in DIR for SECONDS, optionally with
N busy-loop processes occupying CPUs (`--hogs N`, to see what a load generator and a broker
sharing the vCPUs do to the sync tail), and prints:
  - the fdatasync latency percentiles, and
  - a lower bound for put->ack latency under group commit: a put arriving uniformly in time
    during sync i waits for the rest of sync i and then for all of sync i+1.

  Benchmarks/fsync-latency.py [--dir .] [--size 4096] [--seconds 10] [--hogs 0]
"""
import argparse, os, random, subprocess, sys, time

p = argparse.ArgumentParser()
p.add_argument("--dir", default=".")
p.add_argument("--size", type=int, default=4096)
p.add_argument("--seconds", type=float, default=10)
p.add_argument("--hogs", type=int, default=0)
a = p.parse_args()

hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(a.hogs)]
path = os.path.join(a.dir, ".fsync-latency-test")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
buf = b"x" * a.size
d = []
try:
    end = time.time() + a.seconds
    while time.time() < end:
        t = time.perf_counter_ns()
        os.write(fd, buf)
        os.fdatasync(fd)
        d.append((time.perf_counter_ns() - t) / 1e6)
finally:
    os.close(fd)
    os.unlink(path)
    for h in hogs:
        h.kill()

pc = lambda xs, q: xs[min(len(xs) - 1, int(len(xs) * q))]
s = sorted(d)
print(f"hogs={a.hogs} size={a.size}: {len(s)} syncs, p50 {pc(s,.5):.3f} p99 {pc(s,.99):.3f} "
      f"p99.9 {pc(s,.999):.3f} max {s[-1]:.2f} ms")
rng = random.Random(1)
lat = []
for i in range(len(d) - 1):
    for _ in range(max(1, int(d[i] * 50))):  # 50 samples per ms of sync: uniform in time
        lat.append(rng.random() * d[i] + d[i + 1])
lat.sort()
print(f"  put->ack lower bound under group commit: p50 {pc(lat,.5):.3f} p99 {pc(lat,.99):.3f} "
      f"p99.9 {pc(lat,.999):.3f} ms")
