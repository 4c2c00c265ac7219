//! The HTTP client webhooks go out through: hyper's pooled client, TLS by rustls with
//! the webpki roots, timeouts, no redirects, a capped read of the answer, and the SSRF
//! guard unless private targets are allowed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{ACCEPT, AUTHORIZATION, HOST, HeaderName, HeaderValue, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use percent_encoding::percent_decode_str;
use tokio::time::{Instant, timeout_at};

use super::guard;
use crate::config::DeliveryConfig;
use crate::plugins::OutgoingRequest;

const AGENT: &str = concat!("Switchyard/", env!("CARGO_PKG_VERSION"));

/// URLs whose targets a client keeps; past this it forgets them all and starts again.
const TARGETS: usize = 4096;

/// What a receiver answered.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
}

/// Sends webhook requests.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector<guard::Resolver>>, Full<Bytes>>,
    guard: bool,
    timeout: Duration,
    max_response_bytes: usize,
    /// Each URL's target, parsed and checked once: a receiver's webhooks go to the same
    /// URL again and again.
    targets: Arc<Mutex<HashMap<String, Target>>>,
}

/// Where a URL sends a request: the URI without fragment or credentials, its `Host`
/// header, and the credentials as the value of Basic authentication.
#[derive(Debug, Clone)]
struct Target {
    uri: Uri,
    host: HeaderValue,
    basic: Option<HeaderValue>,
}

impl HttpClient {
    /// A client for `config`.
    pub fn new(config: &DeliveryConfig) -> Self {
        let guard = !config.allow_private_targets;
        let mut http = HttpConnector::new_with_resolver(guard::Resolver { public_only: guard });
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.timeout.min(Duration::from_secs(10))));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_timer(TokioTimer::new())
            .build(https);
        Self {
            client,
            guard,
            timeout: config.timeout,
            max_response_bytes: config.max_response_bytes,
            targets: Arc::default(),
        }
    }

    /// Sends `request`; an error says in words what went wrong. The timeout covers the
    /// whole exchange; an answer whose body is still coming when it runs out counts.
    pub async fn send(&self, request: OutgoingRequest) -> Result<Answer, String> {
        let deadline = Instant::now() + self.timeout;
        let request = self.build(request)?;
        let response = timeout_at(deadline, self.client.request(request))
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        // Read (and drop) at most the cap, so the connection can be reused but a huge
        // answer cannot eat memory or time.
        let _ = timeout_at(
            deadline,
            drain(response.into_body(), self.max_response_bytes),
        )
        .await;
        Ok(Answer { status })
    }

    /// The target of `url`, parsed and checked the first time it is seen.
    fn target(&self, url: &str) -> Result<Target, String> {
        let targets = || self.targets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(target) = targets().get(url) {
            return Ok(target.clone());
        }
        let target = self.parse_target(url)?;
        let mut known = targets();
        if known.len() >= TARGETS {
            known.clear();
        }
        known.insert(url.to_owned(), target.clone());
        Ok(target)
    }

    fn parse_target(&self, url: &str) -> Result<Target, String> {
        let mut url = url::Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
        if self.guard {
            guard::check_literal(&url)?;
        }
        url.set_fragment(None);
        let credentials = (!url.username().is_empty()).then(|| {
            let decode = |part: &str| percent_decode_str(part).decode_utf8_lossy().into_owned();
            let user = decode(url.username());
            let password = decode(url.password().unwrap_or_default());
            let _ = url.set_username("");
            let _ = url.set_password(None);
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        });
        let uri: Uri = url
            .as_str()
            .parse()
            .map_err(|e| format!("invalid URL: {e}"))?;
        // What hyper would otherwise format for every request. The authority has no
        // credentials left, and a port only when it is not the scheme's default (the URL
        // parser drops those).
        let authority = uri.authority().ok_or("invalid URL: no host")?;
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|_| "invalid URL: the host is not a valid header value")?;
        let basic = credentials.and_then(|c| HeaderValue::from_str(&format!("Basic {c}")).ok());
        Ok(Target { uri, host, basic })
    }

    fn build(&self, outgoing: OutgoingRequest) -> Result<Request<Full<Bytes>>, String> {
        let Target { uri, host, basic } = self.target(&outgoing.url)?;
        let method = Method::from_bytes(outgoing.method.as_bytes())
            .map_err(|_| format!("invalid method {:?}", outgoing.method))?;
        let mut request = Request::new(Full::new(Bytes::from(outgoing.body)));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        // The plugin's headers and the four below, without growing the map on the way.
        headers.reserve(outgoing.headers.len() + 4);
        for (name, value) in &outgoing.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("invalid request: invalid header name {name:?}"))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("invalid request: invalid value for header {name}"))?;
            headers.append(name, value);
        }
        headers.entry(HOST).or_insert(host);
        headers
            .entry(USER_AGENT)
            .or_insert(HeaderValue::from_static(AGENT));
        headers
            .entry(ACCEPT)
            .or_insert(HeaderValue::from_static("*/*"));
        // Credentials in the URL go as Basic authentication, never in the request line.
        if let Some(basic) = basic {
            headers.entry(AUTHORIZATION).or_insert(basic);
        }
        Ok(request)
    }
}

/// Reads and drops up to `cap` bytes of `body`.
async fn drain(mut body: Incoming, cap: usize) {
    let mut read = 0usize;
    while read < cap && !body.is_end_stream() {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
            Some(Err(_)) | None => break,
        }
    }
}

fn describe(e: &hyper_util::client::legacy::Error) -> String {
    use std::error::Error as _;
    let mut text = if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    }
    .to_owned();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    fn client(timeout: Duration) -> HttpClient {
        HttpClient::new(&DeliveryConfig {
            allow_private_targets: true,
            timeout,
            ..DeliveryConfig::default()
        })
    }

    fn post(url: String, headers: &[(&str, &str)]) -> OutgoingRequest {
        OutgoingRequest {
            method: "POST".into(),
            url,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: b"{\"n\":1}".to_vec(),
        }
    }

    /// A listener on loopback and its port.
    async fn listener() -> (TcpListener, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        (listener, port)
    }

    /// Reads a request's head and body (by its content-length) off `stream`.
    async fn read_request(stream: &mut tokio::net::TcpStream) -> String {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.expect("read");
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    return text;
                }
            }
            assert!(n > 0, "the client hung up: {text}");
        }
    }

    #[tokio::test]
    async fn a_request_goes_out_with_its_headers_and_the_url_credentials_as_basic_auth() {
        let (listener, port) = listener().await;
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let request = read_request(&mut stream).await;
            stream
                .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                .await
                .expect("write");
            request
        });
        let url = format!("http://us%40er:se%3Acret@127.0.0.1:{port}/hook?x=1#fragment");
        let answer = client(Duration::from_secs(30))
            .send(post(
                url,
                &[
                    ("content-type", "application/json"),
                    ("x-a", "1"),
                    ("x-a", "2"),
                ],
            ))
            .await
            .expect("sent");
        assert_eq!(answer.status, 204);
        let request = server.await.expect("server");
        let lines: Vec<&str> = request.lines().collect();
        assert_eq!(lines[0], "POST /hook?x=1 HTTP/1.1", "{request}");
        for header in [
            format!("host: 127.0.0.1:{port}"),
            "content-type: application/json".to_owned(),
            "x-a: 1".to_owned(),
            "x-a: 2".to_owned(),
            format!("user-agent: {AGENT}"),
            "accept: */*".to_owned(),
            format!(
                "authorization: Basic {}",
                base64::engine::general_purpose::STANDARD.encode("us@er:se:cret")
            ),
            "content-length: 7".to_owned(),
        ] {
            assert!(
                lines.contains(&header.as_str()),
                "{header} missing: {request}"
            );
        }
        assert!(request.ends_with("\r\n\r\n{\"n\":1}"), "{request}");
        assert!(
            !request.contains("cret@") && !request.contains("fragment"),
            "{request}"
        );
    }

    #[test]
    fn a_target_carries_the_host_header_hyper_would_send() {
        let c = client(Duration::from_secs(30));
        for (url, host) in [
            ("http://us:er@example.com:80/hook", "example.com"),
            ("https://example.com:443/hook", "example.com"),
            ("https://example.com:8443/hook?x=1", "example.com:8443"),
            ("http://[::1]:8080/", "[::1]:8080"),
        ] {
            let target = c.parse_target(url).expect(url);
            assert_eq!(target.host, host, "{url}");
        }
    }

    /// Answers 204 to every request on every connection `listener` accepts, and hands
    /// each request over as read.
    fn answer_all(listener: TcpListener) -> tokio::sync::mpsc::UnboundedReceiver<String> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    loop {
                        let request = read_request(&mut stream).await;
                        let answer = b"HTTP/1.1 204 No Content\r\n\r\n";
                        if tx.send(request).is_err() || stream.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        rx
    }

    #[tokio::test]
    async fn each_url_keeps_its_own_target_from_one_request_to_the_next() {
        let (listener, port) = listener().await;
        let mut requests = answer_all(listener);
        let client = client(Duration::from_secs(30));
        let with_credentials = format!("http://ada:pw@127.0.0.1:{port}/one");
        let without = format!("http://127.0.0.1:{port}/two");
        let basic = format!(
            "authorization: Basic {}",
            base64::engine::general_purpose::STANDARD.encode("ada:pw")
        );
        for (url, line, authorized) in [
            (&with_credentials, "POST /one HTTP/1.1", true),
            (&without, "POST /two HTTP/1.1", false),
            (&with_credentials, "POST /one HTTP/1.1", true),
        ] {
            let answer = client.send(post(url.clone(), &[])).await.expect("sent");
            assert_eq!(answer.status, 204);
            let request = requests.recv().await.expect("request");
            assert!(request.starts_with(line), "{request}");
            assert_eq!(request.contains(&basic), authorized, "{request}");
        }
        let guarded = HttpClient::new(&DeliveryConfig::default());
        for _ in 0..2 {
            let refused = guarded
                .send(post(without.clone(), &[]))
                .await
                .expect_err("a private address");
            assert!(refused.contains("127.0.0.1"), "{refused}");
        }
    }

    #[tokio::test]
    async fn an_https_url_is_sent_over_tls() {
        let (listener, port) = listener().await;
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut first = [0u8; 3];
            stream.read_exact(&mut first).await.expect("read");
            first
        });
        let error = client(Duration::from_secs(30))
            .send(post(format!("https://127.0.0.1:{port}/hook"), &[]))
            .await
            .expect_err("no TLS server there");
        // A TLS record: handshake (22), protocol version 3.x.
        assert_eq!(server.await.expect("server")[..2], [22, 3]);
        assert!(error.starts_with("connection failed"), "{error}");
    }

    #[tokio::test]
    async fn a_receiver_that_never_answers_times_out() {
        let (listener, port) = listener().await;
        let _server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            read_request(&mut stream).await;
            std::future::pending::<()>().await;
        });
        // The outer bound only turns a missing timeout into a failure instead of a hang.
        let client = client(Duration::from_millis(200));
        let sending = client.send(post(format!("http://127.0.0.1:{port}/hook"), &[]));
        let error = tokio::time::timeout(Duration::from_secs(60), sending)
            .await
            .expect("the client's own timeout ends the attempt")
            .expect_err("no answer");
        assert_eq!(error, "timed out");
    }

    #[tokio::test]
    async fn bad_requests_and_closed_ports_are_described() {
        let client = client(Duration::from_secs(30));
        let (listener, port) = listener().await;
        drop(listener);
        let url = format!("http://127.0.0.1:{port}/hook");
        let refused = client
            .send(post(url.clone(), &[]))
            .await
            .expect_err("closed");
        assert!(refused.starts_with("connection failed: "), "{refused}");
        let bad_name = client
            .send(post(url.clone(), &[("bad name", "x")]))
            .await
            .expect_err("header name");
        assert!(bad_name.starts_with("invalid request"), "{bad_name}");
        let bad_url = client
            .send(post("http://".into(), &[]))
            .await
            .expect_err("URL");
        assert!(bad_url.starts_with("invalid URL"), "{bad_url}");
    }
}
