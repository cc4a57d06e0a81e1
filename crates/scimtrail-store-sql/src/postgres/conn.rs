//! Connections to PostgreSQL: the synchronous `postgres` client on tokio's blocking threads,
//! in a small pool, each with its own cache of prepared statements. A closure runs on one
//! connection, so a read or a write transaction costs one thread hand-off, as in the SQLite
//! store. SQL is written with `?` placeholders, as for SQLite, and numbered here.

use std::collections::HashMap;
use std::sync::Mutex;

use postgres::types::{ToSql, Type};
use postgres::{GenericClient, NoTls, Row, Statement};
use scimtrail_store::{StoreError, StoreResult};
use tokio::sync::Semaphore;

use crate::filter_sql::Param;

pub type P<'a> = &'a (dyn ToSql + Sync);

/// `?` and `?N` placeholders (outside quotes) as PostgreSQL's `$N`. A bare `?` takes the
/// number after the largest one so far, as in SQLite.
pub fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut next = 0usize;
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                let n = match digits.parse::<usize>() {
                    Ok(n) => n,
                    Err(_) => next + 1,
                };
                next = next.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

pub fn pg(e: postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(d) => StoreError::Backend(format!("{}: {}", d.code().code(), d.message())),
        None => StoreError::Backend(format!("database connection: {e}")),
    }
}

/// The SQLSTATE of a database error.
pub fn code(e: &postgres::Error) -> Option<&str> {
    e.code().map(|c| c.code())
}

impl ToSql for Param {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Text(s) => s.to_sql(ty, out),
            Param::Int(i) => i.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <String as ToSql>::accepts(ty) || <i64 as ToSql>::accepts(ty)
    }

    postgres::types::to_sql_checked!();
}

pub fn params(ps: &[Param]) -> Vec<P<'_>> {
    ps.iter().map(|p| p as P<'_>).collect()
}

/// A client (or a transaction on it) with its connection's statement cache.
pub struct Db<'a, C: GenericClient> {
    pub c: &'a mut C,
    cache: &'a mut HashMap<String, Statement>,
}

impl<'a, C: GenericClient> Db<'a, C> {
    pub fn new(c: &'a mut C, cache: &'a mut HashMap<String, Statement>) -> Self {
        Db { c, cache }
    }

    /// The numbered statement, prepared once per connection (prepared statements outlive
    /// the transaction they were prepared in).
    fn stmt(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.cache.get(sql) {
            return Ok(s.clone());
        }
        let s = self.c.prepare(&numbered(sql))?;
        if self.cache.len() > 256 {
            self.cache.clear();
        }
        self.cache.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    pub fn try_rows(&mut self, sql: &str, ps: &[P<'_>]) -> Result<Vec<Row>, postgres::Error> {
        let s = self.stmt(sql)?;
        self.c.query(&s, ps)
    }

    pub fn rows(&mut self, sql: &str, ps: &[P<'_>]) -> StoreResult<Vec<Row>> {
        self.try_rows(sql, ps).map_err(pg)
    }

    pub fn opt(&mut self, sql: &str, ps: &[P<'_>]) -> StoreResult<Option<Row>> {
        Ok(self.rows(sql, ps)?.into_iter().next())
    }

    pub fn one(&mut self, sql: &str, ps: &[P<'_>]) -> StoreResult<Row> {
        self.opt(sql, ps)?
            .ok_or_else(|| StoreError::Backend(format!("no row from {sql}")))
    }

    pub fn try_exec(&mut self, sql: &str, ps: &[P<'_>]) -> Result<u64, postgres::Error> {
        let s = self.stmt(sql)?;
        self.c.execute(&s, ps)
    }

    pub fn exec(&mut self, sql: &str, ps: &[P<'_>]) -> StoreResult<u64> {
        self.try_exec(sql, ps).map_err(pg)
    }
}

pub struct Conn {
    pub client: postgres::Client,
    pub cache: HashMap<String, Statement>,
}

impl Conn {
    pub fn db(&mut self) -> Db<'_, postgres::Client> {
        Db::new(&mut self.client, &mut self.cache)
    }
}

pub struct Pool {
    config: postgres::Config,
    idle: Mutex<Vec<Conn>>,
    slots: Semaphore,
}

impl Pool {
    pub fn new(config: postgres::Config, size: usize) -> Self {
        Pool {
            config,
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(size.max(1)),
        }
    }

    pub fn connect(config: &postgres::Config) -> StoreResult<Conn> {
        let client = config.connect(NoTls).map_err(|e| {
            StoreError::Backend(format!("cannot connect to PostgreSQL: {}", short(&e)))
        })?;
        Ok(Conn {
            client,
            cache: HashMap::new(),
        })
    }

    /// Run `f` on a connection of the pool. A connection that broke is not put back.
    pub async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn) -> StoreResult<T> + Send + 'static,
    {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| StoreError::Backend("the connection pool is closed".into()))?;
        let idle = self.idle.lock().map(|mut v| v.pop()).unwrap_or(None);
        let config = self.config.clone();
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let mut conn = match idle {
                Some(c) if !c.client.is_closed() => c,
                _ => match Self::connect(&config) {
                    Ok(c) => c,
                    Err(e) => return (None, Err(e)),
                },
            };
            let r = f(&mut conn);
            // A broken connection is dropped here: the client's drop blocks, which it must
            // not do on a runtime thread.
            (Some(conn).filter(|c| !c.client.is_closed()), r)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("database task failed: {e}")))?;
        if let Some(conn) = conn {
            if let Ok(mut v) = self.idle.lock() {
                v.push(conn);
            }
        }
        result
    }
}

impl Drop for Pool {
    /// The synchronous clients close their connections on a thread of their own: their drop
    /// blocks, which it must not do on a runtime thread.
    fn drop(&mut self) {
        let idle = self.idle.get_mut().map(std::mem::take).unwrap_or_default();
        if !idle.is_empty() {
            let _ = std::thread::spawn(move || drop(idle)).join();
        }
    }
}

/// A connection error in one line, without the password.
pub fn short(e: &postgres::Error) -> String {
    let s = e.to_string();
    match std::error::Error::source(e) {
        Some(src) if !s.contains(&src.to_string()) => format!("{s}: {src}"),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_numbered() {
        assert_eq!(
            super::numbered("a = ? AND b = ? AND c = '?'"),
            "a = $1 AND b = $2 AND c = '?'"
        );
        assert_eq!(
            super::numbered("x = ?1 OR y = ?1 AND z = ?"),
            "x = $1 OR y = $1 AND z = $2"
        );
    }
}
