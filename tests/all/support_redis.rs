//! Test support: a private `redis-server` per test, on a free port with its own data directory
//! and AOF persistence, so tests can restart it and find their data again.
//!
//! Owns only starting, stopping and restarting that process. Must never touch a Redis it did
//! not start (in particular not the default port 6379), and must not outlive the test: `Drop`
//! kills the server even when the test fails.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long a starting server may take to answer PING.
const READY_WITHIN: Duration = Duration::from_secs(5);

/// A `redis-server` child process owned by a test.
pub struct RedisServer {
    port: u16,
    dir: TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port with a fresh temporary directory, and waits until it
    /// answers PING.
    pub fn start() -> io::Result<Self> {
        let mut dir = tempfile::Builder::new().prefix("cove-redis-").tempdir()?;
        let mut last = None;
        // The free port is found by binding and releasing it, so another process can take it
        // in between; a couple of fresh ports make that harmless.
        for _ in 0..3 {
            let port = free_port()?;
            let mut server = RedisServer {
                port,
                dir,
                child: None,
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
                Err(e) => {
                    last = Some(e);
                    dir = server.take_dir()?;
                }
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("redis-server did not start")))
    }

    /// `redis://127.0.0.1:{port}/`.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (SIGKILL: with `appendfsync always` nothing acknowledged is lost) and
    /// waits for it to exit.
    pub fn stop(&mut self) -> io::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Stops the server if it runs, then starts it again on the same port and directory (so it
    /// reloads its AOF).
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop()?;
        self.spawn()
    }

    /// Hands the directory back after a failed start, replacing it with a throwaway one.
    fn take_dir(mut self) -> io::Result<TempDir> {
        let _ = self.stop();
        let empty = tempfile::tempdir()?;
        Ok(std::mem::replace(&mut self.dir, empty))
    }

    fn spawn(&mut self) -> io::Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("redis.log"))?;
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(["--save", ""])
            .args(["--bind", "127.0.0.1"])
            .args(["--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    io::Error::new(
                        e.kind(),
                        "redis-server is missing (not on PATH): install it with scripts/setup.sh",
                    )
                } else {
                    io::Error::new(e.kind(), format!("could not run redis-server: {e}"))
                }
            })?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> io::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                return Err(io::Error::other(format!(
                    "redis-server on port {} exited at start ({status}); log:\n{}",
                    self.port,
                    log_tail(self.dir.path())
                )));
            }
            if ping(self.port) {
                return Ok(());
            }
            if started.elapsed() > READY_WITHIN {
                let _ = self.stop();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "redis-server on port {} did not answer PING within {READY_WITHIN:?}; log:\n{}",
                        self.port,
                        log_tail(self.dir.path())
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Whether a server on `port` answers PING with PONG (it answers LOADING while reading its AOF,
/// which does not count).
fn ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let timeout = Some(Duration::from_secs(1));
    if stream.set_read_timeout(timeout).is_err() || stream.set_write_timeout(timeout).is_err() {
        return false;
    }
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
