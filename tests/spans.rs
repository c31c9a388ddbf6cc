//! One `keygate.authenticate` span per decision, with OpenTelemetry's HTTP and enduser
//! fields, and never the key.

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use common::{Capture, send_to};
use http::StatusCode;
use keygate::{KeyGenerator, KeySource, Keygate, MemoryStore, NewKey, Scopes};
use tracing_subscriber::fmt::format::FmtSpan;

#[test]
fn each_decision_is_one_span_with_enduser_and_http_fields_and_no_key() {
    let captured: Arc<Mutex<Vec<u8>>> = Arc::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("keygate::decision=debug")
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || Capture(writer.clone()))
        .finish();
    let (secret, forged) = tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let keygate = Keygate::new(MemoryStore::new())
                .with_sources([KeySource::header("x-api-key").unwrap()])
                .unwrap();
            let app = Router::new()
                .route("/items", get(|| async { "ok" }))
                .layer(keygate.layer());
            let created = keygate
                .manager()
                .create(NewKey::new("alice", "k").with_scopes(Scopes::new(["items:read"]).unwrap()))
                .await
                .unwrap();
            let key = created.key.expose_secret().to_owned();
            let forged = KeyGenerator::default()
                .generate_for(created.key.id())
                .unwrap()
                .expose_secret()
                .to_owned();
            let ok = send_to(app.clone(), "/items?q=1", &[("x-api-key", key.as_bytes())]).await;
            assert_eq!(ok.status, StatusCode::OK);
            let refused = send_to(app, "/items", &[("x-api-key", forged.as_bytes())]).await;
            assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
            (key, forged)
        })
    });
    let output = String::from_utf8(captured.lock().unwrap().clone()).unwrap();
    let spans: Vec<&str> = output
        .lines()
        .filter(|line| line.contains("keygate.authenticate"))
        .collect();
    assert_eq!(spans.len(), 2, "{output}");
    assert!(spans[0].contains("enduser.id=\"alice\""), "{}", spans[0]);
    assert!(
        spans[0].contains("enduser.scope=\"items:read\""),
        "{}",
        spans[0]
    );
    assert!(
        spans[0].contains("http.request.method=\"GET\""),
        "{}",
        spans[0]
    );
    assert!(spans[0].contains("url.path=\"/items\""), "{}", spans[0]);
    assert!(
        spans[0].contains("keygate.outcome=\"allowed\""),
        "{}",
        spans[0]
    );
    assert!(
        spans[1].contains("keygate.reason=\"wrong_secret\""),
        "{}",
        spans[1]
    );
    for secret in [&secret, &forged] {
        assert!(
            !output.contains(&secret[secret.len() - 24..]),
            "a secret in the spans"
        );
    }
    assert!(!output.contains("q=1"), "the query string in the spans");
}
