"""Names in an image archive: Docker's docker-archive files and the OCI image layout.

Docker 25+ writes both in one tar: manifest.json (with RepoTags) and repositories for
`docker load`, and index.json, oci-layout and blobs/sha256/<hex> for OCI tools; the layers
and configs manifest.json points at are those same blobs.
"""

MANIFEST_FILE = "manifest.json"
REPOSITORIES_FILE = "repositories"
INDEX_FILE = "index.json"
OCI_LAYOUT_FILE = "oci-layout"
BLOBS_DIR = "blobs"
# Docker writes this exact text, with its space.
OCI_LAYOUT_CONTENT = b'{"imageLayoutVersion": "1.0.0"}'

ANNOTATION_IMAGE_NAME = "io.containerd.image.name"  # the full reference
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"  # the tag


def blob_path(digest: str) -> str:
    """blobs/<algorithm>/<hex> for `digest`."""
    algorithm, _, encoded = digest.partition(":")
    return f"{BLOBS_DIR}/{algorithm}/{encoded}"
