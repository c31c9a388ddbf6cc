//! What the shared Redis limiter adds to a request: 64 concurrent clients on loopback,
//! each sending requests through the layer with `RedisLimiter` and, interleaved, through
//! the same layer without limits; p50 and p99 of each, and of the difference.
//!
//! `cargo bench --bench redis_limit --features redis` (Redis at `KEYGATE_BENCH_REDIS`,
//! default `redis://127.0.0.1:6379`; keys under a namespace of its own, deleted after).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode};
use keygate::{Keygate, MemoryStore, NewKey, RateLimit, RateLimits, RedisLimiter};
use tower::ServiceExt;

const CLIENTS: usize = 64;
const REQUESTS: usize = 300;

fn app(keygate: &Keygate<MemoryStore>) -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(keygate.layer())
}

async fn timed(app: &Router, key: &str) -> Duration {
    let request = Request::get("/")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .expect("request");
    let started = Instant::now();
    let response = app.clone().oneshot(request).await.expect("infallible");
    let elapsed = started.elapsed();
    assert_eq!(response.status(), StatusCode::OK);
    elapsed
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let url = std::env::var("KEYGATE_BENCH_REDIS")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let namespace = format!("kg_bench_{}", std::process::id());
    let store = MemoryStore::new();
    let plain = Keygate::new(store.clone());
    // A limit no client reaches: what is measured is the round trip, not refusals.
    let limits = RateLimits::new().per_key(RateLimit::per_second(1_000_000).expect("limit"));
    let limiter = RedisLimiter::connect(&url, limits)
        .expect("a Redis URL")
        .with_namespace(&namespace)
        .with_timeout(Duration::from_secs(1));
    let shared = plain.clone().with_limiter(limiter);
    let (plain_app, shared_app) = (app(&plain), app(&shared));
    let mut keys = Vec::new();
    for n in 0..CLIENTS {
        let created = plain
            .manager()
            .create(NewKey::new(format!("user-{n}"), "bench"))
            .await
            .expect("create");
        keys.push(created.key.expose_secret().to_owned());
    }
    // Warm up: connection, script cache.
    for key in &keys {
        timed(&shared_app, key).await;
    }
    // One client alone: the round trip itself, with no queueing behind other clients.
    let (mut alone_plain, mut alone_shared) = (Vec::new(), Vec::new());
    for _ in 0..1_000 {
        alone_plain.push(timed(&plain_app, &keys[0]).await);
        alone_shared.push(timed(&shared_app, &keys[0]).await);
    }
    alone_plain.sort();
    alone_shared.sort();
    println!("1 client x 1000 requests each way");
    for (name, times) in [
        ("no limiter", &alone_plain),
        ("RedisLimiter", &alone_shared),
    ] {
        println!(
            "  {name:<14} p50 {:>9.1?}  p99 {:>9.1?}",
            percentile(times, 0.50),
            percentile(times, 0.99)
        );
    }
    let apps = Arc::new((plain_app, shared_app));
    let mut tasks = Vec::new();
    let started = Instant::now();
    for key in keys {
        let apps = apps.clone();
        tasks.push(tokio::spawn(async move {
            let mut times = (Vec::new(), Vec::new());
            for _ in 0..REQUESTS {
                times.0.push(timed(&apps.0, &key).await);
                times.1.push(timed(&apps.1, &key).await);
            }
            times
        }));
    }
    let (mut plain, mut shared) = (Vec::new(), Vec::new());
    for task in tasks {
        let (p, s) = task.await.expect("client");
        plain.extend(p);
        shared.extend(s);
    }
    let wall = started.elapsed();
    plain.sort();
    shared.sort();
    println!(
        "{CLIENTS} clients x {REQUESTS} requests each way, {:.1?} in all",
        wall
    );
    for (name, times) in [("no limiter", &plain), ("RedisLimiter", &shared)] {
        println!(
            "  {name:<14} p50 {:>9.1?}  p99 {:>9.1?}",
            percentile(times, 0.50),
            percentile(times, 0.99)
        );
    }
    println!(
        "  added          p50 {:>9.1?}  p99 {:>9.1?}",
        percentile(&shared, 0.50).saturating_sub(percentile(&plain, 0.50)),
        percentile(&shared, 0.99).saturating_sub(percentile(&plain, 0.99))
    );
    // Leave nothing behind.
    let _ = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "redis-cli -u {url} --scan --pattern '{namespace}:*' | xargs -r redis-cli -u {url} del >/dev/null"
        ))
        .status();
}
