-- Audit event queries at scale (issue #7). Every filterable event attribute is a column, the
-- selective ones have an index ending in `seq` (so a query walks one index in log order and
-- stops at its page), change paths have a table of their own, and `audit_hours` maps each hour
-- of event time to the range of `seq` that holds it, so that a time window bounds a scan of the
-- log without assuming that `time` grows with `seq`. All of it is derived from the clear
-- envelope of each commitment, which `scimtrail audit verify` checks the columns against.
ALTER TABLE audit_events ADD COLUMN actor_ip TEXT;
ALTER TABLE audit_events ADD COLUMN target_display TEXT;
ALTER TABLE audit_events ADD COLUMN scim_type TEXT;

UPDATE audit_events SET
    actor_ip       = json_extract(commitment, '$.actor.ip'),
    target_display = json_extract(commitment, '$.target.display'),
    scim_type      = json_extract(commitment, '$.outcome.scimType');

CREATE TABLE audit_change_paths (
    seq    INTEGER NOT NULL,
    path   TEXT    NOT NULL,
    tenant TEXT    NOT NULL,
    PRIMARY KEY (seq, path)
) WITHOUT ROWID;
CREATE INDEX audit_change_paths_path ON audit_change_paths (tenant, path, seq);

INSERT OR IGNORE INTO audit_change_paths (seq, path, tenant)
    SELECT e.seq, json_extract(c.value, '$.path'), e.tenant
    FROM audit_events e, json_each(e.commitment, '$.changes') c
    WHERE json_extract(c.value, '$.path') IS NOT NULL;

CREATE TABLE audit_hours (
    tenant  TEXT    NOT NULL,
    hour    TEXT    NOT NULL,
    min_seq INTEGER NOT NULL,
    max_seq INTEGER NOT NULL,
    PRIMARY KEY (tenant, hour)
) WITHOUT ROWID;

INSERT INTO audit_hours (tenant, hour, min_seq, max_seq)
    SELECT tenant, substr(time, 1, 13), min(seq), max(seq)
    FROM audit_events GROUP BY tenant, substr(time, 1, 13);

-- `(tenant, time)` already exists. The others end in `seq`, so that an `eq` walks its index in
-- log order and stops at the end of its page. Where most events hold no value or the same
-- common one, the index is partial and holds only the rare events (failures, operator acts,
-- child events): an event pays for an index only when it is one that index is for. Common
-- values (`outcome.result eq "success"`, `actor.client eq "Okta"`) match so often that a
-- time window and the scan budget serve them.
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
