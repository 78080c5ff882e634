#!/usr/bin/env bash
# Build skiff's test images as OCI image layouts, from Debian's busybox-static only.
#
#   scripts/build-test-images.sh OUTDIR
#
# Writes OUTDIR/{single,multi,zstd,multiarch} (each an OCI layout, tag "latest") and
# OUTDIR/images.json (what was built: digests, layers, media types). See docs/testing.md.
#
# Layouts are written by hand (GNU tar + jq + sha256sum) rather than with umoci: umoci 0.4
# cannot write zstd or uncompressed layers nor opaque whiteouts on demand, and hand-written
# layers are byte-for-byte reproducible (fixed mtimes, sorted entries, gzip -n), so running
# the script twice yields the same digests. Needs root (file owners, setuid bits).
set -euo pipefail
shopt -s inherit_errexit
export LC_ALL=C

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
for tool in tar gzip zstd jq sha256sum python3; do
    command -v "$tool" >/dev/null || { echo "$0: $tool is missing; install it with apt" >&2; exit 1; }
done
BUSYBOX=${BUSYBOX:-/bin/busybox}
if ! file_out=$("$BUSYBOX" --help 2>&1) || [[ $file_out != *BusyBox* ]]; then
    echo "$0: $BUSYBOX is not a working busybox; apt-get install busybox-static" >&2
    exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "$0: run as root (layers carry uid 1000 files and a setuid file)" >&2
    exit 1
fi

OUTDIR=$1
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
WORK=$(mktemp -d "$OUTDIR/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

EPOCH=1704067200 # 2024-01-01T00:00:00Z: fixed, so digests are reproducible
CREATED=2024-01-01T00:00:00Z
MT_MANIFEST=application/vnd.oci.image.manifest.v1+json
MT_INDEX=application/vnd.oci.image.index.v1+json
MT_CONFIG=application/vnd.oci.image.config.v1+json
MT_TAR=application/vnd.oci.image.layer.v1.tar

sha256() { sha256sum "$1" | cut -d' ' -f1; }

# new_layout DIR: an empty OCI image layout.
new_layout() {
    mkdir -p "$1/blobs/sha256"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$1/oci-layout"
}

# put_blob LAYOUT FILE MEDIATYPE: store FILE as a blob, print its descriptor JSON.
put_blob() {
    local hex size
    hex=$(sha256 "$2")
    size=$(stat -c %s "$2")
    cp "$2" "$1/blobs/sha256/$hex"
    jq -cn --arg mt "$3" --arg d "sha256:$hex" --argjson s "$size" \
        '{mediaType: $mt, digest: $d, size: $s}'
}

# put_json LAYOUT MEDIATYPE JSON: store compact JSON as a blob, print its descriptor.
put_json() {
    local f
    f=$(mktemp "$WORK/json.XXXXXX")
    jq -c . <<<"$3" >"$f"
    put_blob "$1" "$f" "$2"
}

# make_layer LAYOUT STAGEDIR COMPRESSION: tar STAGEDIR (entries without a "./" prefix,
# sorted, fixed mtime, numeric owners as staged, user.* xattrs), compress it (gzip, zstd or
# none), store it; print "DIFF_ID DESCRIPTOR".
make_layer() {
    local layout=$1 dir=$2 comp=$3 tarfile diff_id blob mt
    tarfile=$(mktemp "$WORK/layer.XXXXXX")
    (cd "$dir" && find . -mindepth 1 | sed 's,^\./,,' | sort) |
        tar -C "$dir" --create --file "$tarfile" --no-recursion --files-from - \
            --format=posix --pax-option='exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime' \
            --numeric-owner --mtime="@$EPOCH" --xattrs --xattrs-include='user.*'
    diff_id=sha256:$(sha256 "$tarfile")
    case $comp in
        gzip) gzip -n -9 -c "$tarfile" >"$tarfile.c"; mt=$MT_TAR+gzip ;;
        zstd) zstd -q -19 -c "$tarfile" >"$tarfile.c"; mt=$MT_TAR+zstd ;;
        none) cp "$tarfile" "$tarfile.c"; mt=$MT_TAR ;;
        *) echo "$0: unknown compression $comp" >&2; return 1 ;;
    esac
    blob=$(put_blob "$layout" "$tarfile.c" "$mt")
    echo "$diff_id $blob"
}

# make_image LAYOUT ARCH VARIANT NAME LAYERLINE...: write config and manifest for the
# layers (lines from make_layer); print the manifest descriptor with its platform.
make_image() {
    local layout=$1 arch=$2 variant=$3 name=$4
    shift 4
    local diff_ids='[]' layers='[]' history='[]' line i=0
    for line in "$@"; do
        i=$((i + 1))
        diff_ids=$(jq -c --arg d "${line%% *}" '. + [$d]' <<<"$diff_ids")
        layers=$(jq -c --argjson l "${line#* }" '. + [$l]' <<<"$layers")
        history=$(jq -c --arg c "$CREATED" --arg by "build-test-images.sh: $name layer $i" \
            '. + [{created: $c, created_by: $by}]' <<<"$history")
    done
    local config cdesc manifest
    config=$(jq -cn --arg c "$CREATED" --arg arch "$arch" --arg v "$variant" --arg name "$name" \
        --argjson ids "$diff_ids" --argjson h "$history" '{
            created: $c, architecture: $arch, os: "linux",
            config: {
                Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                Cmd: ["sh"], WorkingDir: "/",
                Labels: {"org.skiff.test.image": $name}
            },
            rootfs: {type: "layers", diff_ids: $ids},
            history: $h
        } + (if $v == "" then {} else {variant: $v} end)')
    cdesc=$(put_json "$layout" "$MT_CONFIG" "$config")
    manifest=$(jq -cn --arg mt "$MT_MANIFEST" --argjson c "$cdesc" --argjson l "$layers" \
        '{schemaVersion: 2, mediaType: $mt, config: $c, layers: $l}')
    put_json "$layout" "$MT_MANIFEST" "$manifest" |
        jq -c --arg arch "$arch" --arg v "$variant" \
            '. + {platform: ({architecture: $arch, os: "linux"} + (if $v == "" then {} else {variant: $v} end))}'
}

# write_index LAYOUT DESCRIPTOR: index.json naming DESCRIPTOR "latest".
write_index() {
    jq -cn --arg mt "$MT_INDEX" --argjson d "$2" '{schemaVersion: 2, mediaType: $mt,
        manifests: [$d + {annotations: {"org.opencontainers.image.ref.name": "latest"}}]}' \
        >"$1/index.json"
}

# stage_base DIR TAG: a busybox root filesystem; /etc/image says TAG.
stage_base() {
    local d=$1
    mkdir -p "$d"/{bin,etc,root,tmp,home/nobody,usr/bin,var}
    cp "$BUSYBOX" "$d/bin/busybox"
    chmod 0755 "$d/bin/busybox"
    local cmd
    for cmd in sh ash echo cat ls true false sleep id env mkdir rm touch wc stat test \
        sha256sum head tail grep sed chmod chown ln cp mv ps kill date hostname uname \
        readlink find xargs printf pwd whoami; do
        ln -s busybox "$d/bin/$cmd"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:1000:1000:nobody:/home/nobody:/bin/sh\n' >"$d/etc/passwd"
    printf 'root:x:0:\nnobody:x:1000:\n' >"$d/etc/group"
    echo "$2" >"$d/etc/image"
    chmod 1777 "$d/tmp"
    chmod 0700 "$d/root"
    chown 1000:1000 "$d/home/nobody"
}

# setxattr FILE NAME VALUE (no attr package needed)
setxattr() { python3 -c 'import os,sys; os.setxattr(sys.argv[1], sys.argv[2], sys.argv[3].encode())' "$@"; }

# publish NAME: move a finished layout from WORK into OUTDIR atomically enough for tests.
publish() {
    rm -rf "$OUTDIR/$1.old"
    if [[ -e $OUTDIR/$1 ]]; then mv "$OUTDIR/$1" "$OUTDIR/$1.old"; fi
    mv "$WORK/$1" "$OUTDIR/$1"
    rm -rf "$OUTDIR/$1.old"
}

# (a) single: one gzip layer.
build_single() {
    local L=$WORK/single s=$WORK/stage-single
    new_layout "$L"
    stage_base "$s" single
    local l1 m
    l1=$(make_layer "$L" "$s" gzip)
    m=$(make_image "$L" amd64 "" single "$l1")
    write_index "$L" "$m"
}

# (b) multi: four layers (gzip, plain tar, gzip, gzip); deletions, an opaque directory,
# hardlinks, symlinks, an xattr, a setuid file, a file owned by uid 1000.
build_multi() {
    local L=$WORK/multi s1=$WORK/stage-multi1 s2=$WORK/stage-multi2 s3=$WORK/stage-multi3
    local s4=$WORK/stage-multi4
    new_layout "$L"

    # layer 1: the base plus files later layers delete or hide
    stage_base "$s1" multi-1
    mkdir -p "$s1"/data/deldir/sub "$s1"/opt/app/sub
    echo keep >"$s1/data/keep.txt"
    echo delete-me >"$s1/data/del.txt"
    echo a >"$s1/data/deldir/a"
    echo b >"$s1/data/deldir/sub/b"
    echo old1 >"$s1/opt/app/old1"
    echo old3 >"$s1/opt/app/sub/old3"
    echo replaced-later >"$s1/data/replaced"

    # layer 2 (uncompressed): whiteouts, opaque dir, links, xattr, setuid, owner
    mkdir -p "$s2"/data "$s2"/opt/app "$s2"/usr/bin "$s2"/home/nobody
    chown 1000:1000 "$s2/home/nobody"
    : >"$s2/data/.wh.del.txt"
    : >"$s2/data/.wh.deldir"
    : >"$s2/opt/app/.wh..wh..opq"
    echo new >"$s2/opt/app/new.txt"
    echo shared-content >"$s2/data/hl-a"
    ln "$s2/data/hl-a" "$s2/data/hl-b"
    ln -s keep.txt "$s2/data/link-rel"
    ln -s /data/keep.txt "$s2/data/link-abs"
    ln -s ../../nonexistent "$s2/data/link-dangling"
    ln -s ../opt/app "$s2/data/link-dir"
    echo with-xattr >"$s2/data/xattr.txt"
    setxattr "$s2/data/xattr.txt" user.skiff.test hello
    cp "$BUSYBOX" "$s2/usr/bin/suid-busybox"
    chmod 4755 "$s2/usr/bin/suid-busybox"
    echo owned >"$s2/home/nobody/owned.txt"
    chown 1000:1000 "$s2/home/nobody/owned.txt"
    chmod 0640 "$s2/home/nobody/owned.txt"
    mkdir "$s2/data/replaced" # file in layer 1 becomes a directory in layer 2
    echo inside >"$s2/data/replaced/inside.txt"

    # layer 3: delete a layer-2 file and one half of a hardlink pair, change /etc/image
    mkdir -p "$s3"/data "$s3"/etc
    : >"$s3/data/.wh.link-dangling"
    : >"$s3/data/.wh.hl-b"
    echo multi >"$s3/etc/image"
    echo three >"$s3/data/layer3.txt"

    # layer 4: an empty-ish layer touching only a directory (common in real images)
    mkdir -p "$s4/data/empty-dir"

    local l1 l2 l3 l4 m
    l1=$(make_layer "$L" "$s1" gzip)
    l2=$(make_layer "$L" "$s2" none)
    l3=$(make_layer "$L" "$s3" gzip)
    l4=$(make_layer "$L" "$s4" gzip)
    m=$(make_image "$L" amd64 "" multi "$l1" "$l2" "$l3" "$l4")
    write_index "$L" "$m"
}

# (c) zstd: one zstd layer.
build_zstd() {
    local L=$WORK/zstd s=$WORK/stage-zstd
    new_layout "$L"
    stage_base "$s" zstd
    local l1 m
    l1=$(make_layer "$L" "$s" zstd)
    m=$(make_image "$L" amd64 "" zstd "$l1")
    write_index "$L" "$m"
}

# (d) multiarch: an index with linux/amd64 and linux/arm64/v8; /etc/arch tells them apart.
build_multiarch() {
    local L=$WORK/multiarch arch variant descs='[]'
    new_layout "$L"
    for arch in amd64 arm64; do
        variant=""
        [[ $arch == arm64 ]] && variant=v8
        local s=$WORK/stage-multiarch-$arch l1 m
        stage_base "$s" multiarch
        echo "$arch" >"$s/etc/arch"
        l1=$(make_layer "$L" "$s" gzip)
        m=$(make_image "$L" "$arch" "$variant" "multiarch-$arch" "$l1")
        descs=$(jq -c --argjson m "$m" '. + [$m]' <<<"$descs")
    done
    local idx
    idx=$(put_json "$L" "$MT_INDEX" "$(jq -cn --arg mt "$MT_INDEX" --argjson m "$descs" \
        '{schemaVersion: 2, mediaType: $mt, manifests: $m}')")
    write_index "$L" "$idx"
}

build_single
build_multi
build_zstd
build_multiarch

# Summary for tests and people: per image, the top descriptor from index.json.
summary=$(mktemp "$WORK/summary.XXXXXX")
for name in single multi zstd multiarch; do
    jq -c --arg n "$name" '{($n): .manifests[0] | del(.annotations)}' "$WORK/$name/index.json"
done | jq -s 'add' >"$summary"
for name in single multi zstd multiarch; do publish "$name"; done
chmod 0644 "$summary"
mv "$summary" "$OUTDIR/images.json"
echo "test images written to $OUTDIR: single multi zstd multiarch (tag latest)" >&2
