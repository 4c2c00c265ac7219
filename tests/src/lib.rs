//! Helpers for the end-to-end tests: the real server on `127.0.0.1:0` over a temp data
//! dir, real receivers, and TOTP codes computed independently of the host's code.

pub mod browser;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use switchyard::clock::{Clock, ManualClock, SharedClock, SystemClock};
use switchyard::config::Config;
use switchyard::service::tenants::Initialized;
use switchyard::store::Store;
use tokio::sync::{Mutex, mpsc, oneshot, watch};

/// An RFC 6238 TOTP code (SHA-1, 6 digits, 30 s) computed here, not by the host.
pub fn totp_code(secret_b32: &str, unix_ms: u64) -> String {
    let key = totp_rs::Secret::Encoded(secret_b32.to_owned())
        .to_bytes()
        .expect("base32 secret");
    let counter = (unix_ms / 1000 / 30).to_be_bytes();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&key).expect("any key length");
    mac.update(&counter);
    let digest = mac.finalize().into_bytes();
    let offset = (digest[19] & 0x0f) as usize;
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!("{:06}", binary % 1_000_000)
}

/// Waits until `check` returns `Some`, for at most `within`.
pub async fn eventually<T, F, Fut>(within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A request a [`TestReceiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

impl Received {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// A real HTTP receiver on port 0 that reports every request and answers a status
/// that the test can switch.
pub struct TestReceiver {
    /// Where it listens.
    pub url: String,
    status: Arc<AtomicU16>,
    hang: Arc<watch::Sender<bool>>,
    rx: Mutex<mpsc::UnboundedReceiver<Received>>,
}

impl TestReceiver {
    /// Starts a receiver answering 200.
    pub async fn start() -> Self {
        let status = Arc::new(AtomicU16::new(200));
        let hang = Arc::new(watch::Sender::new(false));
        let (tx, rx) = mpsc::unbounded_channel();
        let (answer, hanging) = (status.clone(), hang.clone());
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let (tx, answer, mut hanging) = (tx.clone(), answer.clone(), hanging.subscribe());
            async move {
                let _ = tx.send(Received { headers, body });
                // Held until released (or the sender gives up).
                let _ = hanging.wait_for(|hang| !hang).await;
                let status =
                    StatusCode::from_u16(answer.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK);
                // Redirects point at a place that must never be followed.
                (status, [("location", "http://127.0.0.1:9/elsewhere")])
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{addr}/hook"),
            status,
            hang,
            rx: Mutex::new(rx),
        }
    }

    /// Answers `status` from now on.
    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Holds every request from now on, unanswered with the connection open, until
    /// [`Self::release`].
    pub fn hang(&self) {
        self.hang.send_replace(true);
    }

    /// Answers the requests it holds, and every one after.
    pub fn release(&self) {
        self.hang.send_replace(false);
    }

    /// The next request, waiting at most `within`.
    pub async fn next(&self, within: Duration) -> Received {
        tokio::time::timeout(within, self.rx.lock().await.recv())
            .await
            .expect("a webhook arrived in time")
            .expect("receiver channel open")
    }

    /// True when no request arrives within `quiet`.
    pub async fn nothing_within(&self, quiet: Duration) -> bool {
        tokio::time::timeout(quiet, self.rx.lock().await.recv())
            .await
            .is_err()
    }
}

/// A running host with its super-admin credentials.
pub struct TestServer {
    /// The host's address.
    pub addr: SocketAddr,
    /// The super-admin credentials `init` printed.
    pub admin: Initialized,
    /// The manual clock, when the server runs on one.
    pub clock: Option<Arc<ManualClock>>,
    /// The configuration it runs with.
    pub config: Config,
    /// An HTTP client.
    pub http: reqwest::Client,
    data: Arc<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// A change to the config before the server starts.
pub type Configure = Box<dyn FnOnce(&mut Config) + Send>;

/// How to start a [`TestServer`].
#[derive(Default)]
pub struct Options {
    /// Run on a manual clock starting here (ms since the epoch).
    pub manual_clock_at: Option<u64>,
    /// Change the config before starting.
    pub configure: Option<Configure>,
}

impl TestServer {
    /// Starts a host on a fresh data dir with the real clock.
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    /// Starts a host on a fresh data dir.
    pub async fn start_with(options: Options) -> Self {
        Self::start_prepared(options, |_, _| {}).await
    }

    /// Starts a host on a fresh data dir after `prepare` changed what `init` stored: for
    /// state no endpoint creates (a user enrolled in TOTP, say).
    pub async fn start_prepared(
        options: Options,
        prepare: impl FnOnce(&dyn Store, &Initialized),
    ) -> Self {
        let data = Arc::new(tempfile::tempdir().expect("temp data dir"));
        let mut config = Config {
            data_dir: data.path().to_owned(),
            ..Config::default()
        };
        config.delivery.allow_private_targets = true;
        config.delivery.timeout = Duration::from_secs(5);
        // Loading compiles every built-in plugin and asks it to describe itself; on a
        // busy 2-core machine running tests in parallel that can exceed the 1 s default.
        config.plugins.call_timeout = Duration::from_secs(20);
        if let Some(configure) = options.configure {
            configure(&mut config);
        }
        let admin = switchyard::init(&config, switchyard::DEFAULT_TENANT).expect("init");
        {
            // Closed again before the server opens it: sled locks its directory.
            let store = switchyard::open_store(&config).expect("open store");
            prepare(&store, &admin);
            store.flush().expect("flush store");
        }
        let clock = options.manual_clock_at.map(ManualClock::new);
        Self::launch(config, admin, clock, data).await
    }

    async fn launch(
        mut config: Config,
        admin: Initialized,
        clock: Option<Arc<ManualClock>>,
        data: Arc<tempfile::TempDir>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind host");
        let addr = listener.local_addr().expect("host address");
        config.public_url = format!("http://{addr}");
        let shared: SharedClock = match &clock {
            Some(c) => c.clone(),
            None => Arc::new(SystemClock),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let server = switchyard::Server::new(config.clone()).with_clock(shared);
        let task = tokio::spawn(server.run(listener, async move {
            let _ = stopped.await;
        }));
        let this = Self {
            addr,
            admin,
            clock,
            config,
            http: reqwest::Client::new(),
            data,
            stop: Some(stop),
            task: Some(task),
        };
        // Generous: the first start on a cold machine compiles every built-in plugin.
        eventually(Duration::from_secs(180), || async {
            let r = this.http.get(this.url("/readyz")).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await;
        this
    }

    /// Stops the host gracefully and starts a new one on the same data dir.
    pub async fn restart(self, clock: Option<Arc<ManualClock>>) -> Self {
        self.relaunch(clock, || {}).await
    }

    /// Stops the host gracefully and starts a new one on the same data dir with the publish
    /// journal as it was before the stop (a graceful stop empties it): a restart after a
    /// crash in which the store kept every write, so every journaled event is replayed.
    pub async fn restart_replaying_the_journal(self) -> Self {
        let journal = switchyard::journal_path(&self.config);
        let kept = std::fs::read(&journal).expect("read the publish journal");
        assert!(!kept.is_empty(), "nothing journaled to replay");
        self.relaunch(None, move || {
            std::fs::write(&journal, kept).expect("put the publish journal back");
        })
        .await
    }

    /// Stops the host gracefully, runs `meanwhile`, and starts a new one on the same data
    /// dir.
    async fn relaunch(mut self, clock: Option<Arc<ManualClock>>, meanwhile: impl FnOnce()) -> Self {
        self.shutdown().await;
        meanwhile();
        let (config, admin, data) = (self.config.clone(), self.admin.clone(), self.data.clone());
        Self::launch(config, admin, clock, data).await
    }

    /// Stops the host gracefully.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }

    /// A URL on the host.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The tenant API's base URL.
    pub fn base_url(&self) -> String {
        self.url(&format!("/t/{}/v1", self.admin.tenant))
    }

    /// The host's current time.
    pub fn now_ms(&self) -> u64 {
        match &self.clock {
            Some(c) => c.now_ms(),
            None => SystemClock.now_ms(),
        }
    }

    /// Logs the super-admin in and returns an API client with the access token.
    pub async fn api(&self) -> Api {
        let account = &self.admin.api_account;
        self.api_as(&account.id, &account.token, &account.totp_secret, 0)
            .await
    }

    /// Logs an API account in with the code of `step_offset` steps from now (a test
    /// that logs in twice within one step uses the next one, inside the skew window).
    pub async fn login_as(
        &self,
        account: &str,
        token: &str,
        totp_secret: &str,
        step_offset: u64,
    ) -> reqwest::Response {
        let code = totp_code(totp_secret, self.now_ms() + step_offset * 30_000);
        self.http
            .post(self.url("/auth/login"))
            .json(&json!({"account": account, "token": token, "totp": code}))
            .send()
            .await
            .expect("login request")
    }

    /// Logs an API account in, expecting success, and returns its client.
    pub async fn api_as(
        &self,
        account: &str,
        token: &str,
        totp_secret: &str,
        step_offset: u64,
    ) -> Api {
        let response = self
            .login_as(account, token, totp_secret, step_offset)
            .await;
        Api::from_login(&self.http, response)
            .await
            .expect("login succeeds")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A logged-in client of the tenant API.
#[derive(Clone)]
pub struct Api {
    /// The HTTP client.
    pub http: reqwest::Client,
    /// The base URL login returned.
    pub base: String,
    /// The access token.
    pub token: String,
}

impl Api {
    /// Logs an API account in at the host at `host_url` with the current TOTP code.
    pub async fn login(
        http: &reqwest::Client,
        host_url: &str,
        account: &str,
        token: &str,
        totp_secret: &str,
    ) -> anyhow::Result<Self> {
        let code = totp_code(totp_secret, SystemClock.now_ms());
        let response = http
            .post(format!("{host_url}/auth/login"))
            .json(&json!({"account": account, "token": token, "totp": code}))
            .send()
            .await
            .context("login request")?;
        Self::from_login(http, response).await
    }

    /// The client a successful login answer gives.
    async fn from_login(
        http: &reqwest::Client,
        response: reqwest::Response,
    ) -> anyhow::Result<Self> {
        let status = response.status();
        let body: Value = response.json().await.context("login JSON")?;
        anyhow::ensure!(status == 200, "login answered {status}: {body}");
        let field = |name: &str| {
            body[name]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("login answer without {name}: {body}"))
        };
        Ok(Self {
            http: http.clone(),
            base: field("base_url")?,
            token: field("access_token")?,
        })
    }

    /// Sends a request with the token; returns the status and the JSON body (or `null`).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.context("request")?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).with_context(|| format!("JSON answer: {text}"))?
        };
        Ok((status, json))
    }

    /// `GET`, expecting 200.
    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self
            .call(reqwest::Method::GET, path, None)
            .await
            .expect("GET");
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// `POST` with a JSON body, expecting `expect`.
    pub async fn post(&self, path: &str, body: Value, expect: u16) -> Value {
        let (status, answer) = self
            .call(reqwest::Method::POST, path, Some(body))
            .await
            .expect("POST");
        assert_eq!(status, expect, "POST {path}: {answer}");
        answer
    }

    /// `POST`s raw component bytes (`Content-Type: application/wasm`) to `path`, which is
    /// relative to the base URL unless it starts with `http`; returns the status and the
    /// JSON answer.
    pub async fn upload(&self, path: &str, bytes: Vec<u8>) -> anyhow::Result<(u16, Value)> {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let response = self
            .http
            .post(url)
            .bearer_auth(&self.token)
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .context("upload")?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, json))
    }

    /// A client of the same base URL with another access token.
    pub fn with_token(&self, token: &str) -> Api {
        Api {
            token: token.to_owned(),
            ..self.clone()
        }
    }

    /// `PATCH` with a JSON body, expecting `expect`.
    pub async fn patch(&self, path: &str, body: Value, expect: u16) -> Value {
        let (status, answer) = self
            .call(reqwest::Method::PATCH, path, Some(body))
            .await
            .expect("PATCH");
        assert_eq!(status, expect, "PATCH {path}: {answer}");
        answer
    }

    /// The status of a call.
    pub async fn status(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> u16 {
        self.call(method, path, body).await.expect("request").0
    }

    /// Adds a receiver, expecting 201; returns its id.
    pub async fn add_receiver(&self, body: Value) -> String {
        let created = self.post("/receivers", body, 201).await;
        created["id"].as_str().expect("receiver id").to_owned()
    }

    /// Publishes an event, expecting 202; returns its id.
    pub async fn publish(&self, topic: &str, subject: Value, payload: Value) -> String {
        let answer = self
            .post(
                "/events",
                json!({"topic": topic, "subject": subject, "payload": payload}),
                202,
            )
            .await;
        answer["id"].as_str().expect("event id").to_owned()
    }
}

/// Components the end-to-end tests upload, built by `tests/build.rs`.
pub mod plugins {
    include!(concat!(env!("OUT_DIR"), "/plugin_paths.rs"));
}
