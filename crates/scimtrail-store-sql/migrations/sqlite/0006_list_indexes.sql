-- Indexes behind list filters (issue #8): `meta.lastModified` and `meta.created` comparisons,
-- and `active eq`. Partial on live resources, as every list query is. `members.value eq` and
-- `groups.value eq` use the memberships keys; `userName`, `externalId` and `displayName`
-- already have theirs.
CREATE INDEX resources_last_modified ON resources (tenant, resource_type, last_modified)
    WHERE deleted = 0;
CREATE INDEX resources_created ON resources (tenant, resource_type, created)
    WHERE deleted = 0;
CREATE INDEX resources_active ON resources (tenant, resource_type, json_extract(data, '$.active'))
    WHERE deleted = 0;

-- Every email value of every live User in its case-insensitive form (Rust's `to_lowercase`,
-- as the filter evaluator compares it): the index behind `emails.value eq`. Written with each
-- User write; Users stored before are indexed once, at the next start, in Rust
-- (`sqlite/upgrade.rs`).
CREATE TABLE resource_emails (
    tenant   TEXT    NOT NULL,
    value_ci TEXT    NOT NULL,
    rid      INTEGER NOT NULL,
    PRIMARY KEY (tenant, value_ci, rid)
) WITHOUT ROWID;
CREATE INDEX resource_emails_rid ON resource_emails (rid);
INSERT INTO log_meta (key, value)
    SELECT 'email_values', 'pending' WHERE EXISTS (SELECT 1 FROM resources WHERE resource_type = 'User');
