//! The gateways under test, each a child process pinned to its own CPU,
//! and what the kernel says each one used.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The gateways compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BffWeb,
    /// bff-web with its dashboard in Rust instead of declared: the
    /// comparator for what declaring costs (dashboard saturation only).
    BffWebRust,
    /// bff-web with its quotas counted in Redis (`shared_state.redis_url`):
    /// what sharing them across replicas costs (dashboard only).
    BffWebRedis,
    Node,
    Floor,
}

impl Kind {
    /// Whether it serves GraphQL and takes part in every scenario (the
    /// floor and the Rust-dashboard comparator only in dashboard ones).
    pub fn serves_everything(self) -> bool {
        matches!(self, Self::BffWeb | Self::Node)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::BffWeb => "bff-web",
            Self::BffWebRust => "bff-web-rust",
            Self::BffWebRedis => "bff-web-redis",
            Self::Node => "node-bff",
            Self::Floor => "floor",
        }
    }
}

/// A running gateway.
#[derive(Debug)]
pub struct Target {
    pub kind: Kind,
    pub addr: SocketAddr,
    child: Child,
}

/// Where the binaries and the Node peer are, and how to pin.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    pub bin_dir: &'a Path,
    pub repo: &'a Path,
    /// `taskset -c <cpu>` for the gateways; `None`: not pinned.
    pub pin_cpu: Option<usize>,
    pub secret: &'a str,
    pub upstreams: [String; 3],
    /// The `redis-server` bff-web-redis counts its quotas in.
    pub redis_url: Option<String>,
}

impl Target {
    pub fn start(kind: Kind, launch: &Launch<'_>) -> std::io::Result<Self> {
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let [users, orders, notifications] = &launch.upstreams;
        let mut command = match launch.pin_cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &cpu.to_string()]);
                c
            }
            None => Command::new("env"),
        };
        // A profiler in front of the gateway, e.g.
        // BENCH_WRAP="valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out".
        if let Ok(wrap) = std::env::var("BENCH_WRAP") {
            command.args(wrap.split_whitespace());
        }
        match kind {
            Kind::BffWeb | Kind::BffWebRust | Kind::BffWebRedis => {
                let binary = match kind {
                    Kind::BffWebRust => "bff-web-rust-dashboard",
                    _ => "bff-web",
                };
                if kind == Kind::BffWebRedis {
                    let url = launch.redis_url.as_deref().ok_or_else(|| {
                        std::io::Error::other("bff-web-redis needs a redis-server")
                    })?;
                    // Every check goes to Redis: a slow answer under
                    // saturation must not turn into the local fallback.
                    command
                        .env("BFF_SHARED_STATE__REDIS_URL", url)
                        .env("BFF_SHARED_STATE__COMMAND_TIMEOUT", "1s");
                }
                command
                    .arg(launch.bin_dir.join(binary))
                    .env("BFF_LISTEN", addr.to_string())
                    .env("BFF_AUTH__HS256_SECRET", launch.secret)
                    .env("BFF_UPSTREAMS__USERS__URL", users)
                    .env("BFF_UPSTREAMS__ORDERS__URL", orders)
                    .env("BFF_UPSTREAMS__NOTIFICATIONS__URL", notifications)
                    // The quotas stay on (their cost is measured) but high
                    // enough that the benchmark's users never reach them.
                    .env("BFF_RATE_LIMIT__PER_SECOND", "1000000")
                    .env("BFF_RATE_LIMIT__BURST", "1000000")
                    .env("BFF_RATE_LIMIT__PER_IP_PER_SECOND", "1000000")
                    .env("BFF_RATE_LIMIT__PER_IP_BURST", "1000000")
                    .env("BFF_UPSTREAMS__ALL__MAX_IN_FLIGHT", "2048")
                    .env("BFF_HTTP__DRAIN_DELAY", "0s");
            }
            Kind::Node => {
                command
                    .arg("node")
                    .arg(launch.repo.join("bench/peers/node-bff/server.js"))
                    .env("NODE_ENV", "production")
                    .env("PORT", port.to_string())
                    .env("JWT_SECRET", launch.secret)
                    .env("USERS_URL", users)
                    .env("ORDERS_URL", orders)
                    .env("NOTIFICATIONS_URL", notifications);
            }
            Kind::Floor => {
                command.arg(launch.bin_dir.join("bff-floor")).args([
                    &addr.to_string(),
                    users,
                    orders,
                    notifications,
                ]);
            }
        }
        // Logs go where production sends them: a pipe nobody reads here.
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let target = Self { kind, addr, child };
        target.wait_until_listening()?;
        Ok(target)
    }

    fn wait_until_listening(&self) -> std::io::Result<()> {
        for _ in 0..300 {
            if std::net::TcpStream::connect(self.addr).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(std::io::Error::other(format!(
            "{} did not start listening on {}",
            self.kind.name(),
            self.addr
        )))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User plus system CPU time used so far.
    pub fn cpu_time(&self) -> Duration {
        cpu_time(self.pid()).unwrap_or_default()
    }

    /// Peak resident memory so far, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        status_field(self.pid(), "VmHWM:").unwrap_or(0)
    }
}

impl Drop for Target {
    /// SIGTERM first (a profiler in `BENCH_WRAP` writes its output on a
    /// clean exit), SIGKILL after 20 s.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..200 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time of this process: the load generator and the upstreams.
pub fn own_cpu_time() -> Duration {
    cpu_time(std::process::id()).unwrap_or_default()
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// utime + stime of `pid` from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields start after its `)`.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = clock_ticks_per_second();
    Some(Duration::from_secs_f64((utime + stime) as f64 / ticks))
}

/// `getconf CLK_TCK`: 100 on every Linux this runs on, asked anyway.
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
