//! Starting and stopping real `kreislauf` processes.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_kreislauf");

/// Runs a CLI command against `data_dir`; panics with its output if it fails.
pub fn cli(data_dir: &Path, args: &[&str]) -> String {
    let out = cli_output(data_dir, args);
    assert!(
        out.status.success(),
        "kreislauf {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn cli_output(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("KREISLAUF_DATABASE_URL")
        .env("KREISLAUF_LOG", "warn")
        .output()
        .expect("run kreislauf")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A running `kreislauf serve`.
pub struct ServerProcess {
    pub child: Child,
    pub base: String,
}

impl ServerProcess {
    pub fn start(data_dir: &Path) -> ServerProcess {
        let port = free_port();
        let child = Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data_dir)
            .env_remove("KREISLAUF_DATABASE_URL")
            .env("KREISLAUF_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start kreislauf serve");
        let server = ServerProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        server.wait_healthy();
        server
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(r) = probe::healthy(&format!("{}/healthz", self.base)) {
                if r {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server at {} did not become healthy", self.base);
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill_9(mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }

    /// SIGTERM: graceful shutdown.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().expect("wait")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

mod probe {
    //! A tiny blocking health probe without pulling a blocking HTTP client into the tests.
    use std::io::{Read, Write};
    use std::net::TcpStream;

    pub fn healthy(url: &str) -> std::io::Result<bool> {
        let rest = url.trim_start_matches("http://");
        let (host, path) = rest
            .split_once('/')
            .map(|(h, p)| (h, format!("/{p}")))
            .unwrap_or((rest, "/".into()));
        let mut stream = TcpStream::connect(host)?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response.starts_with("HTTP/1.1 200"))
    }
}

/// Whether tests needing external tools must fail instead of skip.
pub fn services_required() -> bool {
    std::env::var("KREISLAUF_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Skips (with a notice) or fails, depending on KREISLAUF_REQUIRE_SERVICES.
pub fn skip_or_fail(test: &str, why: &str) {
    assert!(
        !services_required(),
        "{test}: {why} (KREISLAUF_REQUIRE_SERVICES=1)"
    );
    eprintln!("SKIPPED {test}: {why}");
}
