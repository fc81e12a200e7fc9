"""Images: references, manifests, configs, save/load, root filesystems made locally."""
