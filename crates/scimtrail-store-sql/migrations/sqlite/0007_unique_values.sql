-- The values that a schema's `uniqueness` (server or global, RFC 7643 §7) applies to, other
-- than the User's userName (which has `user_name_ci` and its index). One row per value of a
-- live resource; the primary key is what refuses a second holder. `scope` is the resource
-- type for `server` and '' for `global`; `attr` is the attribute (URN-qualified in an
-- extension); `key` is the value as the schema compares it (lowercased unless caseExact).
-- Written with each write of a type that has such attributes (issue #8).
CREATE TABLE resource_unique (
    tenant TEXT NOT NULL,
    scope  TEXT NOT NULL,
    attr   TEXT NOT NULL,
    key    TEXT NOT NULL,
    id     TEXT NOT NULL,
    PRIMARY KEY (tenant, scope, attr, key)
) WITHOUT ROWID;
CREATE INDEX resource_unique_by_id ON resource_unique (tenant, id);
