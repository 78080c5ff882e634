#!/usr/bin/env bash
# Push the test images built by build-test-images.sh to a registry (plain HTTP).
#
#   scripts/push-test-images.sh OUTDIR REGISTRY_HOSTPORT
#
# Each OUTDIR/NAME layout's "latest" goes to REGISTRY_HOSTPORT/skiff-test/NAME:latest with
# every platform (--all) and unchanged digests (--preserve-digests: otherwise skopeo would
# gzip the plain-tar layer of "multi" and the manifest digest would change).
# Set SKIFF_TEST_CREDS=user:password for a registry with htpasswd auth.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 OUTDIR REGISTRY_HOSTPORT" >&2
    exit 2
fi
OUTDIR=$1
REGISTRY=$2
command -v skopeo >/dev/null || { echo "$0: skopeo is missing; apt-get install skopeo" >&2; exit 1; }

creds=()
if [[ -n ${SKIFF_TEST_CREDS:-} ]]; then
    creds=(--dest-creds "$SKIFF_TEST_CREDS")
fi
pushed=0
for name in single multi zstd multiarch; do
    if [[ ! -f $OUTDIR/$name/index.json ]]; then
        echo "$0: $OUTDIR/$name is not an OCI layout; run scripts/build-test-images.sh $OUTDIR first" >&2
        exit 1
    fi
    # An empty policy file path is not allowed; pass an accept-anything policy explicitly so
    # a missing /etc/containers/policy.json does not fail the push.
    skopeo --policy <(echo '{"default":[{"type":"insecureAcceptAnything"}]}') copy --quiet \
        --all --preserve-digests --dest-tls-verify=false "${creds[@]}" \
        "oci:$OUTDIR/$name:latest" "docker://$REGISTRY/skiff-test/$name:latest"
    pushed=$((pushed + 1))
done
echo "pushed $pushed test images to $REGISTRY/skiff-test/" >&2
