//! Per-request cost of authentication, in one run, against the floor and the peer.
//!
//! `cargo bench --bench overhead --features cache,sqlite` sends `GET /` with
//! `Authorization: Bearer <key>` through an in-process axum `Router` (`oneshot`) for:
//!
//! 1. `bare`: the router alone;
//! 2. `tower_http_bearer`: tower-http's `ValidateRequestHeaderLayer::bearer`, one static
//!    token (what users pick today; it knows one key, so it runs in the fixed mode only);
//! 3. `floor`: a minimal hand-written layer doing only header read, SHA-256, `HashMap`
//!    lookup by key id, constant-time compare and extension insert;
//! 4. `keygate_memory`: keygate with `MemoryStore`;
//! 5. `keygate_cached_sqlite`: keygate with `CachedStore<SqliteStore>`, the cache large
//!    enough for every key and warm;
//! 6. `keygate_memory_limited`: (4) with an in-process rate limit on every key
//!    (`with_rate_limits`, `LocalLimiter`), set high enough that no request is refused:
//!    the price of counting;
//! 7. `keygate_memory_audited`: (4) with every decision, allowed ones included, sent to a
//!    `SqlAuditSink` on an in-memory SQLite database, written by a writer task on a
//!    runtime of its own (with `sqlite` only).
//!
//! Every stored key is a real one. Each configuration runs with 1,000 and 1,000,000 keys
//! stored, in two modes: `rotating`, where consecutive requests present every stored key
//! in one shuffled order (what a busy service sees), and `fixed`, where every request
//! presents the same key (the hot-cache case). Ratios come from interleaved rounds: every
//! configuration is timed in turn, 31 rounds of 10,000 requests, and each ratio is the
//! median of its per-round ratios, so the drift of a shared machine hits both sides alike.
//! Without `cache,sqlite`, (5) is skipped.

use std::collections::HashMap;
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response, StatusCode};
use keygate::{Identity, KeyGenerator, KeyHash, KeyHasher, KeyId, Keygate, MemoryStore, StoredKey};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower::{Layer, Service, ServiceExt};

const SIZES: [usize; 2] = [1_000, 1_000_000];
const ROUNDS: usize = 31;
const BATCH: usize = 10_000;

/// The sizes to run: all of `SIZES`, or only those listed in `KEYGATE_BENCH_SIZES`
/// (comma-separated), which keeps profiling runs short.
fn sizes() -> Vec<usize> {
    match std::env::var("KEYGATE_BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect(),
        Err(_) => SIZES.to_vec(),
    }
}

// ---- the keys ----------------------------------------------------------------------------

/// `n` real keys: their ids and hashes, and the `Authorization` values presenting them, in
/// one shuffled order.
struct Keyset {
    stored: Vec<(KeyId, KeyHash)>,
    headers: Vec<HeaderValue>,
}

fn keyset(n: usize) -> Keyset {
    let generator = KeyGenerator::default();
    let hasher = KeyHasher::sha256();
    let mut stored = Vec::with_capacity(n);
    let mut headers = Vec::with_capacity(n);
    for _ in 0..n {
        let key = generator.generate().expect("randomness");
        stored.push((key.id(), hasher.hash(&key)));
        let value = format!("Bearer {}", key.expose_secret());
        headers.push(HeaderValue::from_str(&value).expect("a key is a header value"));
    }
    // Fisher-Yates with a fixed seed, so every run presents the same order.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..n).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        headers.swap(i, (state % (i as u64 + 1)) as usize);
    }
    Keyset { stored, headers }
}

fn handler_router() -> Router {
    Router::new().route("/", get(|| async { "ok" }))
}

async fn call(app: &Router, header: &HeaderValue) -> StatusCode {
    let request = Request::get("/")
        .header(AUTHORIZATION, header.clone())
        .body(Body::empty())
        .expect("request");
    app.clone()
        .oneshot(request)
        .await
        .expect("infallible")
        .status()
}

// ---- (3) the floor: the least a key check can do -----------------------------------------

#[derive(Clone)]
struct FloorLayer {
    keys: Arc<HashMap<KeyId, (KeyHash, Identity)>>,
}

#[derive(Clone)]
struct Floor<S> {
    inner: S,
    keys: Arc<HashMap<KeyId, (KeyHash, Identity)>>,
}

impl<S> Layer<S> for FloorLayer {
    type Service = Floor<S>;
    fn layer(&self, inner: S) -> Floor<S> {
        Floor {
            inner,
            keys: self.keys.clone(),
        }
    }
}

impl<S> Service<Request<Body>> for Floor<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = futures_util::future::Either<
        S::Future,
        std::future::Ready<Result<Response<Body>, Infallible>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let verified = request
            .headers()
            .get("authorization")
            .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "))
            .and_then(|token| {
                let id = KeyId::parse(std::str::from_utf8(token.get(3..19)?).ok()?).ok()?;
                let (stored, identity) = self.keys.get(&id)?;
                let presented = KeyHash::from_bytes(Sha256::digest(token).into());
                bool::from(stored.ct_eq(&presented)).then(|| identity.clone())
            });
        match verified {
            Some(identity) => {
                request.extensions_mut().insert(identity);
                futures_util::future::Either::Left(self.inner.call(request))
            }
            None => {
                let mut response = Response::new(Body::empty());
                *response.status_mut() = StatusCode::UNAUTHORIZED;
                futures_util::future::Either::Right(std::future::ready(Ok(response)))
            }
        }
    }
}

fn floor_map(keys: &Keyset) -> HashMap<KeyId, (KeyHash, Identity)> {
    keys.stored
        .iter()
        .map(|(id, hash)| (*id, (*hash, Identity::new(*id, "user"))))
        .collect()
}

// ---- keygate -------------------------------------------------------------------------------

fn memory_store(keys: &Keyset) -> MemoryStore {
    let store = MemoryStore::new();
    for (id, hash) in &keys.stored {
        let key = StoredKey::new(*hash, Identity::new(*id, "user"));
        store.insert_key(key).expect("unique id");
    }
    store
}

#[cfg(all(feature = "cache", feature = "sqlite"))]
async fn cached_sqlite(keys: &Keyset) -> keygate::CachedStore<keygate::SqliteStore> {
    use keygate::{CacheConfig, KeyStore, sqlx};
    let store = keygate::SqliteStore::connect("sqlite::memory:")
        .await
        .expect("sqlite");
    let mut tx = store.pool().begin().await.expect("transaction");
    for (id, hash) in &keys.stored {
        sqlx::query(
            "INSERT INTO keygate_keys (id, hash, user_id, name, scopes, preview, created_at) \
             VALUES ($1, $2, 'user', '', '', '', 0)",
        )
        .bind(*id)
        .bind(*hash)
        .execute(&mut *tx)
        .await
        .expect("row");
    }
    tx.commit().await.expect("commit");
    let config = CacheConfig {
        capacity: keys.stored.len() as u64 + 1_000,
        ttl: std::time::Duration::from_secs(3_600),
        ..CacheConfig::default()
    };
    let cached = keygate::CachedStore::with_config(store, config);
    for (id, _) in &keys.stored {
        cached.find(id).await.expect("warm-up lookup");
    }
    cached
}

fn layer_of<S: keygate::KeyStore>(store: S) -> keygate::ApiKeyLayer {
    Keygate::read_only(store).layer()
}

/// keygate with every decision audited to SQLite.
#[cfg(feature = "sqlite")]
async fn audited_layer_of<S: keygate::KeyStore>(
    store: S,
) -> (keygate::ApiKeyLayer, keygate::SqlAuditSink) {
    let database = keygate::SqliteStore::connect("sqlite::memory:")
        .await
        .expect("sqlite");
    let sink =
        keygate::SqlAuditSink::sqlite(database.pool().clone(), keygate::Retention::default())
            .await
            .expect("audit table");
    let layer = Keygate::read_only(store)
        .with_audit_sink(sink.clone(), keygate::DEFAULT_AUDIT_QUEUE)
        .layer();
    (layer, sink)
}

/// keygate with a rate limit on every key that no run of the bench can reach.
fn limited_layer_of<S: keygate::KeyStore>(store: S) -> keygate::ApiKeyLayer {
    let limit = keygate::RateLimit::per_second(u32::MAX).expect("a valid limit");
    Keygate::read_only(store)
        .with_rate_limits(keygate::RateLimits::new().per_key(limit))
        .layer()
}

// ---- the run -------------------------------------------------------------------------------

/// How a configuration's requests pick their keys.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Fixed,
    Rotating,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Fixed => "fixed",
            Mode::Rotating => "rotating",
        }
    }
}

/// ns/request per configuration, one value per round.
type Rounds = Vec<(String, Vec<f64>)>;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let count_mode = std::env::var("KEYGATE_BENCH_COUNT").ok();
    let mut results: Vec<(usize, Mode, Rounds)> = Vec::new();
    for size in sizes() {
        let setup = Instant::now();
        let keys = keyset(size);
        let fixed_secret = keys.headers[0]
            .to_str()
            .expect("ascii")
            .trim_start_matches("Bearer ")
            .to_owned();
        #[cfg_attr(not(all(feature = "cache", feature = "sqlite")), allow(unused_mut))]
        let mut apps: Vec<(&str, Router)> = vec![
            ("1_bare", handler_router()),
            (
                "2_tower_http_bearer",
                // Deprecated upstream as "too basic", which is the point: it is what users
                // reach for today, and the cheapest check there is.
                #[allow(deprecated)]
                handler_router().layer(
                    tower_http::validate_request::ValidateRequestHeaderLayer::bearer(&fixed_secret),
                ),
            ),
            (
                "3_floor",
                handler_router().layer(FloorLayer {
                    keys: Arc::new(floor_map(&keys)),
                }),
            ),
            (
                "4_keygate_memory",
                handler_router().layer(layer_of(memory_store(&keys))),
            ),
            (
                "6_keygate_memory_limited",
                handler_router().layer(limited_layer_of(memory_store(&keys))),
            ),
        ];
        #[cfg(feature = "sqlite")]
        let audit_runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        #[cfg(feature = "sqlite")]
        let (audit_layer, sink) = audit_runtime.block_on(audited_layer_of(memory_store(&keys)));
        #[cfg(feature = "sqlite")]
        apps.push((
            "7_keygate_memory_audited",
            handler_router().layer(audit_layer.clone()),
        ));
        #[cfg(all(feature = "cache", feature = "sqlite"))]
        apps.push((
            "5_keygate_cached_sqlite",
            handler_router().layer(layer_of(runtime.block_on(cached_sqlite(&keys)))),
        ));
        eprintln!("{size} keys: set up in {:.1?}", setup.elapsed());
        if let Some(spec) = &count_mode {
            count(&runtime, &apps, spec, &keys);
            return;
        }
        for mode in [Mode::Rotating, Mode::Fixed] {
            let apps: Vec<&(&str, Router)> = apps
                .iter()
                .filter(|(name, _)| mode == Mode::Fixed || *name != "2_tower_http_bearer")
                .collect();
            // Every configuration must accept the keys it is measured with.
            let checked = if mode == Mode::Fixed { 1 } else { 3 };
            for (name, app) in &apps {
                for header in keys.headers.iter().take(checked) {
                    let status = runtime.block_on(call(app, header));
                    assert_eq!(status, StatusCode::OK, "{name}");
                }
            }
            let rounds = interleaved(&runtime, &apps, &keys, mode);
            print(size, mode, &rounds);
            #[cfg(feature = "sqlite")]
            {
                audit_runtime.block_on(sink.flush());
                println!(
                    "  (7) audit: {:?}; the layer's queue dropped {}",
                    sink.stats(),
                    audit_layer.stats().audit.dropped
                );
            }
            results.push((size, mode, rounds));
        }
    }
    save(&results);
}

/// Times every configuration in turn, round after round; within a round every
/// configuration presents the same keys.
fn interleaved(
    runtime: &tokio::runtime::Runtime,
    apps: &[&(&str, Router)],
    keys: &Keyset,
    mode: Mode,
) -> Rounds {
    let mut results: Rounds = apps
        .iter()
        .map(|(name, _)| (name.to_string(), vec![]))
        .collect();
    let n = keys.headers.len();
    for round in 0..ROUNDS {
        let start = round * BATCH;
        // Rotate the order too, so no configuration always runs right after another.
        for offset in 0..apps.len() {
            let index = (round + offset) % apps.len();
            let app = &apps[index].1;
            let started = Instant::now();
            runtime.block_on(async {
                for i in 0..BATCH {
                    let header = match mode {
                        Mode::Fixed => &keys.headers[0],
                        Mode::Rotating => &keys.headers[(start + i) % n],
                    };
                    black_box(call(app, black_box(header)).await);
                }
            });
            let ns = started.elapsed().as_nanos() as f64 / BATCH as f64;
            results[index].1.push(ns);
        }
    }
    results
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The ratios to print: label, numerator, denominator, target.
const RATIOS: [(&str, &str, &str, &str); 5] = [
    (
        "(4)/(3) keygate vs floor",
        "4_keygate_memory",
        "3_floor",
        "<= 1.06 at 1,000 keys, <= 1.03 at 1,000,000",
    ),
    (
        "(5)/(4) cached sqlite vs memory",
        "5_keygate_cached_sqlite",
        "4_keygate_memory",
        "<= 1.10",
    ),
    (
        "(6)/(4) in-process rate limit vs none",
        "6_keygate_memory_limited",
        "4_keygate_memory",
        "<= 1.05",
    ),
    (
        "(7)/(4) SQL audit of every decision vs none",
        "7_keygate_memory_audited",
        "4_keygate_memory",
        "<= 1.10",
    ),
    (
        "(4)/(2) keygate vs tower-http",
        "4_keygate_memory",
        "2_tower_http_bearer",
        "",
    ),
];

fn print(size: usize, mode: Mode, rounds: &Rounds) {
    println!();
    println!(
        "{size} keys, {} (median ns/request; ratios: medians of per-round ratios)",
        mode.name()
    );
    let find = |name: &str| rounds.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    for (name, values) in rounds {
        println!("  {name:<28} {:>8.0}", median(values.clone()));
    }
    for (label, a, b, target) in RATIOS {
        if let (Some(a), Some(b)) = (find(a), find(b)) {
            let per_round: Vec<f64> = a.iter().zip(b).map(|(a, b)| a / b).collect();
            println!("  {label:<34} {:>6.3}   target {target}", median(per_round));
        }
    }
}

/// Writes the medians to `target/keygate-overhead.json` for benches/plot.py.
fn save(results: &[(usize, Mode, Rounds)]) {
    let mut json = serde_json::Map::new();
    for (size, mode, rounds) in results {
        let medians: serde_json::Map<String, serde_json::Value> = rounds
            .iter()
            .map(|(name, values)| (name.clone(), median(values.clone()).into()))
            .collect();
        let entry = json
            .entry(size.to_string())
            .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
        entry[mode.name()] = medians.into();
    }
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let text = serde_json::Value::Object(json).to_string();
    if let Err(error) = std::fs::write(dir.join("keygate-overhead.json"), text) {
        eprintln!("could not save the medians: {error}");
    }
}

/// `KEYGATE_BENCH_COUNT=<config>:<n>[:rotating]`: sends `n` requests to one configuration
/// in a plain loop, for instruction counts under `valgrind --tool=callgrind` (run with two
/// values of `n`; the difference divided by the difference in `n` is the cost of one
/// request, setup excluded). See BENCHMARKS.md.
fn count(runtime: &tokio::runtime::Runtime, apps: &[(&str, Router)], spec: &str, keys: &Keyset) {
    let mut parts = spec.split(':');
    let config = parts.next().expect("KEYGATE_BENCH_COUNT=<config>:<n>");
    let n: usize = parts
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a number of requests");
    let rotating = parts.next() == Some("rotating");
    let (_, app) = apps
        .iter()
        .find(|(name, _)| *name == config)
        .expect("a configuration name such as 4_keygate_memory");
    runtime.block_on(async {
        for i in 0..n {
            let header = if rotating {
                &keys.headers[i % keys.headers.len()]
            } else {
                &keys.headers[0]
            };
            assert_eq!(call(app, black_box(header)).await, StatusCode::OK);
        }
    });
}
