-- `user_name_ci` becomes the userName's uniqueness key (scimtrail_core::username::key: PRECIS
-- UsernameCaseMapped per space-separated part) instead of its lower case. Users stored before
-- are re-keyed once, at the next start, in Rust (`sqlite/upgrade.rs`).
INSERT INTO log_meta (key, value)
    SELECT 'user_name_keys', 'pending' WHERE EXISTS (SELECT 1 FROM resources WHERE resource_type = 'User');
