//! A real `redis-server` for the store tests: on a free loopback port, nothing persisted, killed
//! by its PID when dropped, and killed or restarted on the same port for outage tests.
//!
//! Without `redis-server` installed, [`RedisServer::start`] prints a notice and returns `None`
//! (the test returns early), except under `CI=true`, where it fails: CI must run these tests
//! (`scripts/test` installs the Debian package `redis-server`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started server may take to answer `PING`.
const READY_WITHIN: Duration = Duration::from_secs(10);
/// Ports tried when the free one was taken before the server bound it.
const PORT_TRIES: usize = 5;

/// A `redis-server` process this test started.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free loopback port and waits until it answers `PING`.
    ///
    /// `None` when `redis-server` is not installed (and `CI` is not `true`).
    pub fn start() -> Option<Self> {
        let Some(version) = installed() else {
            let message = "redis-server is not installed (Debian package `redis-server`; `scripts/test` installs it)";
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}: CI must run the store tests");
            // Straight to stderr, past the test harness's capture, so the skip shows in every run.
            let _ = writeln!(std::io::stderr(), "skipped: {message}");
            return None;
        };
        for _ in 0..PORT_TRIES {
            let port = free_port();
            let mut server = Self { port, child: None };
            if server.spawn(version) {
                return Some(server);
            }
        }
        panic!("redis-server did not start on any of {PORT_TRIES} free ports");
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL by its PID: no shutdown, connections reset) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (after [`kill`](Self::kill)), empty.
    pub fn restart(&mut self) {
        self.kill();
        let version = installed().expect("redis-server was installed when the test started");
        assert!(self.spawn(version), "redis-server did not start again on port {}", self.port);
    }

    /// Spawns the server on `self.port`; whether it answers `PING` (false when it exited, e.g.
    /// because the port was taken).
    fn spawn(&mut self, version: u32) -> bool {
        let port = self.port.to_string();
        let mut command = Command::new("redis-server");
        command.args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        command.args(["--dir", env!("CARGO_TARGET_TMPDIR"), "--logfile", ""]);
        if version >= 7 {
            // `DEBUG SLEEP` for the slow-command test; from loopback clients only.
            command.args(["--enable-debug-command", "local"]);
        }
        let child = command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
        let mut child = child.expect("redis-server could not be spawned");
        let deadline = Instant::now() + READY_WITHIN;
        while Instant::now() < deadline {
            if let Ok(Some(_exited)) = child.try_wait() {
                return false;
            }
            if ping(self.port) {
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server on port {port} did not answer PING within {READY_WITHIN:?}");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The major version of the installed `redis-server`, if any.
fn installed() -> Option<u32> {
    let output = Command::new("redis-server").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    // "Redis server v=7.0.15 sha=.."
    let version = text.split("v=").nth(1)?;
    Some(version.split('.').next()?.parse().unwrap_or(0))
}

/// A loopback port that refuses connections for as long as the socket lives: bound, never
/// listening, so no other test can take the port meanwhile.
pub fn refusing_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.bind(([127, 0, 0, 1], 0).into()).expect("a free loopback port");
    let port = socket.local_addr().unwrap().port();
    (socket, port)
}

/// A loopback port nothing listens on now (bound, then released).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().unwrap().port()
}

/// Whether a server on `port` answers `PING` with `+PONG`.
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut answer = [0; 7];
    stream.read_exact(&mut answer).is_ok() && &answer == b"+PONG\r\n"
}
