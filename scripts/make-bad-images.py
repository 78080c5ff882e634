#!/usr/bin/env python3
"""Upload crafted bad images to a registry through its v2 HTTP API (stdlib only).

    scripts/make-bad-images.py --registry 127.0.0.1:PORT [--sentinel-dir DIR]
        [--registry-dir DIR] [--bomb-size BYTES] [--user U --password P] [--prefix NAME]

Prints a JSON map case -> reference (HOST/PREFIX/CASE:latest) on stdout. Every case is one
image whose manifest the registry accepts; what is wrong is inside (layer tar, compression,
config, descriptors). Cases that need to rewrite the registry's filesystem storage after the
upload (the registry verifies digests on upload, so a mismatching blob cannot be pushed)
are made only with --registry-dir, the registry's `storage.filesystem.rootdirectory`.

Escape attempts aim at --sentinel-dir (default /tmp/skiff-sentinel): an engine that lets a
layer escape creates files there, or changes the file `sentinel` in it. Tests keep that
directory outside the data root and check it afterwards. See docs/testing.md.
"""

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.error
import urllib.request
import zlib

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_TAR = "application/vnd.oci.image.layer.v1.tar"
MT_GZIP = MT_TAR + "+gzip"
# Enough ".." to climb from any data root to "/": extra ".." at "/" stay at "/".
UP = "../" * 64
MTIME = 1704067200


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- tar helpers


def _info(name, kind=tarfile.REGTYPE, size=0, mode=0o644, linkname=""):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.size = size
    ti.mode = mode
    ti.mtime = MTIME
    ti.linkname = linkname
    return ti


def make_tar(entries):
    """entries: list of (name, kind, content-bytes-or-linkname). Names are written as given
    (tarfile does not strip "/" or ".." on write)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, arg in entries:
            if kind == "file":
                data = arg
                tf.addfile(_info(name, size=len(data)), io.BytesIO(data))
            elif kind == "dir":
                tf.addfile(_info(name, tarfile.DIRTYPE, mode=0o755))
            elif kind == "symlink":
                tf.addfile(_info(name, tarfile.SYMTYPE, mode=0o777, linkname=arg))
            elif kind == "hardlink":
                tf.addfile(_info(name, tarfile.LNKTYPE, linkname=arg))
            else:
                raise ValueError(kind)
    return buf.getvalue()


def gz(data):
    return gzip.compress(data, compresslevel=6, mtime=0)


def pseudo_random(n):
    """Deterministic incompressible bytes (so truncation lands mid-stream)."""
    out = bytearray()
    block = b"skiff"
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def zero_bomb(size):
    """A gzip'd tar holding one file of `size` zero bytes, built without compressing all of
    it: after a full flush, deflate's output for another 1 MiB of zeros is always the same
    bytes, so it is repeated. Returns (gzip bytes, diff_id of the tar)."""
    header = _info("bomb", size=size).tobuf(tarfile.PAX_FORMAT)
    pad = (512 - size % 512) % 512
    total = len(header) + size + pad + 1024  # tar ends with two zero blocks
    zeros_after_header = total - len(header)
    chunk = 1 << 20
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate; gzip framing by hand
    first = comp.compress(header) + comp.flush(zlib.Z_FULL_FLUSH)
    body = bytearray(first)
    z = bytes(chunk)
    full, rest = divmod(zeros_after_header, chunk)
    if full >= 2:
        a = comp.compress(z) + comp.flush(zlib.Z_FULL_FLUSH)
        b = comp.compress(z) + comp.flush(zlib.Z_FULL_FLUSH)
        if a != b:
            raise RuntimeError("deflate output for equal chunks differs; cannot build the bomb")
        body += a * full
    else:
        for _ in range(full):
            body += comp.compress(z) + comp.flush(zlib.Z_FULL_FLUSH)
    body += comp.compress(bytes(rest)) + comp.flush(zlib.Z_FINISH)
    # CRC-32 and SHA-256 of the whole tar stream
    crc = zlib.crc32(header)
    h = hashlib.sha256(header)
    left = zeros_after_header
    while left:
        n = min(chunk, left)
        piece = z if n == chunk else bytes(n)
        crc = zlib.crc32(piece, crc)
        h.update(piece)
        left -= n
    gzip_header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = crc.to_bytes(4, "little") + (total & 0xFFFFFFFF).to_bytes(4, "little")
    return gzip_header + bytes(body) + trailer, "sha256:" + h.hexdigest()


# --------------------------------------------------------------------------- registry client


class Registry:
    def __init__(self, hostport, user=None, password=None):
        self.base = "http://" + hostport
        self.hostport = hostport
        self.auth = None
        if user is not None:
            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            self.auth = "Basic " + token

    def request(self, method, url, body=None, headers=None):
        if not url.startswith("http"):
            url = self.base + url
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        if self.auth:
            req.add_header("Authorization", self.auth)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")
            raise RuntimeError(f"{method} {url} failed: {e.code} {detail}") from None

    def put_blob(self, repo, data):
        digest = sha256(data)
        _, headers, _ = self.request("POST", f"/v2/{repo}/blobs/uploads/", b"")
        location = headers.get("Location")
        if not location:
            raise RuntimeError("registry gave no upload Location")
        if location.startswith("/"):
            location = self.base + location
        sep = "&" if "?" in location else "?"
        self.request(
            "PUT",
            f"{location}{sep}digest={digest}",
            data,
            {"Content-Type": "application/octet-stream"},
        )
        return {"digest": digest, "size": len(data)}

    def put_manifest(self, repo, tag, body, media_type=MT_MANIFEST):
        self.request("PUT", f"/v2/{repo}/manifests/{tag}", body, {"Content-Type": media_type})
        return sha256(body)


def blob_data_path(registry_dir, digest):
    hexd = digest.split(":", 1)[1]
    return os.path.join(
        registry_dir, "docker", "registry", "v2", "blobs", "sha256", hexd[:2], hexd, "data"
    )


# --------------------------------------------------------------------------- image assembly


def config_json(diff_ids, media_note=""):
    return {
        "created": "2024-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"], "Labels": {"org.skiff.test.bad": media_note}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


class Builder:
    def __init__(self, reg, prefix):
        self.reg = reg
        self.prefix = prefix
        self.refs = {}

    def push(
        self,
        case,
        layers,
        config=None,
        config_mt=MT_CONFIG,
        manifest_override=None,
    ):
        """layers: list of (blob bytes, media type, diff_id). Returns (repo, manifest)."""
        repo = f"{self.prefix}/{case}"
        descs = []
        for blob, mt, _ in layers:
            d = self.reg.put_blob(repo, blob)
            descs.append({"mediaType": mt, **d})
        if config is None:
            config = dumps(config_json([diff for _, _, diff in layers], case))
        cdesc = {"mediaType": config_mt, **self.reg.put_blob(repo, config)}
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": cdesc,
            "layers": descs,
        }
        body = manifest_override(manifest) if manifest_override else dumps(manifest)
        self.reg.put_manifest(repo, "latest", body)
        self.refs[case] = f"{self.reg.hostport}/{repo}:latest"
        return repo, manifest

    def push_tar(self, case, entries):
        tar = make_tar(entries)
        return self.push(case, [(gz(tar), MT_GZIP, sha256(tar))])


def build_all(args):
    reg = Registry(args.registry, args.user, args.password)
    b = Builder(reg, args.prefix)
    sdir = args.sentinel_dir.rstrip("/")
    rel_sdir = UP + sdir.lstrip("/")
    ok = ("ok.txt", "file", b"fine\n")

    # path escapes
    b.push_tar("dotdot", [ok, (rel_sdir + "/escaped-dotdot", "file", b"escaped\n")])
    b.push_tar("absolute", [ok, (sdir + "/escaped-absolute", "file", b"escaped\n")])
    b.push_tar(
        "symlink-parent-abs",
        [ok, ("evil", "symlink", sdir), ("evil/escaped-symlink-parent-abs", "file", b"x\n")],
    )
    b.push_tar(
        "symlink-parent-rel",
        [ok, ("evil", "symlink", rel_sdir), ("evil/escaped-symlink-parent-rel", "file", b"x\n")],
    )
    b.push_tar(
        "hardlink-outside",
        [
            ok,
            ("h", "hardlink", rel_sdir + "/sentinel"),
            ("h", "file", b"escaped through a hardlink\n"),
        ],
    )
    b.push_tar("hardlink-missing", [ok, ("h", "hardlink", "does/not/exist")])
    b.push_tar(
        "symlink-then-dir",
        [
            ok,
            ("evil", "symlink", sdir),
            ("evil", "dir", None),
            ("evil/escaped-symlink-then-dir", "file", b"x\n"),
        ],
    )
    b.push_tar(
        "symlink-then-file",
        [ok, ("evil", "symlink", sdir + "/sentinel"), ("evil", "file", b"escaped\n")],
    )

    # broken streams
    big = make_tar([ok, ("random.bin", "file", pseudo_random(256 * 1024))])
    full = gz(big)
    b.push("truncated-gzip", [(full[: len(full) // 2], MT_GZIP, sha256(big))])
    bomb, bomb_diff = zero_bomb(args.bomb_size)
    b.push("bomb", [(bomb, MT_GZIP, bomb_diff)])

    # malformed or unexpected metadata
    small = make_tar([ok])
    small_layer = (gz(small), MT_GZIP, sha256(small))

    def invalid_utf8(m):
        # JSON must be UTF-8; the registry (Go) accepts and stores these bytes anyway.
        m = dict(m, annotations={"note": "BAD"})
        return dumps(m).replace(b"BAD", b"\xff\xfe bad utf-8")

    b.push("manifest-invalid-utf8", [small_layer], manifest_override=invalid_utf8)

    def wrong_case(m):
        # Go's decoder matches keys case-insensitively, so the registry accepts this; the
        # OCI spec's keys are case-sensitive and schemaVersion/config/layers are missing.
        return dumps({"SchemaVersion": 2, "MediaType": m["mediaType"],
                      "Config": m["config"], "Layers": m["layers"]})

    b.push("manifest-wrong-case-keys", [small_layer], manifest_override=wrong_case)

    def config_size_wrong(m):
        m = json.loads(dumps(m))
        m["config"]["size"] += 7
        return dumps(m)

    b.push("manifest-config-size-wrong", [small_layer], manifest_override=config_size_wrong)
    b.push(
        "unknown-layer-mediatype",
        [(small_layer[0], "application/vnd.example.unknown.layer.v1+weird", small_layer[2])],
    )
    b.push(
        "unknown-config-mediatype",
        [small_layer],
        config_mt="application/vnd.example.not-an-image.config.v1+json",
    )
    b.push("config-malformed", [small_layer], config=b'{"architecture":"amd64","os":"linux","rootfs":')
    b.push(
        "config-diffid-mismatch",
        [small_layer],
        config=dumps(config_json([sha256(b"not the layer")], "config-diffid-mismatch")),
    )
    b.push(
        "config-too-few-diffids",
        [small_layer, small_layer],
        config=dumps(config_json([small_layer[2]], "config-too-few-diffids")),
    )

    # cases that rewrite the registry's storage after a good upload
    if args.registry_dir:
        # Change the gzip header's MTIME bytes: the stream still decompresses to the same
        # tar, so only a digest check can notice.
        tar = make_tar([ok, ("layer-digest-mismatch.txt", "file", b"x\n")])
        blob = gz(tar)
        _, m = b.push("layer-digest-mismatch", [(blob, MT_GZIP, sha256(tar))])
        # Same length: the registry may serve the size it recorded at upload.
        corrupt(args.registry_dir, m["layers"][0]["digest"], lambda d: d[:4] + b"\x01\x02\x03\x04" + d[8:])
        # A manifest whose stored bytes (still valid JSON) no longer hash to its digest.
        _, m = b.push("manifest-digest-mismatch", [small_layer])
        corrupt(args.registry_dir, sha256(dumps(m)), lambda d: b"{ " + d[1:])

    return b.refs


def corrupt(registry_dir, digest, change):
    """Rewrite a stored blob's data file in place with change(old bytes)."""
    path = blob_data_path(registry_dir, digest)
    if not os.path.isfile(path):
        raise RuntimeError(f"blob {digest} not found at {path}; is --registry-dir the "
                           "registry's storage.filesystem.rootdirectory?")
    with open(path, "rb") as f:
        old = f.read()
    with open(path, "wb") as f:
        f.write(change(old))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--registry", required=True, help="HOST:PORT of a plain-HTTP registry")
    p.add_argument("--sentinel-dir", default="/tmp/skiff-sentinel",
                   help="absolute directory escape attempts aim at")
    p.add_argument("--registry-dir", help="registry filesystem root; enables blob corruption cases")
    p.add_argument("--bomb-size", type=int, default=2 << 30,
                   help="bytes of zeros in the decompression bomb (default 2 GiB)")
    p.add_argument("--prefix", default="skiff-bad", help="repository name prefix")
    p.add_argument("--user")
    p.add_argument("--password")
    args = p.parse_args()
    if not os.path.isabs(args.sentinel_dir):
        p.error("--sentinel-dir must be absolute")
    if args.bomb_size < 0:
        p.error("--bomb-size must not be negative")
    try:
        refs = build_all(args)
    except (RuntimeError, OSError, urllib.error.URLError) as e:
        print(f"make-bad-images: {e}", file=sys.stderr)
        return 1
    json.dump(refs, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
