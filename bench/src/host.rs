//! The host under test in a process of its own: the bench executable started again with
//! `--host-config <file>`. Its memory and CPU time are then the host's alone, apart from
//! the receivers and the load generator that share the machine with it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use switchyard::config::Config;
use switchyard::service::tenants::Initialized;
use switchyard_tests::Api;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// Linux reports CPU time in `/proc` in ticks of `USER_HZ`, fixed at 100 by its ABI.
const TICKS_PER_S: f64 = 100.0;

/// Starts hosts: which executable, and the precompiled-plugin cache they share.
#[derive(Debug, Clone)]
pub struct Launcher {
    /// An executable that runs the host when given `--host-config <file>` (the bench
    /// binary itself).
    pub exe: PathBuf,
    /// The precompiled-plugin cache every host of a run shares, as a real restart does.
    pub cache_dir: PathBuf,
}

/// A child process of the harness that serves HTTP: the host, or the relay.
pub struct Process {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
}

/// A host running in a child process on a fresh temp data dir.
pub struct HostProcess {
    /// The process, with the host's address.
    pub process: Process,
    /// The super-admin credentials `init` returned.
    pub admin: Initialized,
    /// The configuration it runs with.
    pub config: Config,
    http: reqwest::Client,
    _data: tempfile::TempDir,
}

impl Launcher {
    /// The host configuration of every scenario: release defaults, except loopback
    /// receivers allowed, `timeout` per attempt, a one-entry retry schedule, an operator
    /// token, and as many attempts in flight per receiver as in all (the baseline sends
    /// with that many requests in flight to one receiver).
    fn config(&self, data_dir: &Path, timeout: Duration) -> Config {
        let mut config = Config {
            data_dir: data_dir.to_owned(),
            operator_token: Some(crate::scenarios::OPERATOR_TOKEN.into()),
            ..Config::default()
        };
        config.delivery.allow_private_targets = true;
        config.delivery.per_receiver_concurrency = config.delivery.concurrency;
        config.delivery.timeout = timeout;
        config.delivery.retry_schedule = vec![Duration::from_secs(1)];
        config.plugins.cache_dir = Some(self.cache_dir.clone());
        config
    }

    /// Initialises a fresh data dir and starts a host on it; returns once `/readyz`
    /// answers 200.
    pub async fn start(&self, timeout: Duration) -> anyhow::Result<HostProcess> {
        self.start_with(timeout, |_| {}).await
    }

    /// [`Self::start`], with the scenario's own changes to the configuration.
    pub async fn start_with(
        &self,
        timeout: Duration,
        configure: impl FnOnce(&mut Config),
    ) -> anyhow::Result<HostProcess> {
        let data = tempfile::tempdir()?;
        let mut config = self.config(data.path(), timeout);
        configure(&mut config);
        let admin = switchyard::init(&config, switchyard::DEFAULT_TENANT)?;
        let path = data.path().join("host-config.json");
        std::fs::write(&path, serde_json::to_vec(&config)?)?;
        let process = self.spawn(&path).await?;
        let host = HostProcess {
            process,
            admin,
            config,
            http: reqwest::Client::new(),
            _data: data,
        };
        host.wait_ready(Duration::from_secs(180)).await?;
        Ok(host)
    }

    /// Starts the host on the data dir of `host`, which must be stopped; returns the new
    /// host and the time from spawning it to `/readyz` answering 200.
    pub async fn restart(&self, host: HostProcess) -> anyhow::Result<(HostProcess, Duration)> {
        let HostProcess {
            process,
            admin,
            config,
            http,
            _data,
        } = host;
        anyhow::ensure!(process.child.id().is_none(), "restart needs a stopped host");
        let started = Instant::now();
        let process = self.spawn(&_data.path().join("host-config.json")).await?;
        let host = HostProcess {
            process,
            admin,
            config,
            http,
            _data,
        };
        host.wait_ready(Duration::from_secs(30)).await?;
        Ok((host, started.elapsed()))
    }

    async fn spawn(&self, config: &Path) -> anyhow::Result<Process> {
        Process::spawn(&self.exe, "--host-config", config).await
    }
}

impl Process {
    /// Starts `exe` with `flag <config>` and waits for the address it listens on. It logs
    /// into `host.log` beside its config, out of the table.
    pub async fn spawn(exe: &Path, flag: &str, config: &Path) -> anyhow::Result<Self> {
        let log_path = config.with_file_name("host.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let mut child = Command::new(exe)
            .arg(flag)
            .arg(config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        let stdout = child.stdout.take().context("the child's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .context("the child did not say where it listens within 60 s")??
            .context("the child exited before listening")?;
        let addr = line
            .strip_prefix(LISTENING)
            .and_then(|a| a.trim().parse().ok())
            .with_context(|| format!("unexpected first line from the child: {line}"))?;
        Ok(Self { addr, child })
    }

    /// Its peak resident set size so far (`VmHWM`), in MiB.
    pub fn peak_rss_mb(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        crate::stats::kib_field(&status, "VmHWM:").map(|kib| kib as f64 / 1024.0)
    }

    /// The CPU time (user + system, all threads) it has used so far, in seconds.
    pub fn cpu_s(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()?)).ok()?;
        // Fields after the parenthesised command name; utime and stime are the 14th and
        // 15th of the whole line.
        let rest = &stat[stat.rfind(')')? + 2..];
        let mut fields = rest.split(' ').skip(11);
        let user: f64 = fields.next()?.parse().ok()?;
        let system: f64 = fields.next()?.parse().ok()?;
        Some((user + system) / TICKS_PER_S)
    }

    /// Stops it gracefully (its stdin closes) and waits for it to exit.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        drop(self.child.stdin.take());
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .context("it did not stop within 60 s")??;
        anyhow::ensure!(status.success(), "it exited with {status}");
        Ok(())
    }
}

/// The line a child prints first, followed by its address.
pub(crate) const LISTENING: &str = "listening on ";

impl HostProcess {
    async fn wait_ready(&self, within: Duration) -> anyhow::Result<()> {
        let ready = self.url("/readyz");
        let deadline = Instant::now() + within;
        loop {
            if matches!(self.http.get(&ready).send().await, Ok(r) if r.status().is_success()) {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the host was not ready within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// A URL on the host.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.process.addr)
    }

    /// The value of a gauge or counter on `/metrics`.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let text = self.http.get(self.url("/metrics")).send().await.ok()?;
        let text = text.text().await.ok()?;
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
    }

    /// Logs the super-admin API account in.
    pub async fn api(&self) -> anyhow::Result<Api> {
        let account = &self.admin.api_account;
        Api::login(
            &self.http,
            &self.url(""),
            &account.id,
            &account.token,
            &account.totp_secret,
        )
        .await
    }

    /// Stops the host gracefully and waits for it to exit.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.process.stop().await
    }
}

/// The child side: runs the host with the JSON config in `path` on `127.0.0.1:0`, prints
/// where it listens, and stops gracefully when its stdin closes.
pub async fn serve(path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut config: Config = serde_json::from_slice(&text)?;
    // Logging as `switchyard serve` does, so that its cost is measured too.
    switchyard::init_logging();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    config.public_url = format!("http://{addr}");
    println!("{LISTENING}{addr}");
    switchyard::run(config, listener, stdin_closed()).await
}

/// Resolves when the harness closes the child's stdin: how it asks a child to stop.
pub(crate) async fn stdin_closed() {
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
}
