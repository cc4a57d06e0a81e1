-- Member changes per Group version. Version snapshots of a Group hold no member list (a 100k
-- group would be copied on every member add); its members at version N are the changes up to N.
CREATE TABLE membership_changes (
    tenant      TEXT    NOT NULL,
    group_id    TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    member_id   TEXT    NOT NULL,
    op          TEXT    NOT NULL,  -- 'add' (or update of type/display) | 'remove'
    member_type TEXT,
    display     TEXT,
    PRIMARY KEY (tenant, group_id, version, member_id)
) WITHOUT ROWID;
