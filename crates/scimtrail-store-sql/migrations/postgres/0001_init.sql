-- scimtrail schema v1 (PostgreSQL): the tables of the SQLite schema after its migrations
-- 0001 to 0007, in one step. Text compares byte by byte (COLLATE "C") as in SQLite, so that
-- sorts, ranges and the log's RFC 3339 times order the same on both backends.

-- The sequencer: every transaction that appends to the log locks this one row first, reads
-- the next `seq` from it and moves it on. Several processes then append one gap-free log,
-- and the Merkle tree's appends happen in log order. `writes` counts resource writes (the
-- generation that list totals are cached under).
CREATE TABLE log_head (
    one      BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    next_seq BIGINT  NOT NULL,
    writes   BIGINT  NOT NULL
);
INSERT INTO log_head (one, next_seq, writes) VALUES (TRUE, 0, 0);

CREATE TABLE resources (
    rid             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- list order
    tenant          TEXT COLLATE "C" NOT NULL,
    resource_type   TEXT COLLATE "C" NOT NULL,
    id              TEXT COLLATE "C" NOT NULL,
    version         BIGINT  NOT NULL,
    deleted         BOOLEAN NOT NULL DEFAULT FALSE,
    created         TEXT COLLATE "C" NOT NULL,
    last_modified   TEXT COLLATE "C" NOT NULL,
    user_name_ci    TEXT COLLATE "C",
    external_id     TEXT COLLATE "C",
    display_name_ci TEXT COLLATE "C",
    active          BIGINT,           -- a User's active: 1, 0 or NULL
    data            TEXT    NOT NULL  -- the stored form as written (key order kept)
);
-- Client-supplied values may be longer than a B-tree entry can hold (about 2.7 kB): they are
-- looked up through hash indexes, which take any length, and their uniqueness is held on
-- their MD5 (the lookup still compares the values themselves).
CREATE UNIQUE INDEX resources_by_id ON resources (tenant, id);
CREATE UNIQUE INDEX resources_user_name ON resources (tenant, md5(user_name_ci))
    WHERE resource_type = 'User' AND NOT deleted;
CREATE INDEX resources_user_name_eq ON resources USING hash (user_name_ci);
CREATE INDEX resources_list ON resources (tenant, resource_type, deleted, rid);
CREATE INDEX resources_external_id ON resources USING hash (external_id);
CREATE INDEX resources_display_name ON resources USING hash (display_name_ci);
CREATE INDEX resources_last_modified ON resources (tenant, resource_type, last_modified)
    WHERE NOT deleted;
CREATE INDEX resources_created ON resources (tenant, resource_type, created) WHERE NOT deleted;
CREATE INDEX resources_active ON resources (tenant, resource_type, active) WHERE NOT deleted;

CREATE TABLE memberships (
    tenant      TEXT COLLATE "C" NOT NULL,
    group_id    TEXT COLLATE "C" NOT NULL,
    member_id   TEXT COLLATE "C" NOT NULL,
    member_type TEXT COLLATE "C" NOT NULL,
    display     TEXT COLLATE "C",
    PRIMARY KEY (tenant, group_id, member_id)
);
CREATE INDEX memberships_by_member ON memberships (tenant, member_id);

CREATE TABLE membership_changes (
    tenant      TEXT COLLATE "C" NOT NULL,
    group_id    TEXT COLLATE "C" NOT NULL,
    version     BIGINT NOT NULL,
    member_id   TEXT COLLATE "C" NOT NULL,
    op          TEXT COLLATE "C" NOT NULL,  -- 'add' (or update of type/display) | 'remove'
    member_type TEXT COLLATE "C",
    display     TEXT COLLATE "C",
    PRIMARY KEY (tenant, group_id, version, member_id)
);

CREATE TABLE resource_versions (
    tenant        TEXT COLLATE "C" NOT NULL,
    id            TEXT COLLATE "C" NOT NULL,
    version       BIGINT  NOT NULL,
    resource_type TEXT COLLATE "C" NOT NULL,
    time          TEXT COLLATE "C" NOT NULL,
    deleted       BOOLEAN NOT NULL,
    data          TEXT,               -- NULL for a deletion; Groups without members
    event_seq     BIGINT  NOT NULL UNIQUE,
    PRIMARY KEY (tenant, id, version)
);

CREATE TABLE resource_emails (
    tenant   TEXT COLLATE "C" NOT NULL,
    value_ci TEXT COLLATE "C" NOT NULL,
    rid      BIGINT NOT NULL
);
CREATE INDEX resource_emails_value ON resource_emails USING hash (value_ci);
CREATE INDEX resource_emails_rid ON resource_emails (rid);

CREATE TABLE resource_unique (
    tenant TEXT COLLATE "C" NOT NULL,
    scope  TEXT COLLATE "C" NOT NULL,
    attr   TEXT COLLATE "C" NOT NULL,
    key    TEXT COLLATE "C" NOT NULL,
    id     TEXT COLLATE "C" NOT NULL
);
CREATE UNIQUE INDEX resource_unique_key ON resource_unique (tenant, scope, attr, md5(key));
CREATE INDEX resource_unique_by_id ON resource_unique (tenant, id);

-- The audit log: `seq` is the Merkle leaf index, `commitment` the leaf's exact bytes.
CREATE TABLE audit_events (
    seq                BIGINT PRIMARY KEY,
    id                 TEXT COLLATE "C" NOT NULL UNIQUE,
    tenant             TEXT COLLATE "C" NOT NULL,
    time               TEXT COLLATE "C" NOT NULL,
    request_id         TEXT COLLATE "C" NOT NULL,
    parent_id          TEXT COLLATE "C",
    actor_kind         TEXT COLLATE "C" NOT NULL,
    actor_id           TEXT COLLATE "C",
    actor_name         TEXT COLLATE "C",
    actor_client       TEXT COLLATE "C",
    action             TEXT COLLATE "C" NOT NULL,
    method             TEXT COLLATE "C",
    scim_op            TEXT COLLATE "C",
    target_type        TEXT COLLATE "C",
    target_id          TEXT COLLATE "C",
    target_external_id TEXT COLLATE "C",
    result             TEXT COLLATE "C" NOT NULL,
    status             BIGINT NOT NULL,
    leaf_hash          BYTEA  NOT NULL,
    commitment         TEXT   NOT NULL,
    actor_ip           TEXT COLLATE "C",
    target_display     TEXT COLLATE "C",
    scim_type          TEXT COLLATE "C"
);
CREATE INDEX audit_events_target ON audit_events (tenant, target_id, seq);
CREATE INDEX audit_events_request ON audit_events (tenant, request_id, seq);
CREATE INDEX audit_events_actor ON audit_events (tenant, actor_name, seq);
CREATE INDEX audit_events_action ON audit_events (tenant, action, seq);
CREATE INDEX audit_events_time ON audit_events (tenant, time);
CREATE INDEX audit_events_actor_id ON audit_events (tenant, actor_id, seq);
CREATE INDEX audit_events_ip ON audit_events (tenant, actor_ip, seq);
CREATE INDEX audit_events_external_id ON audit_events (tenant, target_external_id, seq)
    WHERE target_external_id IS NOT NULL;
CREATE INDEX audit_events_display ON audit_events (tenant, target_display, seq)
    WHERE target_display IS NOT NULL;
CREATE INDEX audit_events_parent ON audit_events (tenant, parent_id, seq)
    WHERE parent_id IS NOT NULL;
CREATE INDEX audit_events_scim_type ON audit_events (tenant, scim_type, seq)
    WHERE scim_type IS NOT NULL;
CREATE INDEX audit_events_failure ON audit_events (tenant, result, seq)
    WHERE result = 'failure';
CREATE INDEX audit_events_error_status ON audit_events (tenant, status, seq)
    WHERE status >= 400;
CREATE INDEX audit_events_rare_actor ON audit_events (tenant, actor_kind, seq)
    WHERE actor_kind <> 'token';
CREATE INDEX audit_events_rare_target ON audit_events (tenant, target_type, seq)
    WHERE target_type NOT IN ('User', 'Group');

CREATE TABLE audit_payloads (
    seq  BIGINT PRIMARY KEY,
    salt BYTEA NOT NULL,
    vals TEXT  NOT NULL
);

CREATE TABLE audit_change_paths (
    seq    BIGINT NOT NULL,
    path   TEXT COLLATE "C" NOT NULL,
    tenant TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (seq, path)
);
CREATE INDEX audit_change_paths_path ON audit_change_paths (tenant, path, seq);

CREATE TABLE audit_hours (
    tenant  TEXT COLLATE "C" NOT NULL,
    hour    TEXT COLLATE "C" NOT NULL,
    min_seq BIGINT NOT NULL,
    max_seq BIGINT NOT NULL,
    PRIMARY KEY (tenant, hour)
);

CREATE TABLE merkle_hashes (
    idx  BIGINT PRIMARY KEY,
    hash BYTEA NOT NULL
);

CREATE TABLE checkpoints (
    size BIGINT PRIMARY KEY,
    time TEXT COLLATE "C" NOT NULL,
    root BYTEA NOT NULL,
    note TEXT  NOT NULL
);

CREATE TABLE tokens (
    id      TEXT COLLATE "C" PRIMARY KEY,
    name    TEXT COLLATE "C" NOT NULL,
    hash    TEXT COLLATE "C" NOT NULL UNIQUE,
    scopes  TEXT COLLATE "C" NOT NULL,
    tenant  TEXT COLLATE "C" NOT NULL,
    created TEXT COLLATE "C" NOT NULL,
    revoked TEXT COLLATE "C"
);

CREATE TABLE log_meta (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value TEXT NOT NULL
);

-- SQLite's `instr`, which the shared filter translation uses for `co`.
CREATE FUNCTION instr(haystack TEXT, needle TEXT) RETURNS INTEGER
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS 'SELECT strpos(haystack, needle)';
