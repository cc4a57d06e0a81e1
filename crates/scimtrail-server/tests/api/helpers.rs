use std::sync::Arc;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use scimtrail_core::Registry;
use scimtrail_server::{auth, AppState, ServerConfig};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const TOKEN: &str = "test-admin-token-0123456789";

pub struct TestApp {
    pub addr: String,
    pub client: reqwest::Client,
    /// Keeps the database directory alive as long as the server.
    pub dir: TempDir,
    /// The PostgreSQL schema of the database, when the tests run on PostgreSQL.
    pub pg: Option<scimtrail_store_sql::testing::PgSchema>,
    pub store: Arc<dyn scimtrail_store::Store>,
    shutdown: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn request_id(&self) -> String {
        self.header("x-request-id")
            .expect("every response has X-Request-Id")
            .to_string()
    }
    pub fn id(&self) -> String {
        self.body["id"].as_str().expect("resource id").to_string()
    }
    /// Assert a SCIM error with the given status and scimType.
    pub fn assert_error(&self, status: u16, scim_type: Option<&str>) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(
            self.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
            "{}",
            self.body
        );
        assert_eq!(self.body["status"], status.to_string());
        assert!(self
            .body
            .get("detail")
            .and_then(Value::as_str)
            .is_some_and(|d| !d.is_empty()));
        assert!(self.body.as_object().unwrap().contains_key("scimType"));
        assert_eq!(self.body["scimType"].as_str(), scim_type, "{}", self.body);
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_with(ServerConfig {
        system_name: "test-system".into(),
        checkpoint_interval: std::time::Duration::from_millis(50),
        ..Default::default()
    })
    .await
}

pub async fn spawn_with(config: ServerConfig) -> TestApp {
    spawn_with_registry(config, Registry::builtin()).await
}

/// A server that knows the schemas and resource types of `registry`.
pub async fn spawn_with_registry(config: ServerConfig, registry: Registry) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let pg = postgres_backend().then(|| {
        scimtrail_store_sql::testing::PgSchema::create()
            .expect("SCIMTRAIL_TEST_BACKEND=postgres needs TEST_DATABASE_URL")
    });
    let url = match &pg {
        Some(schema) => schema.url.clone(),
        None => format!("sqlite://{}/scimtrail.db", dir.path().display()),
    };
    let registry = Arc::new(registry);
    let store = scimtrail_store_sql::connect(&url, registry.clone())
        .await
        .unwrap();
    auth::bootstrap(store.as_ref(), Some(TOKEN), "default", "test-system")
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let store_handle: Arc<dyn scimtrail_store::Store> = store.clone();
    let state = AppState::new(store.clone(), registry, config);
    let (tx, rx) = oneshot::channel::<()>();
    let served = tokio::spawn(scimtrail_server::serve(listener, state, async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        client: reqwest::Client::new(),
        dir,
        pg,
        store: store_handle,
        shutdown: Some(tx),
        served: Some(served),
    }
}

/// Whether this run keeps its databases on PostgreSQL (`SCIMTRAIL_TEST_BACKEND=postgres`,
/// with `TEST_DATABASE_URL`; `.ci/run` runs the API tests so as well).
pub fn postgres_backend() -> bool {
    std::env::var("SCIMTRAIL_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

impl TestApp {
    /// Everything the database stores, as text to search for secrets: each file of an SQLite
    /// database, or each table of a PostgreSQL schema (every row as text).
    pub fn stored_texts(&self) -> Vec<String> {
        let Some(pg) = &self.pg else {
            return std::fs::read_dir(self.dir.path())
                .unwrap()
                .map(|e| {
                    String::from_utf8_lossy(&std::fs::read(e.unwrap().path()).unwrap()).into_owned()
                })
                .collect();
        };
        let url = pg.url.clone();
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let tables: Vec<String> = c
                .query(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()",
                    &[],
                )
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            tables
                .iter()
                .map(|t| {
                    c.query_one(
                        &format!("SELECT coalesce(string_agg(x::text, '\n'), '') FROM {t} x"),
                        &[],
                    )
                    .unwrap()
                    .get::<_, String>(0)
                })
                .collect()
        })
        .join()
        .unwrap()
    }

    /// The bytes the database takes: its files, or its schema's tables with their indexes.
    pub fn stored_bytes(&self) -> u64 {
        let Some(pg) = &self.pg else {
            return std::fs::read_dir(self.dir.path())
                .unwrap()
                .map(|e| e.unwrap().metadata().map(|m| m.len()).unwrap_or(0))
                .sum();
        };
        let url = pg.url.clone();
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            c.query_one(
                "SELECT CAST(coalesce(sum(pg_total_relation_size(c.oid)), 0) AS BIGINT) \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relkind = 'r'",
                &[],
            )
            .unwrap()
            .get::<_, i64>(0) as u64
        })
        .join()
        .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(TOKEN);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        into_resp(req.send().await.unwrap()).await
    }

    pub async fn raw(&self, req: reqwest::RequestBuilder) -> Resp {
        into_resp(req.send().await.unwrap()).await
    }

    /// Stop the server as SIGTERM would, and wait until it has finished.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.served.take() {
            let _ = s.await;
        }
    }

    /// Another token, with these scopes; returns the token.
    pub async fn extra_token(&self, name: &str, scopes: &[&str]) -> String {
        let token = format!("{name}-token-{}", uuid_like());
        let by = auth::Admin::operator("test");
        auth::create_token(
            self.store.as_ref(),
            &token,
            name,
            scopes,
            "default",
            &by,
            "token.create",
        )
        .await
        .unwrap();
        token
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None, &[]).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(&body), &[]).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PUT, path, Some(&body), &[]).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PATCH, path, Some(&body), &[]).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, None, &[]).await
    }

    pub async fn create_user(&self, user_name: &str) -> Resp {
        let r = self
            .post(
                "/scim/v2/Users",
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name,
                       "name": {"givenName": "Given", "familyName": "Family"}, "active": true,
                       "emails": [{"value": format!("{user_name}@example.com"), "type": "work", "primary": true}]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        r
    }

    pub async fn create_group(&self, name: &str, members: &[&str]) -> Resp {
        let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
        let r = self
            .post(
                "/scim/v2/Groups",
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": members}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        r
    }

    /// The audit event of a request, read through the audit API.
    pub async fn event_of(&self, request_id: &str) -> Value {
        let filter = format!("requestId eq \"{request_id}\"");
        let r = self
            .get(&format!("/audit/v1/events?filter={}", enc(&filter)))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let items = r.body["Resources"].as_array().unwrap();
        assert_eq!(
            items.len(),
            1,
            "exactly one event for request {request_id}: {}",
            r.body
        );
        items[0].clone()
    }

    /// Every event, oldest first.
    pub async fn all_events(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = "/audit/v1/events?sortOrder=ascending&count=1000".to_string();
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let r = self.get(&path).await;
            assert_eq!(r.status, 200, "{}", r.body);
            out.extend(r.body["Resources"].as_array().unwrap().iter().cloned());
            match r.body["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return out,
            }
        }
    }
}

async fn into_resp(r: reqwest::Response) -> Resp {
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Resp {
        status,
        headers,
        body,
    }
}

/// Percent-encode a query value.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl TestApp {
    /// Wait (bounded) for a signed checkpoint of at least `size` leaves; returns its note.
    pub async fn checkpoint_at_least(&self, size: u64) -> String {
        for _ in 0..100 {
            let r = self
                .client
                .get(format!("http://{}/audit/v1/checkpoint", self.addr))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap();
            if r.status() == 200 {
                let note = r.text().await.unwrap();
                let n: u64 = note.lines().nth(1).unwrap().parse().unwrap();
                if n >= size {
                    return note;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no checkpoint of size {size} within 5 s");
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("http://{}{path}", self.addr))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{t:x}{}", N.fetch_add(1, Ordering::Relaxed))
}
