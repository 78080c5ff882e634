#!/usr/bin/env python3
"""End-to-end container benchmark: skiff against dockerd and podman (stdlib only).

Run through run-bench.sh; see docs/benchmarks.md. Each engine runs once for the whole
benchmark (its own data root, exec root and cpuacct cgroup) with the busybox test image
pulled from a private docker-registry on 127.0.0.1. Then, alternating the engines
(A B C A B C) because the machine is shared and noisy:

  * `docker run --rm --network none IMG true` wall time through the CLI (N rounds);
  * `docker run -d … sleep` followed by `docker stop -t 1` (wall time of each);
  * after starting 20 idle containers: RSS and PSS summed over the engine's own processes
    (daemon, containerd, shims, conmon: every process whose command line names the engine's
    roots, plus its cgroup) but not the containers' processes, and per-shim RSS;
  * `GET /containers/json` with those 20 containers, 200 times on one kept-alive connection;
  * the runtime floor: `runc run` of the same busybox bundle, no engine at all.

Prints medians and skiff/peer ratios; raw numbers go to bench-out/run-bench-*.json.
"""

import argparse
import datetime
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pull_bench as pb  # noqa: E402  (shared engine classes, cgroup and /proc readers)

REPO = pb.REPO
MIB = pb.MIB
IDLE = 20

TARGETS = {
    "run_rm_ms": "<= 0.35x dockerd",
    "idle20_rss_mib": "<= 60 MiB (0.15x dockerd)",
    "shim_rss_mib": "<= 3 MiB",
    "list_ms": "<= 0.5 ms",
}


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("engine", timeout=30)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.unix_path)


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def engine_pids(cg, roots):
    """The engine's own processes: its cgroup (daemon, containerd) plus every process whose
    command line names one of its roots (detached shims, conmon)."""
    pids = set(cg.pids())
    for d in os.listdir("/proc"):
        if d.isdigit() and pb.alive(int(d)):
            line = cmdline(int(d))
            if any(r in line for r in roots):
                pids.add(int(d))
    return sorted(pids)


def shim_like(pid):
    c = pb.comm(pid)
    return c.startswith("containerd-shim") or c == "conmon" or " shim " in cmdline(pid)


class Running:
    """One engine started for the whole benchmark."""

    def __init__(self, engine, args):
        self.engine = engine
        self.base = tempfile.mkdtemp(prefix=f"{engine.name}-", dir=args.workdir)
        self.data_root = os.path.join(self.base, "data")
        self.exec_root = os.path.join(self.base, "exec")
        os.makedirs(self.data_root)
        os.makedirs(self.exec_root)
        self.sock = os.path.join(self.exec_root, "engine.sock")
        self.logf = open(os.path.join(self.base, "engine.log"), "wb")
        self.cg = pb.Cgroup(f"skiff-runbench-{engine.name}-{os.getpid()}")
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{self.sock}",
                        DOCKER_CONFIG=os.path.join(self.exec_root, "docker-cli"))
        self.proc = subprocess.Popen(
            engine.command(self.data_root, self.exec_root, self.sock),
            env=engine.env(self.data_root, self.exec_root), stdout=self.logf,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=self.cg.join_self)
        try:
            self.wait_ping()
        except Exception:
            self.stop()
            raise

    def wait_ping(self):
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                tail = open(os.path.join(self.base, "engine.log"), "rb").read()[-500:]
                raise RuntimeError(f"{self.engine.name} exited early: {tail.decode(errors='replace')}")
            try:
                if pb.http_unix(self.sock, "GET", "/_ping", timeout=2)[0] == 200:
                    break
            except (OSError, ValueError, IndexError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.engine.name} did not answer /_ping within 60 s")
            time.sleep(0.01)

    def docker(self, *argv, check=True):
        r = subprocess.run(["docker", *argv], env=self.env, capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"docker {' '.join(argv)} via {self.engine.name} failed: "
                               f"{r.stderr.strip() or r.stdout.strip()}")
        return r

    def timed(self, *argv):
        t = time.perf_counter()
        self.docker(*argv)
        return (time.perf_counter() - t) * 1000

    def roots(self):
        return [self.data_root, self.exec_root]

    def stop(self):
        try:
            ids = self.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False)
        finally:
            pb.stop_pids(self.cg, self.proc.pid, self.proc)
            # shims of a daemon that was stopped before its containers: by PID, never by name
            for pid in engine_pids(self.cg, self.roots()):
                if shim_like(pid):
                    try:
                        os.kill(pid, 9)
                    except ProcessLookupError:
                        pass
            self.logf.close()
            self.cg.remove()
            pb.cleanup_roots(self.roots())
            shutil.rmtree(self.base, ignore_errors=True)


def list_latency(sock, n=200):
    conn = UnixHTTPConnection(sock)
    times = []
    try:
        for _ in range(n):
            t = time.perf_counter()
            conn.request("GET", "/containers/json")
            resp = conn.getresponse()
            body = resp.read()
            times.append((time.perf_counter() - t) * 1000)
            if resp.status != 200:
                raise RuntimeError(f"/containers/json answered {resp.status}: {body[:200]!r}")
    finally:
        conn.close()
    return statistics.median(times[10:]), len(json.loads(body))


def runc_floor(rounds, workdir):
    """`runc run` of a busybox bundle running `true`: the runtime's own cost."""
    if shutil.which("runc") is None:
        return None
    bundle = tempfile.mkdtemp(prefix="runc-floor-", dir=workdir)
    try:
        rootfs = os.path.join(bundle, "rootfs")
        os.makedirs(os.path.join(rootfs, "bin"))
        shutil.copy("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
        os.symlink("busybox", os.path.join(rootfs, "bin", "true"))
        subprocess.run(["runc", "spec"], cwd=bundle, check=True)
        with open(os.path.join(bundle, "config.json")) as f:
            spec = json.load(f)
        spec["process"]["terminal"] = False
        spec["process"]["args"] = ["/bin/true"]
        for rl in spec["process"].get("rlimits", []):
            rl["hard"] = min(rl["hard"], 20000)
            rl["soft"] = min(rl["soft"], 20000)
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f)
        times = []
        for i in range(rounds):
            t = time.perf_counter()
            subprocess.run(["runc", "--root", os.path.join(bundle, "state"), "run",
                            f"floor-{os.getpid()}-{i}"], cwd=bundle, check=True,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            times.append((time.perf_counter() - t) * 1000)
        return statistics.median(times)
    finally:
        shutil.rmtree(bundle, ignore_errors=True)


ROWS = [
    ("docker run --rm true (ms)", "run_rm_ms", "{:.0f}"),
    ("docker run -d sleep (ms)", "run_d_ms", "{:.0f}"),
    ("docker stop -t 1 (ms)", "stop_ms", "{:.0f}"),
    ("engine RSS, 20 idle (MiB)", "idle20_rss_mib", "{:.1f}"),
    ("engine PSS, 20 idle (MiB)", "idle20_pss_mib", "{:.1f}"),
    ("per-shim RSS (MiB)", "shim_rss_mib", "{:.2f}"),
    ("per-shim PSS (MiB)", "shim_pss_mib", "{:.2f}"),
    ("/containers/json, 20 (ms)", "list_ms", "{:.3f}"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--engines", default="skiff,dockerd,podman")
    ap.add_argument("--skiff", default=os.environ.get(
        "SKIFF_BIN", os.path.join(REPO, "target", "release", "skiff")))
    ap.add_argument("--skiff-runtime", default=None,
                    help="skiff's --runtime for every container (default: the daemon's)")
    ap.add_argument("--workdir", default="/var/tmp/skiff-bench")
    ap.add_argument("--out", default=os.path.join(REPO, "bench-out"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run-bench: run as root")
    os.makedirs(args.workdir, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    imgdir = os.path.join(args.workdir, "test-images")
    registry = pb.Registry(args.workdir)
    running = []
    results = {}
    try:
        if not os.path.exists(os.path.join(imgdir, "single", "index.json")):
            subprocess.run([os.path.join(REPO, "scripts", "build-test-images.sh"), imgdir],
                           check=True)
        subprocess.run([os.path.join(REPO, "scripts", "push-test-images.sh"), imgdir,
                        registry.addr], check=True, stdout=subprocess.DEVNULL)
        image = f"{registry.addr}/skiff-test/single:latest"
        classes = {"skiff": pb.Skiff, "dockerd": pb.Dockerd, "podman": pb.Podman}
        for name in args.engines.split(","):
            e = classes[name](args, registry.addr, args.workdir)
            if not e.available():
                pb.log(f"note: skipping {name}: not installed")
                continue
            r = Running(e, args)  # stopped in `finally` even when its pull fails
            running.append(r)
            r.docker("pull", "-q", image)
            results[name] = {k: [] for k in ("run_rm_ms", "run_d_ms", "stop_ms")}

        def extra(r):
            if r.engine.name == "skiff" and args.skiff_runtime:
                return ["--runtime", args.skiff_runtime]
            return []

        for rnd in range(args.rounds):
            for r in running:
                res = results[r.engine.name]
                res["run_rm_ms"].append(r.timed("run", "--rm", "--network", "none",
                                                *extra(r), image, "true"))
                if rnd < 5:
                    t = time.perf_counter()
                    cid = r.docker("run", "-d", "--network", "none", *extra(r), image,
                                   "sleep", "1000").stdout.strip()
                    res["run_d_ms"].append((time.perf_counter() - t) * 1000)
                    res["stop_ms"].append(r.timed("stop", "-t", "1", cid))
                    r.docker("rm", cid)
            pb.log(f"  round {rnd + 1}: " + "  ".join(
                f"{r.engine.name} {results[r.engine.name]['run_rm_ms'][-1]:.0f} ms"
                for r in running))

        for r in running:
            res = results[r.engine.name]
            for _ in range(IDLE):
                r.docker("run", "-d", "--network", "none", *extra(r), image, "sleep", "100000")
            time.sleep(2)
            pids = engine_pids(r.cg, r.roots())
            shims = [p for p in pids if shim_like(p)]
            res["processes"] = sorted(pb.comm(p) for p in pids)
            res["idle20_rss_mib"] = sum(pb.rss(p) for p in pids) / MIB
            res["idle20_pss_mib"] = sum(pb.pss(p) for p in pids) / MIB
            if shims:
                res["shim_rss_mib"] = statistics.median(pb.rss(p) for p in shims) / MIB
                res["shim_pss_mib"] = statistics.median(pb.pss(p) for p in shims) / MIB
            res["list_ms"], listed = list_latency(r.sock)
            if listed != IDLE:
                raise RuntimeError(f"{r.engine.name} listed {listed} containers, not {IDLE}")
        floor = runc_floor(args.rounds, args.workdir)
    finally:
        for r in running:
            r.stop()
        registry.stop()

    names = [r.engine.name for r in running]
    med = {n: {} for n in names}
    for n in names:
        for k, v in results[n].items():
            if isinstance(v, list) and v and isinstance(v[0], (int, float)):
                med[n][k] = statistics.median(v)
            elif isinstance(v, (int, float)):
                med[n][k] = v
    peers = [n for n in names if n != "skiff"]
    head = ["metric (median)"] + names + [f"skiff/{p}" for p in peers if "skiff" in names]
    head.append("skiff target")
    rows = []
    for label, key, fmt in ROWS:
        row = [label] + [fmt.format(med[n][key]) if key in med[n] else "-" for n in names]
        if "skiff" in names:
            for p in peers:
                s, q = med["skiff"].get(key), med[p].get(key)
                row.append(f"{s / q:.2f}x" if s is not None and q else "-")
        row.append(TARGETS.get(key, ""))
        rows.append(row)
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
             for r in [head] + rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    if floor is not None:
        lines.append("")
        lines.append(f"runtime floor: runc run of the same busybox bundle (true): {floor:.0f} ms")
    lines.append(f"rounds: {args.rounds}; skiff runtime: {args.skiff_runtime or 'daemon default'}")
    for n in names:
        lines.append(f"{n} processes with 20 idle containers: "
                     + ", ".join(sorted(set(results[n].get('processes', [])))))
    table = "\n".join(lines)
    print(table)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = os.path.join(args.out, f"run-bench-{stamp}.json")
    with open(out, "w") as f:
        json.dump({"when": stamp, "engines": names, "results": results, "floor_ms": floor,
                   "table": table}, f, indent=1)
    pb.log(f"raw numbers: {out}")


if __name__ == "__main__":
    main()
