//! Real servers for the tests that need them: `redis-server` and `haproxy`
//! from Debian and the npm `oidc-provider` (installed by `scripts/setup`),
//! each started on a free loopback port, waited for, and killed when
//! dropped.

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port nobody listens on right now (the kernel's pick, released).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until `probe` succeeds, for at most `within`.
fn wait_until(within: Duration, mut probe: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if probe() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn spawn(command: &mut Command, what: &str) -> io::Result<Child> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("{what} did not start ({error}); `bash scripts/setup` installs it"),
            )
        })
}

/// A `redis-server` on loopback, without persistence.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts one on a free port and waits until it answers `PING`.
    pub fn start() -> io::Result<Self> {
        let mut last_error = None;
        for _ in 0..5 {
            let mut server = Self {
                child: None,
                port: free_port()?,
            };
            match server.restart() {
                Ok(()) => return Ok(server),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("redis-server did not start")))
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (its data is gone).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        let port = self.port.to_string();
        let child = spawn(
            Command::new("redis-server").args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ]),
            "redis-server",
        )?;
        self.child = Some(child);
        if wait_until(Duration::from_secs(10), || self.ping()) {
            Ok(())
        } else {
            self.stop();
            Err(io::Error::other(format!(
                "redis-server on port {port} did not answer"
            )))
        }
    }

    /// Whether it answers `PING` now.
    pub fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The npm `oidc-provider` (panva's certified OpenID provider) on
/// loopback, from `tests/oidc-provider/` (installed by `scripts/setup`):
/// one confidential client, any user id a user, the development login and
/// consent pages, a signing key made at each start.
#[derive(Debug)]
pub struct OidcProvider {
    child: Child,
    port: u16,
    env: Vec<(&'static str, String)>,
}

/// The client an [`OidcProvider`] registers.
#[derive(Debug, Clone)]
pub struct OidcClient<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub redirect_uri: &'a str,
    pub post_logout_redirect_uri: &'a str,
    /// How long its access tokens live.
    pub access_token_ttl: Duration,
}

impl OidcProvider {
    /// Starts one on a free port and waits until it answers.
    pub fn start(client: &OidcClient<'_>) -> io::Result<Self> {
        let port = free_port()?;
        let env = vec![
            ("PORT", port.to_string()),
            ("CLIENT_ID", client.client_id.to_owned()),
            ("CLIENT_SECRET", client.client_secret.to_owned()),
            ("REDIRECT_URI", client.redirect_uri.to_owned()),
            (
                "POST_LOGOUT_REDIRECT_URI",
                client.post_logout_redirect_uri.to_owned(),
            ),
            (
                "ACCESS_TOKEN_TTL",
                client.access_token_ttl.as_secs().max(1).to_string(),
            ),
        ];
        let child = Self::spawn(port, &env)?;
        Ok(Self { child, port, env })
    }

    fn spawn(port: u16, env: &[(&'static str, String)]) -> io::Result<Child> {
        let server = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/oidc-provider/server.js");
        let mut command = Command::new("node");
        command.arg(server);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = spawn(&mut command, "node (tests/oidc-provider)")?;
        if wait_until(Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        }) {
            Ok(child)
        } else {
            let _ = child.kill();
            let _ = child.wait();
            Err(io::Error::other("oidc-provider did not start listening"))
        }
    }

    /// Stops it and starts it again on the same port: every session and
    /// grant it had is gone, and it signs with a new key.
    pub fn restart(&mut self) -> io::Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(self.port, &self.env)?;
        Ok(())
    }

    /// The issuer, `http://127.0.0.1:<port>`.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `haproxy` balancing round robin over some HTTP backends, with health
/// checks on `/readyz` and `X-Forwarded-For`.
#[derive(Debug)]
pub struct Haproxy {
    child: Child,
    port: u16,
    config: PathBuf,
}

impl Haproxy {
    /// Starts it in front of `backends` and waits until it accepts
    /// connections.
    pub fn start(backends: &[SocketAddr]) -> io::Result<Self> {
        let port = free_port()?;
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, addr)| format!("    server bff{i} {addr} check\n"))
            .collect();
        let config =
            std::env::temp_dir().join(format!("bff-haproxy-{}-{port}.cfg", std::process::id()));
        std::fs::write(
            &config,
            format!(
                "global\n    maxconn 1024\n\
                 defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n    \
                 timeout server 30s\n    retries 3\n    option redispatch\n    \
                 option forwardfor\n    default-server inter 200ms fall 2 rise 2\n\
                 frontend bff\n    bind 127.0.0.1:{port}\n    default_backend replicas\n\
                 backend replicas\n    balance roundrobin\n    option httpchk GET /readyz\n\
                 {servers}"
            ),
        )?;
        // Debian installs it in /usr/sbin, not on every user's PATH.
        let program = ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy"]
            .into_iter()
            .find(|path| std::path::Path::new(path).exists())
            .unwrap_or("haproxy");
        let child = spawn(
            Command::new(program).arg("-db").arg("-f").arg(&config),
            "haproxy",
        )?;
        let proxy = Self {
            child,
            port,
            config,
        };
        if wait_until(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        }) {
            Ok(proxy)
        } else {
            Err(io::Error::other("haproxy did not start listening"))
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}
