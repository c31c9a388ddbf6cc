//! The prometheus example, scraped over HTTP: decisions counted by outcome and reason,
//! per-key counts capped, lookup latency recorded.

#[path = "../examples/prometheus/app.rs"]
mod app;

use std::sync::OnceLock;

use keygate::{KeyGenerator, Keygate, MemoryStore, NewKey};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// One recorder for the whole test binary: the facade takes one per process.
fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().unwrap())
        .clone()
}

/// One plain HTTP/1.1 request over a fresh connection: (status, body).
async fn get(base: &str, path: &str, key: Option<&str>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let auth = key.map_or(String::new(), |key| {
        format!("authorization: Bearer {key}\r\n")
    });
    let request =
        format!("GET {path} HTTP/1.1\r\nhost: {address}\r\n{auth}connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_owned());
    (status, body)
}

/// The value of the series that `line_start` begins (name and labels), or 0.
fn value(scrape: &str, line_start: &str) -> f64 {
    scrape
        .lines()
        .find(|line| line.starts_with(line_start))
        .and_then(|line| line.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().unwrap())
}

#[tokio::test]
async fn decisions_are_counted_by_outcome_and_reason_and_scraped_over_http() {
    let metrics = handle();
    let keygate = Keygate::new(MemoryStore::new()).with_per_key_metrics(1);
    let created = keygate
        .manager()
        .create(NewKey::new("u", "k"))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, app::router(&keygate, metrics)).into_future());

    let (_, before) = get(&base, "/metrics", None).await;
    let allowed = r#"keygate_decisions_total{outcome="allowed",reason="none"}"#;
    let wrong = r#"keygate_decisions_total{outcome="denied",reason="wrong_secret"}"#;
    let missing = r#"keygate_decisions_total{outcome="denied",reason="missing"}"#;
    let forged = KeyGenerator::default()
        .generate_for(created.key.id())
        .unwrap();
    let other = keygate
        .manager()
        .create(NewKey::new("u", "k2"))
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(
            get(&base, "/me", Some(created.key.expose_secret())).await.0,
            200
        );
    }
    assert_eq!(
        get(&base, "/me", Some(other.key.expose_secret())).await.0,
        200
    );
    assert_eq!(get(&base, "/me", Some(forged.expose_secret())).await.0, 401);
    assert_eq!(get(&base, "/me", None).await.0, 401);

    let (status, after) = get(&base, "/metrics", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        value(&after, allowed) - value(&before, allowed),
        4.0,
        "{after}"
    );
    assert_eq!(value(&after, wrong) - value(&before, wrong), 1.0);
    assert_eq!(value(&after, missing) - value(&before, missing), 1.0);
    // Per-key labels stop at the cap: the first key by name, the second as `other`.
    let first = format!(
        r#"keygate_key_requests_total{{key_id="{}"}}"#,
        created.key.id().as_str()
    );
    assert!(value(&after, &first) >= 3.0, "{after}");
    assert!(value(&after, r#"keygate_key_requests_total{key_id="other"}"#) >= 1.0);
    assert!(
        !after.contains(other.key.id().as_str()),
        "a key past the cap got a label"
    );
    assert!(after.contains("keygate_store_lookup_seconds"), "{after}");
    assert!(!after.contains(created.key.expose_secret()));
}
