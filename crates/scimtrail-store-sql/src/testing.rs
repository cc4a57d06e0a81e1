//! Test databases: a fresh PostgreSQL schema per test when `TEST_DATABASE_URL` is set.

/// A schema of its own in the database `TEST_DATABASE_URL` names, dropped when the guard is.
pub struct PgSchema {
    base: String,
    pub schema: String,
    /// A URL whose connections use the schema.
    pub url: String,
}

/// Run `f` on a thread of its own: the synchronous client must not run inside a runtime.
fn on_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match std::thread::spawn(f).join() {
        Ok(t) => t,
        Err(p) => std::panic::resume_unwind(p),
    }
}

impl PgSchema {
    /// `None` (with a note on stderr) when `TEST_DATABASE_URL` is unset: the test is skipped.
    pub fn create() -> Option<PgSchema> {
        let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
            eprintln!("TEST_DATABASE_URL is not set: the PostgreSQL test is skipped");
            return None;
        };
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let (b, s) = (base.clone(), schema.clone());
        on_thread(move || -> Result<(), String> {
            let mut c =
                postgres::Client::connect(&b, postgres::NoTls).map_err(|e| e.to_string())?;
            c.batch_execute(&format!("CREATE SCHEMA {s}"))
                .map_err(|e| e.to_string())
        })
        .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but unusable: {e}"));
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
        Some(PgSchema { base, schema, url })
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (b, s) = (self.base.clone(), self.schema.clone());
        on_thread(move || {
            if let Ok(mut c) = postgres::Client::connect(&b, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {s} CASCADE"));
            }
        });
    }
}
