#!/usr/bin/env bash
# Build the pull-benchmark image: a Debian bookworm minbase root filesystem (~200 MB
# uncompressed) split into four gzip layers, as an OCI image layout; optionally push it.
#
#   benches/e2e/build-bench-image.sh OUTDIR [REGISTRY_HOSTPORT]
#
# Writes OUTDIR/bench-image (OCI layout, tag "v1") and OUTDIR/bench-image.json (layer
# digests, compressed and uncompressed sizes). A layout already built from the same root
# filesystem is reused. With REGISTRY_HOSTPORT the image is pushed (plain HTTP, digests
# unchanged) to REGISTRY_HOSTPORT/skiff-bench/minbase:v1.
#
# The root filesystem comes from SKIFF_BENCH_ROOTFS (default /var/tmp/skiff-bench/rootfs-v1)
# and is made with `debootstrap --variant=minbase bookworm` when missing. Layers are written
# by hand (GNU tar + gzip + jq + sha256sum), as scripts/build-test-images.sh does: sorted
# entries and `gzip -n` make the digests repeatable. Needs root (file owners).
set -euo pipefail
shopt -s inherit_errexit
export LC_ALL=C

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 OUTDIR [REGISTRY_HOSTPORT]" >&2
    exit 2
fi
for tool in tar gzip jq sha256sum; do
    command -v "$tool" >/dev/null || { echo "$0: $tool is missing; install it with apt" >&2; exit 1; }
done
if [[ $(id -u) -ne 0 ]]; then
    echo "$0: run as root (the root filesystem has root-owned and setuid files)" >&2
    exit 1
fi

OUTDIR=$1
REGISTRY=${2:-}
ROOTFS=${SKIFF_BENCH_ROOTFS:-/var/tmp/skiff-bench/rootfs-v1}
NAME=skiff-bench/minbase
TAG=v1

if [[ ! -x $ROOTFS/usr/bin/apt-get ]]; then
    command -v debootstrap >/dev/null || { echo "$0: debootstrap is missing; apt-get install debootstrap" >&2; exit 1; }
    echo "building $ROOTFS with debootstrap (a few minutes)" >&2
    rm -rf "$ROOTFS.partial"
    debootstrap --variant=minbase bookworm "$ROOTFS.partial" >&2
    mv "$ROOTFS.partial" "$ROOTFS"
fi

mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
LAYOUT=$OUTDIR/bench-image
SUMMARY=$OUTDIR/bench-image.json
# Rebuild only when the root filesystem changed: its path and the newest mtime in it.
stamp="$ROOTFS $(find "$ROOTFS" -xdev -printf '%T@\n' | sort -n | tail -1)"
if [[ -f $LAYOUT/index.json && -f $SUMMARY && $(jq -r .stamp "$SUMMARY") == "$stamp" ]]; then
    echo "reusing $LAYOUT" >&2
else
    WORK=$(mktemp -d "$OUTDIR/.build.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
    L=$WORK/bench-image
    mkdir -p "$L/blobs/sha256"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$L/oci-layout"
    MT_TAR=application/vnd.oci.image.layer.v1.tar+gzip

    sha256() { sha256sum "$1" | cut -d' ' -f1; }
    put_blob() { # FILE MEDIATYPE -> descriptor JSON
        local hex size
        hex=$(sha256 "$1")
        size=$(stat -c %s "$1")
        mv "$1" "$L/blobs/sha256/$hex"
        jq -cn --arg mt "$2" --arg d "sha256:$hex" --argjson s "$size" '{mediaType: $mt, digest: $d, size: $s}'
    }
    put_json() { # MEDIATYPE JSON -> descriptor JSON
        local f
        f=$(mktemp "$WORK/json.XXXXXX")
        jq -c . <<<"$2" >"$f"
        put_blob "$f" "$1"
    }

    # make_layer NAME: tar the paths listed in $WORK/NAME.list (relative to ROOTFS, one per
    # line, sorted) -> "DIFF_ID TARSIZE DESCRIPTOR".
    make_layer() {
        local tarfile=$WORK/$1.tar diff_id tar_size
        tar -C "$ROOTFS" --create --file "$tarfile" --no-recursion --files-from "$WORK/$1.list" \
            --format=posix --pax-option='exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime' \
            --numeric-owner
        diff_id=sha256:$(sha256 "$tarfile")
        tar_size=$(stat -c %s "$tarfile")
        gzip -n -6 "$tarfile"
        echo "$diff_id $tar_size $(put_blob "$tarfile.gz" "$MT_TAR")"
    }
    # list NAME PATH...: each PATH with everything below it, plus /usr as a real layer has it.
    list() {
        local name=$1
        shift
        (cd "$ROOTFS" && { echo usr; find "$@" -xdev; }) | sort -u >"$WORK/$name.list"
    }

    # Layer 1: everything but the big /usr subtrees (var holds the apt cache and lists);
    # dev, proc and sys as bare directories. Then usr/lib, usr/share, usr/bin + usr/sbin.
    (cd "$ROOTFS" && find . -mindepth 1 -xdev \( -path ./usr/lib -o -path ./usr/share \
        -o -path ./usr/bin -o -path ./usr/sbin -o -path './dev/*' -o -path './proc/*' \
        -o -path './sys/*' \) -prune -o -print | sed 's,^\./,,' | sort) >"$WORK/base.list"
    list usr-lib usr/lib
    list usr-share usr/share
    list usr-bin usr/bin usr/sbin
    lines=()
    for name in base usr-lib usr-share usr-bin; do
        lines+=("$(make_layer "$name")")
        echo "layer $name: $(cut -d' ' -f2 <<<"${lines[-1]}") bytes uncompressed" >&2
    done

    diff_ids='[]' layers='[]' sizes='[]'
    for line in "${lines[@]}"; do
        read -r d s desc <<<"$line"
        diff_ids=$(jq -c --arg d "$d" '. + [$d]' <<<"$diff_ids")
        sizes=$(jq -c --argjson s "$s" '. + [$s]' <<<"$sizes")
        layers=$(jq -c --argjson l "$desc" '. + [$l]' <<<"$layers")
    done
    config=$(jq -cn --argjson ids "$diff_ids" '{
        created: "2024-01-01T00:00:00Z", architecture: "amd64", os: "linux",
        config: {Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                 Cmd: ["bash"], Labels: {"org.skiff.bench.image": "minbase"}},
        rootfs: {type: "layers", diff_ids: $ids},
        history: [$ids[] | {created: "2024-01-01T00:00:00Z", created_by: "build-bench-image.sh"}]}')
    cdesc=$(put_json application/vnd.oci.image.config.v1+json "$config")
    manifest=$(jq -cn --argjson c "$cdesc" --argjson l "$layers" \
        '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: $c, layers: $l}')
    mdesc=$(put_json application/vnd.oci.image.manifest.v1+json "$manifest")
    jq -cn --argjson d "$mdesc" --arg tag "$TAG" '{schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [$d + {annotations: {"org.opencontainers.image.ref.name": $tag}}]}' >"$L/index.json"
    content_size=$(du -sb --apparent-size "$ROOTFS" | cut -f1)
    jq -n --arg stamp "$stamp" --arg name "$NAME:$TAG" --argjson m "$mdesc" --argjson l "$layers" \
        --argjson ids "$diff_ids" --argjson sizes "$sizes" --argjson content "$content_size" '{
        stamp: $stamp, name: $name, manifest: $m.digest, layers: $l, diff_ids: $ids,
        tar_sizes: $sizes, uncompressed_bytes: ($sizes | add),
        compressed_bytes: ([$l[].size] | add), rootfs_apparent_bytes: $content}' >"$WORK/summary.json"
    rm -rf "$LAYOUT"
    mv "$L" "$LAYOUT"
    mv "$WORK/summary.json" "$SUMMARY"
    echo "built $LAYOUT: $(jq -r '"\(.layers | length) layers, \(.uncompressed_bytes) bytes uncompressed, \(.compressed_bytes) gzip"' "$SUMMARY")" >&2
fi

if [[ -n $REGISTRY ]]; then
    command -v skopeo >/dev/null || { echo "$0: skopeo is missing; apt-get install skopeo" >&2; exit 1; }
    skopeo --policy <(echo '{"default":[{"type":"insecureAcceptAnything"}]}') copy --quiet \
        --preserve-digests --dest-tls-verify=false \
        "oci:$LAYOUT:$TAG" "docker://$REGISTRY/$NAME:$TAG"
    echo "pushed $REGISTRY/$NAME:$TAG" >&2
fi
