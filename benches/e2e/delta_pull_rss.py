#!/usr/bin/env python3
"""Peak RSS of a skiff daemon applying a delta image during `docker pull`, on the
os-upgrade pair of delta-bench.sh (run that first: it builds the corpus).

    benches/e2e/delta_pull_rss.py [SKIFF_BIN] [MEASURE_BIN]

Builds an OCI layout with v1 (os-v1.tar), v2 (os-v2u.tar) and a delta image v1 -> v2 made
by skiff-delta's `measure` example (labels as POST /images/delta writes them), pushes it to
a private docker-registry on 127.0.0.1, has a fresh daemon pull v1, restarts it (so VmHWM
covers the delta pull alone) and pulls the delta. Prints one JSON line: delta size, pull
time, the daemon's VmHWM when idle and after the pull, and whether the image ID is v2's.
Root; Debian packages docker-registry, skopeo; the docker CLI."""
import gzip, hashlib, json, os, shutil, subprocess, sys, time, tarfile, io
C = os.environ.get("SKIFF_DELTA_WORKDIR", "/var/tmp/skiff-bench/delta")
W = C + "/daemon"
os.makedirs(W, exist_ok=True)
SKIFF = sys.argv[1] if len(sys.argv) > 1 else "target/release/skiff"
MEASURE = sys.argv[2] if len(sys.argv) > 2 else "target/release/examples/measure"
PORT = 45123
def sh(*a, **kw):
    print("+", *a, file=sys.stderr, flush=True); return subprocess.run([str(x) for x in a], check=True, **kw)
def sha(b): return "sha256:" + hashlib.sha256(b).hexdigest()
def fsha(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for c in iter(lambda: f.read(1 << 20), b""): h.update(c)
    return "sha256:" + h.hexdigest()
lay = W + "/layout"
shutil.rmtree(lay, ignore_errors=True); os.makedirs(lay + "/blobs/sha256")
open(lay + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
def put(b, mt):
    d = sha(b); open(f"{lay}/blobs/sha256/{d[7:]}", "wb").write(b)
    return {"mediaType": mt, "digest": d, "size": len(b)}
def putfile(p, mt):
    d = fsha(p); shutil.copy(p, f"{lay}/blobs/sha256/{d[7:]}")
    return {"mediaType": mt, "digest": d, "size": os.path.getsize(p)}
manifests = []
def image(tag, config, layer_descs):
    c = put(config, "application/vnd.oci.image.config.v1+json")
    m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": c, "layers": layer_descs}).encode()
    d = put(m, "application/vnd.oci.image.manifest.v1+json"); d["annotations"] = {"org.opencontainers.image.ref.name": tag}
    manifests.append(d)
def cfg(diff_ids, labels=None):
    c = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z", "config": {"Cmd": ["/bin/sh"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    if labels: c["config"]["Labels"] = labels
    return json.dumps(c).encode()
for name in ["os-v1", "os-v2u"]:
    gz = f"{W}/{name}.tar.gz"
    if not os.path.exists(gz): sh("sh", "-c", f"gzip -6 -n -c {C}/{name}.tar > {gz}")
v1_cfg = cfg([fsha(f"{C}/os-v1.tar")]); v2_cfg = cfg([fsha(f"{C}/os-v2u.tar")])
image("v1", v1_cfg, [putfile(f"{W}/os-v1.tar.gz", "application/vnd.oci.image.layer.v1.tar+gzip")])
image("v2", v2_cfg, [putfile(f"{W}/os-v2u.tar.gz", "application/vnd.oci.image.layer.v1.tar+gzip")])
if not os.path.exists(f"{W}/os.delta"): sh(MEASURE, "create", f"{C}/os-v1.tar", f"{C}/os-v2u.tar", f"{W}/os.delta", stdout=subprocess.DEVNULL)
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
    ti = tarfile.TarInfo("delta"); ti.size = os.path.getsize(f"{W}/os.delta"); ti.mode = 0o600
    t.addfile(ti, open(f"{W}/os.delta", "rb"))
dl = buf.getvalue()
labels = {"io.resin.delta.base": sha(v1_cfg), "io.resin.delta.config": v2_cfg.decode(), "io.skiff.delta.version": "1"}
image("delta", cfg([sha(dl)], labels), [put(gzip.compress(dl, 6, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip")])
open(lay + "/index.json", "w").write(json.dumps({"schemaVersion": 2, "manifests": manifests}))
reg = W + "/registry"; shutil.rmtree(reg, ignore_errors=True); os.makedirs(reg + "/storage")
open(reg + "/config.yml", "w").write(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {reg}/storage\nhttp:\n  addr: 127.0.0.1:{PORT}\n")
r = subprocess.Popen(["docker-registry", "serve", reg + "/config.yml"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(1)
dm = None
try:
    for t in ["v1", "v2", "delta"]:
        sh("skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{lay}:{t}", f"docker://127.0.0.1:{PORT}/os:{t}")
    root = W + "/d"; shutil.rmtree(root, ignore_errors=True); os.makedirs(root)
    sock = root + "/s.sock"
    env = dict(os.environ, DOCKER_HOST="unix://" + sock)
    def start():
        p = subprocess.Popen([SKIFF, "daemon", "--data-root", root + "/data", "--exec-root", root + "/exec", "-H", "unix://" + sock, "--insecure-registry", f"127.0.0.1:{PORT}"], stdout=subprocess.DEVNULL, stderr=open(root + "/log", "a"))
        for _ in range(100):
            if subprocess.run(["docker", "version"], env=env, capture_output=True).returncode == 0: break
            time.sleep(0.1)
        return p
    def hwm(p):
        for l in open(f"/proc/{p.pid}/status"):
            if l.startswith("VmHWM"): return int(l.split()[1])
    dm = start(); sh("docker", "pull", "-q", f"127.0.0.1:{PORT}/os:v1", env=env); dm.terminate(); dm.wait()
    dm = start(); idle = hwm(dm)
    t0 = time.monotonic(); sh("docker", "pull", "-q", f"127.0.0.1:{PORT}/os:delta", env=env); secs = time.monotonic() - t0
    peak = hwm(dm)
    out = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", f"127.0.0.1:{PORT}/os:delta"], env=env, capture_output=True, text=True).stdout.strip()
    # for comparison: a full pull of v2 on a restarted daemon (after removing the delta's result)
    sh("docker", "rmi", "-f", f"127.0.0.1:{PORT}/os:delta", env=env, stdout=subprocess.DEVNULL)
    dm.terminate(); dm.wait()
    dm = start()
    t1 = time.monotonic(); sh("docker", "pull", "-q", f"127.0.0.1:{PORT}/os:v2", env=env); full_s = time.monotonic() - t1
    full_peak = hwm(dm)
    print(json.dumps({"delta_bytes": os.path.getsize(f"{W}/os.delta"), "target_tar": os.path.getsize(f"{C}/os-v2u.tar"), "pull_s": secs, "daemon_idle_hwm_kib": idle, "daemon_peak_kib": peak, "id_ok": out == sha(v2_cfg), "id": out, "full_pull_s": full_s, "full_pull_peak_kib": full_peak}))
finally:
    if dm: dm.terminate(); dm.wait()
    r.terminate(); r.wait()
