"""The schema, as an append-only list of migrations: entry N brings user_version N-1 to N.

Never edit a released entry; add a new one. Containers, volumes and networks arrive as later
entries and may reference these tables.
"""

MIGRATIONS: list[str] = [
    # 1: images, their layers and the names pointing at them.
    """
    CREATE TABLE layers (
        chain_id        TEXT PRIMARY KEY,
        diff_id         TEXT NOT NULL,
        parent          TEXT REFERENCES layers(chain_id),
        blob_digest     TEXT NOT NULL,   -- the tar as stored in the content store
        blob_media_type TEXT NOT NULL,
        blob_size       INTEGER NOT NULL,
        size            INTEGER NOT NULL -- unpacked
    );
    CREATE TABLE images (
        id           TEXT PRIMARY KEY,   -- digest of the config, which is in the content store
        parent       TEXT REFERENCES images(id),  -- local build parent, NULL for pulled images
        created      TEXT NOT NULL,      -- the config's "created", RFC 3339
        os           TEXT NOT NULL,
        architecture TEXT NOT NULL,
        variant      TEXT NOT NULL,
        size         INTEGER NOT NULL,   -- unpacked size of all layers
        added        REAL NOT NULL       -- when this store got the image (unix time)
    );
    CREATE INDEX images_parent ON images(parent);
    CREATE TABLE image_layers (
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        chain_id TEXT NOT NULL REFERENCES layers(chain_id),
        PRIMARY KEY (image_id, position)
    );
    CREATE INDEX image_layers_chain ON image_layers(chain_id);
    -- repo:tag and repo@digest names; exactly one of tag and digest is set.
    CREATE TABLE image_refs (
        name       TEXT PRIMARY KEY,     -- normalised, e.g. docker.io/library/busybox:latest
        repository TEXT NOT NULL,
        tag        TEXT,
        digest     TEXT,
        image_id   TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        CHECK ((tag IS NULL) <> (digest IS NULL))
    );
    CREATE INDEX image_refs_image ON image_refs(image_id);
    -- Layers kept alive by something other than an image (a container's rootfs, a build).
    CREATE TABLE layer_holds (
        holder   TEXT NOT NULL,
        chain_id TEXT NOT NULL REFERENCES layers(chain_id),
        PRIMARY KEY (holder, chain_id)
    );
    CREATE INDEX layer_holds_chain ON layer_holds(chain_id);
    """,
    # 2: containers, as Docker's inspect document (the engine owns its shape), and exec
    # sessions are in memory only, as in Docker.
    """
    CREATE TABLE containers (
        id      TEXT PRIMARY KEY,
        name    TEXT NOT NULL UNIQUE,   -- without the leading slash
        created REAL NOT NULL,          -- unix time, for listing order
        data    TEXT NOT NULL           -- JSON: Docker's container inspect shape
    );
    """,
    # 3: volumes of the local driver; which containers use one is read from their Mounts.
    """
    CREATE TABLE volumes (
        name    TEXT PRIMARY KEY,
        driver  TEXT NOT NULL,
        created TEXT NOT NULL,   -- RFC 3339, as CreatedAt shows it
        labels  TEXT NOT NULL,   -- JSON object, or null
        options TEXT NOT NULL    -- JSON object of driver options, or null
    );
    """,
    # 4: networks, as Docker's inspect document, and the addresses handed out in each.
    """
    CREATE TABLE networks (
        id      TEXT PRIMARY KEY,
        name    TEXT NOT NULL UNIQUE,
        created REAL NOT NULL,
        data    TEXT NOT NULL          -- JSON: Docker's network inspect shape, minus Containers
    );
    CREATE TABLE ip_allocations (
        network_id   TEXT NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
        address      TEXT NOT NULL,
        container_id TEXT NOT NULL,
        PRIMARY KEY (network_id, address)
    );
    CREATE INDEX ip_allocations_container ON ip_allocations(container_id);
    """,
]
