//! Run the real `scimtrail` binary as a child process.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::zombie_processes
)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const TOKEN: &str = "child-process-admin-token";

pub struct Server {
    pub child: Child,
    pub base: String,
    /// Everything the process printed (stdout and stderr), as it arrives.
    pub output: Arc<Mutex<String>>,
}

/// Start `scimtrail serve` on port 0 with the database in `dir`; wait until it listens.
pub fn start(dir: &Path, env: &[(&str, &str)]) -> Server {
    let url = format!("sqlite://{}/scimtrail.db", dir.display());
    start_on(dir, &url, env)
}

/// Start `scimtrail serve` on port 0 with the database `url`, in `dir` (its data directory
/// when the database is not a file); wait until it listens.
pub fn start_on(dir: &Path, url: &str, env: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scimtrail"));
    cmd.current_dir(dir);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--database", url])
        .env("SCIMTRAIL_BOOTSTRAP_TOKEN", TOKEN)
        .env_remove("SCIMTRAIL_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start scimtrail");
    let output = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    let out = output.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            out.lock().unwrap().push_str(&format!("{line}\n"));
            let _ = tx.send(line);
        }
    });
    let mut stderr = child.stderr.take().unwrap();
    let err = output.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            err.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("server did not start; output:\n{}", output.lock().unwrap())
        });
        if let Some(rest) = line.split("listening on ").nth(1) {
            let base = rest.split_whitespace().next().unwrap().to_string();
            return Server {
                child,
                base,
                output,
            };
        }
    }
}

/// A server still running when its test ends (a panic, or a test that never stopped it) is
/// killed, so no orphan outlives the test run and competes with the next tests for the CPU.
impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(mut self) -> String {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM failed");
        let status = wait_bounded(&mut self.child, Duration::from_secs(30));
        assert!(
            status.success(),
            "graceful shutdown exits 0, got {status:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
        let out = self.output.lock().unwrap().clone();
        out
    }

    /// Wait for a clean exit after a signal was already sent.
    pub fn terminate_after_signal(mut self) -> String {
        let status = wait_bounded(&mut self.child, Duration::from_secs(30));
        assert!(
            status.success(),
            "graceful shutdown exits 0, got {status:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
        let out = self.output.lock().unwrap().clone();
        out
    }

    /// SIGKILL: no chance to clean up.
    pub fn crash(mut self) {
        self.child.kill().unwrap();
        wait_bounded(&mut self.child, Duration::from_secs(30));
    }
}

fn wait_bounded(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Run the `scimtrail` command line as the operator `ops-alice`, with no database, schema
/// files or config from the environment: `(exit code, stdout, stderr)`.
pub fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_scimtrail"))
        .args(args)
        .env("USER", "ops-alice")
        .env_remove("SCIMTRAIL_DATABASE")
        .env_remove("SCIMTRAIL_SCHEMA_FILES")
        .env_remove("SCIMTRAIL_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
