#!/usr/bin/env python3
"""End-to-end pull benchmark: skiff against dockerd and podman (stdlib only).

Run through pull-bench.sh; see docs/benchmarks.md. Per round and engine, with a fresh data
root: start the engine in its own cpuacct cgroup, time exec -> first /_ping answer, measure
idle RSS/PSS after ~1 s, pull the bench image with the docker CLI through the engine's API
(wall time, engine CPU, bytes written, peak RSS sampled every 20 ms), stop the engine by PID,
unmount what it left and delete its roots. Engines alternate within each round (A B C A B C)
because the machine is shared and noisy; the report gives medians and skiff/peer ratios.
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CGROUP_CPU = "/sys/fs/cgroup/cpuacct"
IMAGE = "skiff-bench/minbase:v1"
MIB = 1024 * 1024

# Targets from the issue, as (metric, limit, unit) for the skiff column.
TARGETS = {
    "ping_ms": "<= 50 ms",
    "idle_rss_mib": "<= 8 MiB",
    "pull_wall_s": "<= 0.7x dockerd",
    "write_ratio": "<= 1.05",
    "peak_rss_mib": "<= 40 MiB",
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid):
    """True while PID exists and is not a zombie (kill(pid, 0) succeeds on zombies)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def http_unix(sock_path, method, path, timeout=5.0):
    """One HTTP/1.0 request over a unix socket; returns (status, body bytes)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall(f"{method} {path} HTTP/1.0\r\nHost: engine\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body


# ---------------------------------------------------------------- per-process readings


def read_kv(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k.strip()] = v.strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return out


def kib(v):
    return int(v.split()[0]) * 1024 if v else 0


def rss(pid):
    return kib(read_kv(f"/proc/{pid}/status").get("VmRSS"))


def hwm(pid):
    return kib(read_kv(f"/proc/{pid}/status").get("VmHWM"))


def pss(pid):
    return kib(read_kv(f"/proc/{pid}/smaps_rollup").get("Pss"))


def written(pid):
    io = read_kv(f"/proc/{pid}/io")
    if not io:
        return None
    return int(io.get("write_bytes", 0)) - int(io.get("cancelled_write_bytes", 0))


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except (FileNotFoundError, ProcessLookupError):
        return "?"


class Cgroup:
    """A cpuacct v1 cgroup holding one engine and everything it starts."""

    def __init__(self, name):
        self.path = os.path.join(CGROUP_CPU, name)
        os.makedirs(self.path, exist_ok=True)

    def join_self(self):  # runs in the child between fork and exec
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))

    def pids(self):
        with open(os.path.join(self.path, "cgroup.procs")) as f:
            return [int(p) for p in f.read().split() if alive(int(p))]

    def cpu_ns(self):
        with open(os.path.join(self.path, "cpuacct.usage")) as f:
            return int(f.read())

    def cpu_user_sys_ns(self):
        out = []
        for f in ("cpuacct.usage_user", "cpuacct.usage_sys"):
            with open(os.path.join(self.path, f)) as fh:
                out.append(int(fh.read()))
        return out

    def remove(self):
        for _ in range(100):
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.05)  # zombies still listed; they go once reaped
        log(f"note: cgroup {self.path} still busy; left in place")


def threads_cpu(pids):
    """CPU seconds (utime+stime since start) per thread name, summed over PIDS: shows
    where an engine's CPU goes (decompression, hashing, runtime workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except FileNotFoundError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    head, _, rest = f.read().rpartition(")")
                name = f"{comm(pid)}/{head.split('(', 1)[1]}"
                fields = rest.split()
                out[name] = out.get(name, 0) + (int(fields[11]) + int(fields[12])) / tick
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
    return dict(sorted(out.items(), key=lambda kv: -kv[1])[:8])


def ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None


class Sampler(threading.Thread):
    """Every 20 ms: sum VmRSS over the cgroup (keep the peak) and each process's write
    counter. When a parent reaps a child the kernel adds the child's counters to the
    parent's /proc/PID/io (dockerd and podman run each layer's untar as a short-lived
    child), so a vanished child counts only when its parent is not one of ours; otherwise
    it would be counted twice."""

    def __init__(self, cgroup, baseline):
        super().__init__(daemon=True)
        self.cgroup, self.baseline = cgroup, baseline
        self.known = {}  # pid -> (ppid, last write counter)
        self.gone = 0  # bytes of children reaped outside the engine's processes
        self.peak_rss = 0
        self.stop = threading.Event()

    def sample(self):
        live = self.cgroup.pids()
        total = 0
        for pid in live:
            total += rss(pid)
            w = written(pid)
            if w is not None:
                self.known[pid] = (ppid(pid), w)
        for pid in [p for p in self.known if p not in live]:
            if os.path.exists(f"/proc/{pid}"):
                continue  # a zombie: not reaped yet, its counter is still its own
            parent, w = self.known.pop(pid)
            if parent not in live:
                self.gone += w - self.baseline.get(pid, 0)
        self.peak_rss = max(self.peak_rss, total)

    def run(self):
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(0.02)

    def finish(self):
        self.stop.set()
        self.join()
        self.sample()
        return self.gone + sum(w - self.baseline.get(pid, 0) for pid, (_, w) in self.known.items())


# ---------------------------------------------------------------- engines


class Engine:
    name = "?"
    binary = "?"

    def __init__(self, args, registry, work):
        self.args, self.registry, self.work = args, registry, work

    def available(self):
        return shutil.which(self.binary) is not None

    def command(self, data_root, exec_root, sock):
        raise NotImplementedError

    def env(self, data_root, exec_root):
        return dict(os.environ)


class Skiff(Engine):
    name = "skiff"

    def __init__(self, *a):
        super().__init__(*a)
        self.binary = self.args.skiff

    def available(self):
        return os.access(self.binary, os.X_OK)

    def command(self, data_root, exec_root, sock):
        return [self.binary, "daemon", "--data-root", data_root, "--exec-root", exec_root,
                "-H", f"unix://{sock}", "--insecure-registry", self.registry]


class Dockerd(Engine):
    name = "dockerd"
    binary = "dockerd"

    def command(self, data_root, exec_root, sock):
        # An empty config file so /etc/docker/daemon.json cannot change the run; dockerd
        # starts its own containerd (a child, in the same cgroup).
        cfg = os.path.join(exec_root, "daemon.json")
        with open(cfg, "w") as f:
            f.write("{}")
        return ["dockerd", "--config-file", cfg, "--data-root", data_root,
                "--exec-root", exec_root, "--pidfile", os.path.join(exec_root, "docker.pid"),
                "-H", f"unix://{sock}", "--iptables=false", "--ip6tables=false",
                "--bridge=none", "--storage-driver", "overlay2",
                "--insecure-registry", self.registry]


class Podman(Engine):
    name = "podman"
    binary = "podman"

    def env(self, data_root, exec_root):
        conf = os.path.join(exec_root, "containers.conf")
        with open(conf, "w") as f:
            f.write(f"""[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
# crun refuses this machine's hybrid cgroup layout; runc works
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{exec_root}/events.log"
image_copy_tmp_dir = "{data_root}/tmp"
[network]
network_config_dir = "{data_root}/networks"
""")
        regs = os.path.join(exec_root, "registries.conf")
        with open(regs, "w") as f:
            f.write(f"""unqualified-search-registries = []
[[registry]]
location = "{self.registry}"
insecure = true
""")
        os.makedirs(os.path.join(data_root, "tmp"), exist_ok=True)
        env = dict(os.environ)
        env["CONTAINERS_CONF"] = conf
        env["CONTAINERS_REGISTRIES_CONF"] = regs
        return env

    def command(self, data_root, exec_root, sock):
        return ["podman", "--root", os.path.join(data_root, "storage"),
                "--runroot", os.path.join(exec_root, "runroot"),
                "--tmpdir", os.path.join(exec_root, "libpod"),
                "--storage-driver", "overlay",
                "system", "service", "--time=0", f"unix://{sock}"]


def mounts_under(roots):
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if any(mp == r or mp.startswith(r + "/") for r in roots):
                out.append(mp)
    return sorted(out, key=len, reverse=True)


def cleanup_roots(roots):
    for _ in range(3):
        mps = mounts_under(roots)
        if not mps:
            break
        for mp in mps:
            if subprocess.run(["umount", mp], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", mp], capture_output=True)
    for r in roots:
        shutil.rmtree(r, ignore_errors=True)


def du_bytes(path):
    r = subprocess.run(["du", "-s", "-x", "--block-size=1", path], capture_output=True, text=True)
    return int(r.stdout.split()[0]) if r.returncode == 0 and r.stdout else 0


def stop_pids(cgroup, main_pid, proc):
    """SIGTERM the engine, wait; then anything it left in its cgroup (containerd), by PID."""
    clean = True
    for pid in [main_pid] + [p for p in cgroup.pids() if p != main_pid]:
        if not alive(pid):
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + 30
        while alive(pid) and time.monotonic() < deadline:
            if pid == main_pid:
                try:
                    proc.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    pass
            else:
                time.sleep(0.05)
        if alive(pid):
            log(f"note: {comm(pid)} ({pid}) ignored SIGTERM for 30 s; SIGKILL")
            clean = False
            os.kill(pid, signal.SIGKILL)
    proc.wait()
    return clean


def run_one(engine, rnd, args, summary):
    base = tempfile.mkdtemp(prefix=f"{engine.name}-", dir=args.workdir)
    data_root, exec_root = os.path.join(base, "data"), os.path.join(base, "exec")
    os.makedirs(data_root)
    os.makedirs(exec_root)
    sock = os.path.join(exec_root, "engine.sock")
    logf = open(os.path.join(base, "engine.log"), "wb")
    cg = Cgroup(f"skiff-bench-{engine.name}-{os.getpid()}-{rnd}")
    env = engine.env(data_root, exec_root)
    cmd = engine.command(data_root, exec_root, sock)
    client_env = dict(os.environ, DOCKER_HOST=f"unix://{sock}",
                      DOCKER_CONFIG=os.path.join(exec_root, "docker-cli"))
    ref = f"{engine.registry}/{IMAGE}"
    res = {"engine": engine.name, "round": rnd}
    proc = None
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, preexec_fn=cg.join_self)
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{engine.name} exited with {proc.returncode} before "
                                   f"answering /_ping; see {base}/engine.log")
            try:
                if http_unix(sock, "GET", "/_ping", timeout=2)[0] == 200:
                    break
            except (OSError, ValueError, IndexError):
                pass
            if time.perf_counter() - t0 > 60:
                raise RuntimeError(f"{engine.name} did not answer /_ping within 60 s")
            time.sleep(0.001)
        res["ping_ms"] = (time.perf_counter() - t0) * 1000

        time.sleep(1.0)
        pids = cg.pids()
        res["processes"] = sorted(comm(p) for p in pids)
        res["idle_rss_mib"] = sum(rss(p) for p in pids) / MIB
        res["idle_pss_mib"] = sum(pss(p) for p in pids) / MIB

        baseline = {p: written(p) or 0 for p in pids}
        cpu0 = cg.cpu_ns()
        us0 = cg.cpu_user_sys_ns()
        sampler = Sampler(cg, baseline)
        sampler.start()
        t1 = time.perf_counter()
        pull = subprocess.run(["docker", "pull", "-q", ref], env=client_env,
                              capture_output=True, text=True)
        res["pull_wall_s"] = time.perf_counter() - t1
        res["pull_written_bytes"] = sampler.finish()
        res["pull_cpu_s"] = (cg.cpu_ns() - cpu0) / 1e9
        us1 = cg.cpu_user_sys_ns()
        res["pull_cpu_user_s"] = (us1[0] - us0[0]) / 1e9
        res["pull_cpu_sys_s"] = (us1[1] - us0[1]) / 1e9
        res["threads_cpu_s"] = threads_cpu(cg.pids())
        res["peak_rss_mib"] = sampler.peak_rss / MIB
        res["hwm_sum_mib"] = sum(hwm(p) for p in cg.pids()) / MIB
        if pull.returncode != 0:
            raise RuntimeError(f"docker pull through {engine.name} failed: "
                               f"{pull.stderr.strip() or pull.stdout.strip()}")
        insp = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", ref],
                              env=client_env, capture_output=True, text=True)
        res["image_id"] = insp.stdout.strip()
        res["write_ratio"] = res["pull_written_bytes"] / summary["uncompressed_bytes"]
        res["data_root_disk_bytes"] = du_bytes(data_root)
    except Exception as e:  # one failed run must not lose the others' numbers
        res["error"] = str(e)
        log(f"  {engine.name} round {rnd}: ERROR {e}")
    finally:
        if proc is not None:
            res["stopped_cleanly"] = stop_pids(cg, proc.pid, proc)
        logf.close()
        cg.remove()
        if "error" in res:
            res["log_tail"] = open(os.path.join(base, "engine.log"), "rb").read()[-2000:].decode(
                "utf-8", "replace")
        cleanup_roots([data_root, exec_root])
        if "error" not in res or not args.keep_failed:
            shutil.rmtree(base, ignore_errors=True)
    return res


# ---------------------------------------------------------------- registry


class Registry:
    def __init__(self, workdir):
        self.dir = tempfile.mkdtemp(prefix="registry-", dir=workdir)
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        cfg = os.path.join(self.dir, "config.yml")
        with open(cfg, "w") as f:
            f.write(f"""version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: {self.dir}/data
  delete:
    enabled: true
http:
  addr: {self.addr}
""")
        self.log = open(os.path.join(self.dir, "registry.log"), "wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", cfg], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("docker-registry did not start")
                time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- report


def median(results, engine, key):
    vals = [r[key] for r in results if r["engine"] == engine and key in r and "error" not in r]
    return statistics.median(vals) if vals else None


ROWS = [
    ("first /_ping (ms)", "ping_ms", "{:.0f}"),
    ("idle RSS (MiB)", "idle_rss_mib", "{:.1f}"),
    ("idle PSS (MiB)", "idle_pss_mib", "{:.1f}"),
    ("pull wall time (s)", "pull_wall_s", "{:.2f}"),
    ("pull CPU time (s)", "pull_cpu_s", "{:.2f}"),
    ("  of it user (s)", "pull_cpu_user_s", "{:.2f}"),
    ("  of it system (s)", "pull_cpu_sys_s", "{:.2f}"),
    ("bytes written (MB)", "pull_written_mb", "{:.1f}"),
    ("written / uncompressed", "write_ratio", "{:.3f}"),
    ("peak RSS in pull (MiB)", "peak_rss_mib", "{:.1f}"),
    ("data root on disk (MB)", "data_root_mb", "{:.1f}"),
]


def report(results, engines, summary):
    for r in results:
        if "pull_written_bytes" in r:
            r["pull_written_mb"] = r["pull_written_bytes"] / 1e6
        if "data_root_disk_bytes" in r:
            r["data_root_mb"] = r["data_root_disk_bytes"] / 1e6
    peers = [e for e in engines if e != "skiff"]
    head = ["metric (median)"] + engines + [f"skiff/{p}" for p in peers if "skiff" in engines]
    head.append("skiff target")
    rows = []
    for label, key, fmt in ROWS:
        row = [label]
        meds = {e: median(results, e, key) for e in engines}
        row += [fmt.format(meds[e]) if meds[e] is not None else "-" for e in engines]
        if "skiff" in engines:
            for p in peers:
                s, q = meds.get("skiff"), meds.get(p)
                row.append(f"{s / q:.2f}x" if s is not None and q else "-")
        row.append(TARGETS.get(key, ""))
        rows.append(row)
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
             for r in [head] + rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    n = {e: sum(1 for r in results if r["engine"] == e and "error" not in r) for e in engines}
    lines.append("")
    lines.append("successful rounds: " + ", ".join(f"{e} {n[e]}" for e in engines))
    lines.append(f"image: {summary['name']}, {len(summary['layers'])} gzip layers, "
                 f"{summary['uncompressed_bytes'] / 1e6:.1f} MB uncompressed (tar), "
                 f"{summary['compressed_bytes'] / 1e6:.1f} MB compressed, "
                 f"{summary['rootfs_apparent_bytes'] / 1e6:.1f} MB of files")
    ids = {r["engine"]: r.get("image_id") for r in results if r.get("image_id")}
    if len(set(ids.values())) > 1:
        lines.append(f"WARNING: engines report different image IDs: {ids}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--engines", default="skiff,dockerd,podman",
                    help="comma-separated, run in this order each round")
    ap.add_argument("--skiff", default=os.environ.get(
        "SKIFF_BIN", os.path.join(REPO, "target", "release", "skiff")))
    ap.add_argument("--workdir", default="/var/tmp/skiff-bench",
                    help="image cache, engine roots and registry storage go here")
    ap.add_argument("--out", default=os.path.join(REPO, "bench-out"))
    ap.add_argument("--keep-failed", action="store_true",
                    help="keep the engine log dir of failed runs")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("pull-bench: run as root (engines need mounts and cgroups)")
    for tool in ("docker", "docker-registry", "skopeo"):
        if shutil.which(tool) is None:
            sys.exit(f"pull-bench: {tool} is missing; see docs/benchmarks.md")
    os.makedirs(args.workdir, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    imgdir = os.path.join(args.workdir, "out")

    registry = Registry(args.workdir)
    try:
        subprocess.run([os.path.join(HERE, "build-bench-image.sh"), imgdir, registry.addr],
                       check=True)
        with open(os.path.join(imgdir, "bench-image.json")) as f:
            summary = json.load(f)
        classes = {"skiff": Skiff, "dockerd": Dockerd, "podman": Podman}
        engines = []
        for name in args.engines.split(","):
            if name not in classes:
                sys.exit(f"pull-bench: unknown engine {name}; use skiff, dockerd, podman")
            e = classes[name](args, registry.addr, args.workdir)
            if e.available():
                engines.append(e)
            elif name == "skiff":
                log(f"note: skipping skiff: {e.binary} not found; "
                    "cargo build --release -p skiff")
            else:
                log(f"note: skipping {name}: not installed")
        results = []
        for rnd in range(1, args.rounds + 1):
            for e in engines:
                r = run_one(e, rnd, args, summary)
                results.append(r)
                if "error" not in r:
                    log(f"  round {rnd} {e.name:8s} ping {r['ping_ms']:7.1f} ms  idle "
                        f"{r['idle_rss_mib']:6.1f} MiB  pull {r['pull_wall_s']:6.2f} s  cpu "
                        f"{r['pull_cpu_s']:6.2f} s  wrote {r['pull_written_bytes'] / 1e6:7.1f}"
                        f" MB  peak {r['peak_rss_mib']:6.1f} MiB")
    finally:
        registry.stop()

    names = [e.name for e in engines]
    table = report(results, names, summary)
    print(table)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = os.path.join(args.out, f"pull-bench-{stamp}.json")
    machine = {"nproc": os.cpu_count(), "kernel": os.uname().release,
               "cpu": next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                            if ln.startswith("model name")), "?"),
               "mem_total": read_kv("/proc/meminfo").get("MemTotal")}
    with open(out, "w") as f:
        json.dump({"when": stamp, "machine": machine, "image": summary,
                   "engines": names, "results": results, "table": table}, f, indent=1)
    log(f"raw numbers: {out}")
    if any("error" in r for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
