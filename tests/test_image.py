"""`make image`: the filter as an OCI image in the "compat" variant Istio and Envoy Gateway pull
(one tar+gzip layer holding plugin.wasm, manifest annotation module.wasm.image/variant=compat),
written as an OCI layout and an oci-archive, whose single layer carries exactly the filter that
`make build` produced."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

import local_stack as stack

ROOT = stack.ROOT
IMAGE_DIR = ROOT / "target" / "image"
LAYOUT = IMAGE_DIR / "oci"
ARCHIVE = IMAGE_DIR / "scim-edge.oci.tar"
LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def blob(digest: str) -> bytes:
    algorithm, hex_digest = digest.split(":")
    assert algorithm == "sha256"
    data = (LAYOUT / "blobs" / "sha256" / hex_digest).read_bytes()
    assert hashlib.sha256(data).hexdigest() == hex_digest, f"blob {digest} does not match its digest"
    return data


def layer_files(layer: bytes) -> dict[str, bytes]:
    """Regular files of a tar+gzip layer. umoci writes no end-of-archive blocks, so the tar is read
    as a stream up to where its data ends."""
    files: dict[str, bytes] = {}
    archive = tarfile.open(fileobj=io.BytesIO(layer), mode="r|gz")
    try:
        for member in archive:
            if member.isfile():
                files[member.name.lstrip("./")] = archive.extractfile(member).read()
            else:
                assert member.isdir(), f"unexpected {member.name} ({member.type!r}) in the layer"
    except tarfile.ReadError as error:
        assert "end of data" in str(error) or "empty file" in str(error), error
    return files


@pytest.fixture(scope="module")
def built() -> str:
    result = subprocess.run(
        ["make", "--no-print-directory", "image"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    digest = (IMAGE_DIR / "digest").read_text().strip()
    assert f"digest: {digest}" in result.stdout, "make image prints the digest"
    return digest


def test_the_image_is_one_compat_layer_holding_exactly_the_built_filter(built):
    index = json.loads((LAYOUT / "index.json").read_text())
    assert json.loads((LAYOUT / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    [entry] = index["manifests"]
    assert entry["digest"] == built
    manifest = json.loads(blob(entry["digest"]))
    assert manifest["annotations"]["module.wasm.image/variant"] == "compat"
    [layer] = manifest["layers"]
    assert layer["mediaType"] == LAYER_TAR_GZIP  # what Istio's compat extraction accepts
    data = blob(layer["digest"])
    config = json.loads(blob(manifest["config"]["digest"]))
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest()]
    files = layer_files(data)
    assert list(files) == ["plugin.wasm"]
    assert files["plugin.wasm"] == stack.WASM.read_bytes()


def test_the_archive_is_the_same_image_as_skopeo_reads_it(built):
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", f"oci-archive:{ARCHIVE}"], capture_output=True, timeout=60, check=True
    ).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == built


def test_the_same_filter_gives_the_same_digest(built, tmp_path):
    """Timestamps and owners are fixed: a rebuild of the same plugin.wasm can be pinned by the same digest."""
    result = subprocess.run(
        [str(ROOT / "deploy" / "oci-image.sh"), str(stack.WASM), str(tmp_path / "again"), "again"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "again" / "digest").read_text().strip() == built
