#!/usr/bin/env bash
# The filter as an OCI image in the "compat" variant that Istio's WasmPlugin and Envoy Gateway's
# EnvoyExtensionPolicy pull: one tar+gzip layer holding plugin.wasm (what `FROM scratch` +
# `COPY plugin.wasm ./` gives), manifest annotation module.wasm.image/variant=compat.
# Built with umoci, no container daemon. Timestamps, owners and modes are fixed, so the same
# plugin.wasm always gives the same digest.
#   deploy/oci-image.sh <plugin.wasm> <output dir> <tag>
# writes <output dir>/oci (an OCI image layout), <output dir>/scim-edge.oci.tar (the same layout as
# an oci-archive) and <output dir>/digest, and prints the manifest digest.
set -euo pipefail
wasm=$1 out=$2 tag=$3
epoch=1970-01-01T00:00:00Z
layout=$out/oci
rm -rf "$layout" "$out/stage" "$out/scim-edge.oci.tar" "$out/digest"
mkdir -p "$out/stage"
cp "$wasm" "$out/stage/plugin.wasm"
chmod 0644 "$out/stage/plugin.wasm"
touch -d @0 "$out/stage/plugin.wasm"
umoci init --layout "$layout"
umoci new --image "$layout:build"
umoci insert --rootless --history.created "$epoch" --history.created_by "COPY plugin.wasm ./" \
  --image "$layout:build" "$out/stage/plugin.wasm" /plugin.wasm
umoci config --no-history --created "$epoch" --author scim-edge \
  --manifest.annotation module.wasm.image/variant=compat \
  --image "$layout:build" --tag "$tag"
umoci rm --image "$layout:build"
umoci gc --layout "$layout"
rm -rf "$out/stage"
# An oci-archive is the layout as a tar (what `skopeo copy oci-archive:...` reads).
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$layout" -cf "$out/scim-edge.oci.tar" .
digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$layout/index.json")
echo "$digest" >"$out/digest"
echo "image: $out/scim-edge.oci.tar (layout $layout, tag $tag)"
echo "digest: $digest"
