//! keygate's metrics for Prometheus: decisions by outcome and reason, store lookup
//! latency, cache hits and audit drops, scraped from `/metrics`.
//!
//! ```sh
//! cargo run --example prometheus --features metrics
//! # it prints `export API_KEY=...`; then:
//! curl -s localhost:3000/me -H "Authorization: Bearer $API_KEY"
//! curl -s localhost:3000/me -H "Authorization: Bearer wrong"
//! curl -s localhost:3000/metrics | grep keygate_
//! ```

mod app;

use std::error::Error;

use keygate::{Keygate, MemoryStore, NewKey};
use metrics_exporter_prometheus::PrometheusBuilder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let metrics = PrometheusBuilder::new().install_recorder()?;
    let keygate = Keygate::new(MemoryStore::new()).with_per_key_metrics(100);
    let created = keygate
        .manager()
        .create(NewKey::new("user-1", "demo"))
        .await?;
    let address = std::env::var("KEYGATE_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("listening on http://{}", listener.local_addr()?);
    println!("export API_KEY={}", created.key.expose_secret());
    drop(created);
    axum::serve(listener, app::router(&keygate, metrics)).await?;
    Ok(())
}
