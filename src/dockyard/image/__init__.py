"""Images: references, manifests, configs, the image store, save/load, import/export, and
images made locally.

  reference   names as Docker parses them (busybox = docker.io/library/busybox:latest)
  platform    os/arch/variant normalisation and the host's compatibility order
  manifest    Docker schema2 and OCI manifests and indexes, validated; platform selection
  config      image configs (the image ID is their digest)
  changes     Dockerfile-style changes (CMD, ENV, ...) applied to a config; shellwords lexes
  store       ImageStore over dockyard.store (SQLite) and dockyard.storage: create, tags,
              resolve, list, history, rmi
  save, load  docker-archive with Docker 25's OCI layout entries; OCI archives load too
  importer    a rootfs tarball as a one-layer image; export: a snapshot's merged tree as tar
  bootstrap   busybox and debian:<suite> images from the host (rootfs.py makes the trees)
"""
