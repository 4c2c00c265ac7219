//! `serve` hands out URLs that reach it: with no `public_url` configured, the base URL
//! printed at the first start and the links the API gives name the address it listens
//! on, the port actually bound included.

use std::io::BufReader;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// Kills the server when the test ends, passed or not.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `switchyard serve --listen ADDR` on an empty data dir; the server and the JSON
/// it prints at its first start.
fn first_start(data: &std::path::Path, listen: &str) -> (Serving, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--data"])
        .arg(data)
        .args(["--listen", listen])
        .env("RUST_LOG", "warn")
        .env_remove("SWITCHYARD_PUBLIC_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the switchyard binary");
    let stdout = child.stdout.take().expect("stdout");
    let serving = Serving(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let first = serde_json::Deserializer::from_reader(BufReader::new(stdout))
            .into_iter::<Value>()
            .next();
        let _ = tx.send(first);
    });
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the first start prints its JSON within a minute")
        .expect("stdout holds a JSON value")
        .expect("the first start's JSON parses");
    (serving, first)
}

#[tokio::test]
async fn base_urls_name_the_port_bound_when_no_public_url_is_set() {
    let data = tempfile::tempdir().expect("temp dir");
    let (_serving, first) = first_start(data.path(), "127.0.0.1:0");
    let base_url = first["base_url"].as_str().expect("base_url").to_owned();
    let origin = base_url
        .strip_suffix("/t/default/v1")
        .unwrap_or_else(|| panic!("a tenant API base URL: {base_url}"))
        .to_owned();
    let port: u16 = origin
        .strip_prefix("http://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("a loopback origin with a port: {origin}"));
    assert_ne!(port, 0, "the port bound, not the one asked for");

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let mut overview = None;
    for _ in 0..600 {
        if let Ok(answer) = http
            .get(format!("{origin}/"))
            .header("accept", "application/json")
            .send()
            .await
            && answer.status().is_success()
        {
            overview = Some(answer.json::<Value>().await.expect("overview JSON"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let overview = overview.expect("the printed base URL reaches the server");
    assert_eq!(overview["openapi_url"], format!("{origin}/openapi.json"));
    let apis = overview["apis"].as_array().expect("apis");
    assert!(
        apis.iter()
            .any(|api| api["url"] == base_url.replace("/default/", "/{tenant}/")),
        "the tenant API's link is under the same origin: {overview}"
    );
}
