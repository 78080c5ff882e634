#!/usr/bin/env python3
"""End-to-end container benchmark: skiff against dockerd and podman (stdlib only).

Run through run-bench.sh; see docs/benchmarks.md. Each engine runs in its own cpuacct
cgroup with fresh roots and the same busybox image (the project's `single` test image,
exported once with `docker save` so every engine loads the same docker-archive tar). Per
round, engines alternate (A B C A B C) because the machine is shared and noisy:

- `docker run --rm --network none IMG true` wall time through the CLI;
- `docker run -d` of a container that exits on SIGTERM, then `docker stop`, each timed;

then, once per engine: 20 idle containers, the summed RSS of the engine's processes
(daemon, shims, containerd; containers themselves are in their own cgroups) and the RSS of
one shim; `GET /containers/json` with those 20 containers over one kept-alive connection.
The report gives medians and skiff/peer ratios.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pull_bench as pb  # noqa: E402  (engines, cgroups, cleanup)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
IMAGE = "single:latest"
MIB = 1024 * 1024
IDLE = 20
SHIM_NAMES = {"skiff": "skiff", "dockerd": "containerd-shim", "podman": "conmon"}


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("engine")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


class PodmanRunc(pb.Podman):
    """podman's default crun refuses this machine's hybrid cgroups: use runc."""

    def env(self, data_root, exec_root):
        env = super().env(data_root, exec_root)
        conf = env["CONTAINERS_CONF"]
        with open(conf) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(text.replace("[engine]\n", '[engine]\nruntime = "runc"\n', 1))
        return env


class Running:
    """One engine, started in its own cgroup, with the bench image loaded."""

    def __init__(self, engine, args, image_tar):
        self.engine = engine
        self.base = tempfile.mkdtemp(prefix=f"run-{engine.name}-", dir=args.workdir)
        self.data_root = os.path.join(self.base, "data")
        self.exec_root = os.path.join(self.base, "exec")
        os.makedirs(self.data_root)
        os.makedirs(self.exec_root)
        self.sock = os.path.join(self.exec_root, "engine.sock")
        self.logf = open(os.path.join(self.base, "engine.log"), "wb")
        self.cg = pb.Cgroup(f"skiff-runbench-{engine.name}-{os.getpid()}")
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{self.sock}",
                        DOCKER_CONFIG=os.path.join(self.exec_root, "docker-cli"),
                        DOCKER_CLI_HINTS="false")
        self.proc = subprocess.Popen(
            engine.command(self.data_root, self.exec_root, self.sock),
            env=engine.env(self.data_root, self.exec_root), stdout=self.logf,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=self.cg.join_self)
        try:
            self.wait_ready(image_tar)
        except Exception:
            tail = open(os.path.join(self.base, "engine.log"), "rb").read()[-500:]
            self.stop()
            raise RuntimeError(f"{engine.name}: {tail.decode('utf-8', 'replace')}")

    def wait_ready(self, image_tar):
        engine = self.engine
        t0 = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{engine.name} exited; see {self.base}/engine.log")
            try:
                if pb.http_unix(self.sock, "GET", "/_ping", timeout=2)[0] == 200:
                    break
            except (OSError, ValueError, IndexError):
                pass
            if time.monotonic() - t0 > 60:
                raise RuntimeError(f"{engine.name} did not answer /_ping")
            time.sleep(0.01)
        self.docker("load", "-i", image_tar)

    def docker(self, *args, check=True):
        r = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} via {self.engine.name}: "
                               f"{r.stderr.strip() or r.stdout.strip()}")
        return r.stdout

    def timed(self, *args):
        t = time.perf_counter()
        self.docker(*args)
        return time.perf_counter() - t

    def stop(self):
        ids = self.docker("ps", "-aq", check=False).split()
        if ids:
            self.docker("rm", "-f", *ids, check=False)
        pb.stop_pids(self.cg, self.proc.pid, self.proc)
        self.logf.close()
        self.cg.remove()
        pb.cleanup_roots([self.data_root, self.exec_root])
        shutil.rmtree(self.base, ignore_errors=True)


def one_round(r, res):
    # a failing metric is reported (once) and skipped; the others still count
    try:
        res.setdefault("run_rm_s", []).append(
            r.timed("run", "--rm", "--network", "none", IMAGE, "true"))
    except RuntimeError as e:
        if "run_rm_error" not in res:
            res["run_rm_error"] = str(e)
            pb.log(f"note: {e}")
    t = time.perf_counter()
    cid = r.docker("run", "-d", "--network", "none", IMAGE, "sh", "-c",
                   "trap 'exit 0' TERM; while true; do sleep 0.05; done").strip()
    res.setdefault("run_d_s", []).append(time.perf_counter() - t)
    res.setdefault("stop_s", []).append(r.timed("stop", cid))
    r.docker("rm", cid)


def idle_and_list(r, res):
    for _ in range(IDLE):
        r.docker("run", "-d", "--network", "none", IMAGE, "sleep", "100000")
    time.sleep(2)
    pids = r.cg.pids()
    procs = [(p, pb.comm(p), pb.rss(p)) for p in pids]
    # container processes are moved to their own cgroups by the runtime; keep only the
    # engine's (a container's sleep that stayed would show as "sleep")
    procs = [x for x in procs if x[1] not in ("sleep",)]
    res["idle20_rss_mib"] = sum(x[2] for x in procs) / MIB
    res["idle20_pss_mib"] = sum(pb.pss(x[0]) for x in procs) / MIB
    shim = SHIM_NAMES[r.engine.name]
    shims = [x for x in procs if x[1].startswith(shim) and x[0] != r.proc.pid]
    res["shims"] = len(shims)
    if shims:
        res["shim_rss_mib"] = statistics.median(x[2] for x in shims) / MIB
    res["processes"] = sorted({x[1] for x in procs})
    conn = UnixHTTP(r.sock)
    lat = []
    for i in range(220):
        t = time.perf_counter()
        conn.request("GET", "/containers/json")
        body = conn.getresponse().read()
        if i >= 20:  # warm-up first
            lat.append(time.perf_counter() - t)
    conn.close()
    res["list_count"] = len(json.loads(body))
    res["list_ms"] = statistics.median(lat) * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--engines", default="skiff,dockerd,podman")
    ap.add_argument("--skiff", default=os.path.join(REPO, "target/release/skiff"))
    # short: podman refuses a runroot longer than 50 characters
    ap.add_argument("--workdir", default="/var/tmp/srb")
    ap.add_argument("--out", default=os.path.join(REPO, "bench-out"))
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    engines = {"skiff": pb.Skiff, "dockerd": pb.Dockerd, "podman": PodmanRunc}
    chosen = []
    for name in args.engines.split(","):
        e = engines[name](args, "127.0.0.1:1", args.workdir)
        if e.available():
            chosen.append(e)
        else:
            pb.log(f"note: {name} is not installed; skipped")

    # the image: build the test images, load `single` into skiff, save it as docker-archive
    imgdir = os.path.join(args.workdir, "images")
    subprocess.run(["bash", os.path.join(REPO, "scripts/build-test-images.sh"), imgdir],
                   check=True, capture_output=True)
    oci_tar = os.path.join(args.workdir, "single-oci.tar")
    subprocess.run(["tar", "-C", os.path.join(imgdir, "single"), "-cf", oci_tar, "."], check=True)
    image_tar = os.path.join(args.workdir, "single.tar")
    sk = Running(pb.Skiff(args, "127.0.0.1:1", args.workdir), args, oci_tar)
    try:
        out = sk.docker("images", "-q")
        sk.docker("tag", out.split()[0], IMAGE)
        sk.docker("save", "-o", image_tar, IMAGE)
    finally:
        sk.stop()

    running = []
    results = {e.name: {} for e in chosen}
    try:
        for e in chosen:
            pb.log(f"starting {e.name}")
            running.append(Running(e, args, image_tar))
        for r in running:  # warm-up: first runs create cgroups, caches
            one_round(r, {})
        for rnd in range(args.rounds):
            for r in running:
                one_round(r, results[r.engine.name])
            pb.log(f"round {rnd + 1}/{args.rounds} done")
        for r in running:
            idle_and_list(r, results[r.engine.name])
    finally:
        for r in running:
            r.stop()

    rows = [("docker run --rm true (ms)", "run_rm_s", 1000), ("docker run -d (ms)", "run_d_s", 1000),
            ("docker stop (ms)", "stop_s", 1000), ("RSS, 20 idle containers (MiB)", "idle20_rss_mib", 1),
            ("PSS, 20 idle containers (MiB)", "idle20_pss_mib", 1),
            ("RSS of one shim (MiB)", "shim_rss_mib", 1), ("GET /containers/json, 20 (ms)", "list_ms", 1)]
    names = [e.name for e in chosen]
    med = {}
    for n in names:
        for _, key, scale in rows:
            v = results[n].get(key)
            if isinstance(v, list):
                v = statistics.median(v) if v else None
            med[(n, key)] = None if v is None else v * scale
    peers = [n for n in names if n != "skiff"]
    head = ["metric (median)"] + names + [f"skiff/{p}" for p in peers]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for label, key, _ in rows:
        cells = [label]
        for n in names:
            v = med[(n, key)]
            cells.append("–" if v is None else f"{v:.2f}")
        for p in peers:
            a, b = med.get(("skiff", key)), med.get((p, key))
            cells.append(f"{a / b:.2f}x" if a and b else "–")
        print("| " + " | ".join(cells) + " |")
    for n in names:
        print(f"\n{n}: processes {results[n].get('processes')}, shims {results[n].get('shims')}, "
              f"listed {results[n].get('list_count')}")
        if results[n].get("run_rm_error"):
            print(f"{n}: docker run --rm failed: {results[n]['run_rm_error']}")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = os.path.join(args.out, f"run-bench-{stamp}.json")
    with open(path, "w") as f:
        json.dump({"rounds": args.rounds, "results": results}, f, indent=1)
    pb.log(f"raw numbers in {path}")


if __name__ == "__main__":
    main()
