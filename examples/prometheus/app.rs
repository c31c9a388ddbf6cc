//! The prometheus example's app, kept apart from `main` so that `tests/metrics.rs` scrapes
//! the very same routes.

use axum::Router;
use axum::routing::get;
use keygate::{Identity, KeyStore, Keygate};
use metrics_exporter_prometheus::PrometheusHandle;

/// `/me` behind keygate, and `/metrics` (public) in Prometheus' text format.
pub fn router<S: KeyStore>(keygate: &Keygate<S>, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route(
            "/me",
            get(|identity: Identity| async move { identity.user().to_owned() }),
        )
        .layer(keygate.layer())
        .route("/metrics", get(move || async move { metrics.render() }))
}
