-- scimtrail schema v1 (SQLite). Every table carries `tenant` from day one.

-- Live and tombstoned resources. `data` is the stored form without Group members.
CREATE TABLE resources (
    rid             INTEGER PRIMARY KEY AUTOINCREMENT, -- stable list order
    tenant          TEXT    NOT NULL,
    resource_type   TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    deleted         INTEGER NOT NULL DEFAULT 0,
    created         TEXT    NOT NULL,
    last_modified   TEXT    NOT NULL,
    user_name_ci    TEXT,             -- lower-cased userName (Users)
    external_id     TEXT,
    display_name_ci TEXT,             -- lower-cased displayName
    data            TEXT    NOT NULL
);
CREATE UNIQUE INDEX resources_by_id ON resources (tenant, id);
CREATE UNIQUE INDEX resources_user_name ON resources (tenant, user_name_ci)
    WHERE resource_type = 'User' AND deleted = 0;
CREATE INDEX resources_list ON resources (tenant, resource_type, deleted, rid);
CREATE INDEX resources_external_id ON resources (tenant, resource_type, external_id);
CREATE INDEX resources_display_name ON resources (tenant, resource_type, display_name_ci);

-- Group membership: the members of a Group and the index behind the User `groups` attribute.
CREATE TABLE memberships (
    tenant      TEXT NOT NULL,
    group_id    TEXT NOT NULL,
    member_id   TEXT NOT NULL,
    member_type TEXT NOT NULL,
    display     TEXT,
    PRIMARY KEY (tenant, group_id, member_id)
) WITHOUT ROWID;
CREATE INDEX memberships_by_member ON memberships (tenant, member_id);

-- Every version of every resource, written with the event that made it.
CREATE TABLE resource_versions (
    tenant        TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    resource_type TEXT    NOT NULL,
    time          TEXT    NOT NULL,
    deleted       INTEGER NOT NULL,
    data          TEXT,               -- full stored form incl. members; NULL for a deletion
    event_seq     INTEGER NOT NULL UNIQUE,
    PRIMARY KEY (tenant, id, version)
);

-- The audit log. `seq` is the Merkle leaf index: 0, 1, 2… without gaps. `body` holds the exact
-- canonical bytes (RFC 8785) that `leaf_hash` = SHA-256(0x00 || body) was computed over.
CREATE TABLE audit_events (
    seq                INTEGER PRIMARY KEY,
    id                 TEXT    NOT NULL UNIQUE,
    tenant             TEXT    NOT NULL,
    time               TEXT    NOT NULL,
    request_id         TEXT    NOT NULL,
    parent_id          TEXT,
    actor_kind         TEXT    NOT NULL,
    actor_id           TEXT,
    actor_name         TEXT,
    actor_client       TEXT,
    action             TEXT    NOT NULL,
    method             TEXT,
    scim_op            TEXT,
    target_type        TEXT,
    target_id          TEXT,
    target_external_id TEXT,
    result             TEXT    NOT NULL,
    status             INTEGER NOT NULL,
    leaf_hash          BLOB    NOT NULL,
    body               TEXT    NOT NULL
);
CREATE INDEX audit_events_target ON audit_events (tenant, target_id, seq);
CREATE INDEX audit_events_request ON audit_events (tenant, request_id, seq);
CREATE INDEX audit_events_actor ON audit_events (tenant, actor_name, seq);
CREATE INDEX audit_events_action ON audit_events (tenant, action, seq);
CREATE INDEX audit_events_time ON audit_events (tenant, time);

-- API tokens, stored as SHA-256 hashes (hex) only.
CREATE TABLE tokens (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    hash    TEXT NOT NULL UNIQUE,
    scopes  TEXT NOT NULL,
    tenant  TEXT NOT NULL,
    created TEXT NOT NULL,
    revoked TEXT
);
