#!/usr/bin/env python3
"""Delta benchmark: skiff delta vs rdiff -b 512 (balenaEngine), xdelta3, zstd --patch-from,
bsdiff and a full gzip layer on an OS update, a rebuilt binary and a config-only change.
See delta-bench.sh for usage and docs/benchmarks.md for the results."""

import argparse
import gzip
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

EXTRA_PACKAGES = ["less", "nano", "xz-utils", "iproute2", "procps"]
SUITE = "bookworm"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, **kw):
    log("+", " ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def make_tar(root, out):
    """A layer tar as image builders write it: sorted, numeric owners, xattrs."""
    run(["tar", "--sort=name", "--numeric-owner", "--xattrs", "--xattrs-include=*",
         "-C", root, "-cf", out, "."])


# ------------------------------------------------------------------------- corpus

def build_os(work):
    v1, v2 = work / "os-v1.tar", work / "os-v2.tar"
    if v1.exists() and v2.exists():
        return v1, v2
    r1, r2 = work / "os-v1", work / "os-v2"
    for r in (r1, r2):
        if r.exists():
            shutil.rmtree(r)
    run(["debootstrap", "--variant=minbase", SUITE, r1, "http://deb.debian.org/debian"])
    run(["cp", "-a", r1, r2])
    # v2: the point release's updates and security fixes, plus a few packages
    (r2 / "etc/apt/sources.list").write_text(
        f"deb http://deb.debian.org/debian {SUITE} main\n"
        f"deb http://deb.debian.org/debian {SUITE}-updates main\n"
        f"deb http://deb.debian.org/debian-security {SUITE}-security main\n")
    shutil.copy("/etc/resolv.conf", r2 / "etc/resolv.conf")
    run(["mount", "-t", "proc", "proc", r2 / "proc"])
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["chroot", r2, "apt-get", "update"], env=env)
        run(["chroot", r2, "apt-get", "-y", "upgrade"], env=env)
        run(["chroot", r2, "apt-get", "-y", "install", "--no-install-recommends", *EXTRA_PACKAGES],
            env=env)
        run(["chroot", r2, "apt-get", "clean"], env=env)
    finally:
        run(["umount", r2 / "proc"])
    # as image builds do (debian:*-slim, `rm -rf /var/lib/apt/lists/*`): no package
    # indexes or downloaded .debs in the layer
    for r in (r1, r2):
        for d in (r / "var/lib/apt/lists", r / "var/cache/apt/archives"):
            for p in d.glob("*"):
                if p.is_file() and p.name != "lock":
                    p.unlink()
            for p in (d / "partial").glob("*"):
                p.unlink()
    make_tar(r1, v1)
    make_tar(r2, v2)
    shutil.rmtree(r1)
    shutil.rmtree(r2)
    return v1, v2


def build_os_upgrade(work, v1):
    """v1 + the point release's updates and security fixes only (no new packages)."""
    out = work / "os-v2u.tar"
    if out.exists():
        return out
    root = work / "os-v2u"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir()
    run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", root, "-xf", v1])
    (root / "etc/apt/sources.list").write_text(
        f"deb http://deb.debian.org/debian {SUITE} main\n"
        f"deb http://deb.debian.org/debian {SUITE}-updates main\n"
        f"deb http://deb.debian.org/debian-security {SUITE}-security main\n")
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    run(["mount", "-t", "proc", "proc", root / "proc"])
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["chroot", root, "apt-get", "update"], env=env)
        run(["chroot", root, "apt-get", "-y", "upgrade"], env=env)
        run(["chroot", root, "apt-get", "clean"], env=env)
    finally:
        run(["umount", root / "proc"])
    for d in (root / "var/lib/apt/lists", root / "var/cache/apt/archives"):
        for p in d.glob("*"):
            if p.is_file() and p.name != "lock":
                p.unlink()
    make_tar(root, out)
    shutil.rmtree(root)
    return out


APP_SRC = r'''
use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};

fn main() {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let stdin = io::stdin();
    for line in stdin.lock().lines() {
        let line = line.expect("read stdin");
        for word in line.split_whitespace() {
            *counts.entry(word.to_lowercase()).or_default() += 1;
        }
    }
    let mut out = io::stdout().lock();
    for (w, n) in &counts {
        writeln!(out, "{w}\t{n}").expect("write");
    }
    // VERSION LINE
}
'''


def build_app(work):
    """A Rust program built twice, the second time with a one-line change."""
    v1, v2, v3 = work / "app-v1.tar", work / "app-v2.tar", work / "app-v3.tar"
    if v1.exists() and v2.exists() and v3.exists():
        return v1, v2, v3
    src = work / "app-src"
    src.mkdir(exist_ok=True)
    roots = []
    for i, extra in enumerate(['eprintln!("wordcount 1.0");', 'eprintln!("wordcount 1.1: {} words", counts.len());']):
        (src / "main.rs").write_text(APP_SRC.replace("// VERSION LINE", extra))
        root = work / f"app-root{i}"
        if root.exists():
            shutil.rmtree(root)
        (root / "app/bin").mkdir(parents=True)
        (root / "app/etc").mkdir(parents=True)
        run(["rustc", "-O", "-C", "debuginfo=1", "--edition", "2021", "-o", root / "app/bin/wordcount",
             src / "main.rs"])
        (root / "app/etc/wordcount.conf").write_text("threads=4\nlocale=C.UTF-8\nmax_words=1000000\n")
        roots.append(root)
    make_tar(roots[0], v1)
    make_tar(roots[1], v2)
    # config only: v1's binary, one value changed
    (roots[0] / "app/etc/wordcount.conf").write_text("threads=8\nlocale=C.UTF-8\nmax_words=1000000\n")
    make_tar(roots[0], v3)
    for r in roots:
        shutil.rmtree(r)
    return v1, v2, v3


# ---------------------------------------------------------------------- measuring

TIMEOUT = 1200


def measure(cmd, stdout=None):
    """Runs cmd under /usr/bin/time; returns (seconds, peak RSS bytes) of cmd alone (a
    child forked from this python would inherit its RSS into ru_maxrss)."""
    rss_file = Path(f"/tmp/delta-bench-rss.{os.getpid()}")
    t0 = time.monotonic()
    out = open(stdout, "wb") if stdout else subprocess.DEVNULL
    try:
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(rss_file), *[str(c) for c in cmd]],
                           stdout=out, stderr=subprocess.PIPE, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{cmd[0]} took more than {TIMEOUT} s")
    finally:
        if stdout:
            out.close()
    secs = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited {p.returncode}: {p.stderr.decode(errors='replace')[-500:]}")
    rss_kib = int(rss_file.read_text().split()[-1])
    rss_file.unlink()
    return secs, rss_kib * 1024


def gz_size(path):
    with open(path, "rb") as f:
        return len(gzip.compress(f.read(), 6, mtime=0))


def tools(skiff):
    """name -> (create(base, target, delta) cmd list, apply(base, delta, out) -> (cmd, stdout),
    size(delta) -> bytes on the wire)."""
    if Path(skiff).name == "measure":
        # skiff-delta's measure example (a light release build): apply rebuilds into a sink
        # and verifies the result against the sha256 the delta records
        sk = (
            lambda b, t, d: [[skiff, "create", b, t, d]],
            lambda b, d, o: ([skiff, "apply", b, d], None),
            lambda d: os.path.getsize(d),
        )
    else:
        sk = (
            lambda b, t, d: [[skiff, "delta", "create", "--base", b, "--target", t, "-o", d]],
            lambda b, d, o: ([skiff, "delta", "apply", "--base", b, d, "-o", o], None),
            lambda d: os.path.getsize(d),
        )
    return {
        "skiff": sk,
        "rdiff -b 512 (balena), gz": (
            lambda b, t, d: [["rdiff", "-f", "-b", "512", "signature", b, f"{d}.sig"],
                             ["rdiff", "-f", "-b", "512", "delta", f"{d}.sig", t, d]],
            lambda b, d, o: (["rdiff", "-f", "patch", b, d, o], None),
            gz_size,
        ),
        "xdelta3 -9": (
            lambda b, t, d: [["xdelta3", "-9", "-f", "-e", "-s", b, t, d]],
            lambda b, d, o: (["xdelta3", "-f", "-d", "-s", b, d, o], None),
            lambda d: os.path.getsize(d),
        ),
        "zstd --patch-from -19 --long": (
            lambda b, t, d: [["zstd", "-q", "-f", "-19", "--long=31", f"--patch-from={b}", t, "-o", d]],
            lambda b, d, o: (["zstd", "-q", "-f", "-d", "--long=31", f"--patch-from={b}", d, "-o", o], None),
            lambda d: os.path.getsize(d),
        ),
        "bsdiff (whole tar)": (
            lambda b, t, d: [["bsdiff", b, t, d]],
            lambda b, d, o: (["bspatch", b, o, d], None),
            lambda d: os.path.getsize(d),
        ),
    }


def bench_pair(name, base, target, work, skiff, rounds, skip):
    res = {"pair": name, "target_size": os.path.getsize(target)}
    t0 = time.monotonic()
    res["full_gzip"] = gz_size(target)
    res["full_gzip_s"] = time.monotonic() - t0
    want = sha256(target)
    for tool, (create, apply, size) in tools(skiff).items():
        if any(s in tool for s in skip):
            continue
        d, o = work / f"{name}.delta", work / f"{name}.out"
        runs = []
        try:
            for _ in range(rounds):
                c_s, c_rss = 0.0, 0
                for cmd in create(base, target, d):
                    s, rss = measure(cmd)
                    c_s, c_rss = c_s + s, max(c_rss, rss)
                acmd, aout = apply(base, d, o)
                a_s, a_rss = measure(acmd, aout)
                self_checked = tool == "skiff" and Path(skiff).name == "measure"
                if not self_checked and sha256(o) != want:
                    raise RuntimeError(f"{tool} did not rebuild {name} byte for byte")
                runs.append((c_s, c_rss, a_s, a_rss))
            res[tool] = {
                "size": size(d),
                "create_s": statistics.median(r[0] for r in runs),
                "create_rss": max(r[1] for r in runs),
                "apply_s": statistics.median(r[2] for r in runs),
                "apply_rss": max(r[3] for r in runs),
            }
        except (RuntimeError, OSError) as e:
            res[tool] = {"error": str(e)[:300]}
        finally:
            for p in (d, o, Path(f"{d}.sig")):
                if p.exists():
                    p.unlink()
        log(name, tool, res[tool])
    return res


def human(n):
    for unit in ["B", "KiB", "MiB", "GiB"]:
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def table(results):
    lines = []
    for r in results:
        lines.append(f"\n**{r['pair']}**: target layer {human(r['target_size'])}, "
                     f"full pull (gzip -6) {human(r['full_gzip'])}\n")
        lines.append("| method | size | vs full pull | vs rdiff | create | create RSS | apply | apply RSS | apply MB/s |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
        rd = r.get("rdiff -b 512 (balena), gz", {}).get("size")
        for tool in tools("skiff"):
            m = r.get(tool)
            if m is None:
                continue
            if "error" in m:
                lines.append(f"| {tool} | failed: {m['error'][:80]} | | | | | | | |")
                continue
            size = max(m["size"], 1)
            mbs = r["target_size"] / max(m["apply_s"], 1e-6) / 1e6
            vs_rd = f"{rd / size:.1f}x smaller" if rd else "-"
            lines.append(
                f"| {tool} | {human(m['size'])} | {r['full_gzip'] / size:.1f}x smaller | {vs_rd} | "
                f"{m['create_s']:.2f} s | {human(m['create_rss'])} | {m['apply_s']:.2f} s | "
                f"{human(m['apply_rss'])} | {mbs:.0f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workdir", default="/var/tmp/skiff-bench/delta")
    ap.add_argument("--skiff", default=None,
                    help="skiff binary, or skiff-delta's `measure` example (default: target/release/skiff)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma-separated tool names to skip (e.g. bsdiff)")
    ap.add_argument("--pairs", default="os,os-upgrade,app,config")
    ap.add_argument("--corpus-only", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("delta-bench: run as root (debootstrap, chroot)")
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    pairs = a.pairs.split(",")
    corpus = {}
    if "os" in pairs or "os-upgrade" in pairs:
        v1, v2 = build_os(work)
        corpus["os"] = (v1, v2)
        if "os-upgrade" in pairs:
            corpus["os-upgrade"] = (v1, build_os_upgrade(work, v1))
    if "app" in pairs or "config" in pairs:
        v1, v2, v3 = build_app(work)
        corpus["app"] = (v1, v2)
        corpus["config"] = (v1, v3)
    if a.corpus_only:
        return
    root = Path(__file__).resolve().parents[2]
    skiff = a.skiff or os.environ.get("SKIFF_BIN") or str(
        Path(os.environ.get("CARGO_TARGET_DIR", root / "target")) / "release/skiff")
    if not Path(skiff).is_file():
        sys.exit(f"delta-bench: {skiff} is missing; cargo build --release -p skiff or pass --skiff")
    skip = [s for s in a.skip.split(",") if s]
    results = [bench_pair(p, *corpus[p], work, skiff, a.rounds, skip) for p in pairs if p in corpus]
    (work / "delta-bench.json").write_text(json.dumps(results, indent=2))
    print(table(results))


if __name__ == "__main__":
    main()
