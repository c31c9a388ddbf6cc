//! Per-request cost of authentication, in one run, against the floor and the peer.
//!
//! `cargo bench --bench overhead --features cache,sqlite` measures an in-process axum
//! Router (`oneshot`) for:
//!
//! 1. `bare`: the router alone;
//! 2. `tower_http_bearer`: tower-http's `ValidateRequestHeaderLayer::bearer`, one static
//!    token (what users pick today);
//! 3. `floor`: a minimal hand-written layer doing only header read, SHA-256, HashMap lookup,
//!    constant-time compare and extension insert;
//! 4. `keygate_memory`: keygate with `MemoryStore`;
//! 5. `keygate_cached_sqlite`: keygate with `CachedStore<SqliteStore>`, cache hot;
//!
//! each with 1,000 and 1,000,000 stored keys, then prints the ratios (4)/(3), (4)/(2) and
//! (5)/(4) from the same run: once from criterion's means, and once from interleaved
//! rounds (every configuration timed in turn, 31 rounds), whose per-round ratios are
//! robust to the drift of a shared machine. Without `cache,sqlite`, (5) is skipped.

use std::collections::HashMap;
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use criterion::{BenchmarkId, Criterion};
use http::{Request, Response, StatusCode};
use keygate::{
    ApiKey, Identity, KeyGenerator, KeyHash, KeyHasher, KeyId, Keygate, MemoryStore, StoredKey,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower::{Layer, Service, ServiceExt};

const SIZES: [usize; 2] = [1_000, 1_000_000];

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

/// Filler keys: ids `0000000000000001`, `…2`, …, with hashes no request presents.
fn filler_id(n: usize) -> KeyId {
    KeyId::parse(&format!("{n:016}")).expect("sixteen digits")
}

fn handler_router() -> Router {
    Router::new().route("/", get(|| async { "ok" }))
}

fn request(key: &str) -> Request<Body> {
    Request::get("/")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .expect("request")
}

async fn call(app: &Router, key: &str) -> StatusCode {
    app.clone()
        .oneshot(request(key))
        .await
        .expect("infallible")
        .status()
}

// ---- (3) the floor: the least a key check can do -----------------------------------

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

/// A sink that receives every event, allowed ones included, and only counts them.
#[derive(Default)]
struct CountingSink(std::sync::atomic::AtomicU64);

impl keygate::AuditSink for CountingSink {
    fn record(&self, _event: &keygate::AuditEvent) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

// ---- setup ---------------------------------------------------------------------------

struct Fixture {
    key: ApiKey,
    hash: KeyHash,
}

fn fixture() -> Fixture {
    let key = KeyGenerator::default().generate().expect("randomness");
    let hash = KeyHasher::sha256().hash(&key);
    Fixture { key, hash }
}

fn memory_store(size: usize, fx: &Fixture) -> MemoryStore {
    let store = MemoryStore::new();
    for n in 1..size {
        let id = filler_id(n);
        let filler = StoredKey::new(KeyHash::from_bytes([0; 32]), Identity::new(id, "user"));
        store.insert_key(filler).expect("unique filler id");
    }
    let real = StoredKey::new(fx.hash, Identity::new(fx.key.id(), "user"));
    store.insert_key(real).expect("unique id");
    store
}

fn floor_map(size: usize, fx: &Fixture) -> HashMap<KeyId, (KeyHash, Identity)> {
    let mut map = HashMap::with_capacity(size);
    for n in 1..size {
        let id = filler_id(n);
        map.insert(
            id,
            (KeyHash::from_bytes([0; 32]), Identity::new(id, "user")),
        );
    }
    map.insert(fx.key.id(), (fx.hash, Identity::new(fx.key.id(), "user")));
    map
}

#[cfg(all(feature = "cache", feature = "sqlite"))]
async fn cached_sqlite(size: usize, fx: &Fixture) -> keygate::CachedStore<keygate::SqliteStore> {
    use keygate::sqlx;
    let store = keygate::SqliteStore::connect("sqlite::memory:")
        .await
        .expect("sqlite");
    let mut tx = store.pool().begin().await.expect("transaction");
    let insert = |id: KeyId, hash: KeyHash| {
        sqlx::query(
            "INSERT INTO keygate_keys (id, hash, user_id, name, scopes, preview, created_at) \
             VALUES ($1, $2, 'user', '', '', '', 0)",
        )
        .bind(id.as_str().to_owned())
        .bind(hash.as_bytes().to_vec())
    };
    for n in 1..size {
        insert(filler_id(n), KeyHash::from_bytes([0; 32]))
            .execute(&mut *tx)
            .await
            .expect("filler row");
    }
    insert(fx.key.id(), fx.hash)
        .execute(&mut *tx)
        .await
        .expect("row");
    tx.commit().await.expect("commit");
    keygate::CachedStore::new(store)
}

fn keygate_of<S: keygate::KeyStore>(store: S) -> Keygate<S> {
    Keygate::read_only(store)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let fx = fixture();
    let secret = fx.key.expose_secret().to_owned();

    let count_mode = std::env::var("KEYGATE_BENCH_COUNT").ok();
    let mut interleaved_results = Vec::new();
    let mut group = criterion.benchmark_group("overhead");
    for size in sizes() {
        let mut apps: Vec<(&str, Router)> = vec![
            ("1_bare", handler_router()),
            (
                "2_tower_http_bearer",
                // Deprecated upstream as "too basic", which is the point: it is what users
                // reach for today, and the cheapest check there is.
                #[allow(deprecated)]
                handler_router().layer(
                    tower_http::validate_request::ValidateRequestHeaderLayer::bearer(&secret),
                ),
            ),
            (
                "3_floor",
                handler_router().layer(FloorLayer {
                    keys: Arc::new(floor_map(size, &fx)),
                }),
            ),
            (
                "4_keygate_memory",
                handler_router().layer(keygate_of(memory_store(size, &fx)).layer()),
            ),
        ];
        if std::env::var_os("KEYGATE_BENCH_VARIANTS").is_some() {
            apps.push((
                "4c_keygate_memory_every_event",
                handler_router().layer(
                    keygate_of(memory_store(size, &fx))
                        .with_audit_sink(CountingSink::default(), 8192)
                        .layer(),
                ),
            ));
            apps.push((
                "4b_keygate_memory_no_audit",
                handler_router().layer(
                    keygate_of(memory_store(size, &fx))
                        .with_audit_sink(keygate::NoAudit, 0)
                        .layer(),
                ),
            ));
        }
        #[cfg(all(feature = "cache", feature = "sqlite"))]
        apps.push((
            "5_keygate_cached_sqlite",
            handler_router().layer(keygate_of(runtime.block_on(cached_sqlite(size, &fx))).layer()),
        ));
        if let Some(spec) = &count_mode {
            count(&runtime, &apps, spec, &secret);
            return;
        }
        for (name, app) in &apps {
            // Every configuration must actually accept the key it is measured with.
            assert_eq!(
                runtime.block_on(call(app, &secret)),
                StatusCode::OK,
                "{name}"
            );
            group.bench_with_input(BenchmarkId::new(*name, size), app, |b, app| {
                b.to_async(&runtime).iter(|| call(app, black_box(&secret)));
            });
        }
        interleaved_results.push((size, interleaved(&runtime, &apps, &secret)));
        drop(apps);
    }
    group.finish();
    criterion.final_summary();
    ratios::print();
    ratios::print_interleaved(&interleaved_results);
    ratios::save_interleaved(&interleaved_results);
}

/// ns/request per configuration, measured in alternating rounds.
type Rounds = Vec<(String, Vec<f64>)>;

/// Times every configuration in turn, round after round, so that the machine's drift
/// (this is a shared machine) hits all of them alike; ratios are then taken per round.
fn interleaved(runtime: &tokio::runtime::Runtime, apps: &[(&str, Router)], key: &str) -> Rounds {
    const ROUNDS: usize = 31;
    const BATCH: usize = 10_000;
    let mut results: Rounds = apps
        .iter()
        .map(|(name, _)| (name.to_string(), vec![]))
        .collect();
    for round in 0..ROUNDS {
        // Rotate the order too, so no configuration always runs right after another.
        for offset in 0..apps.len() {
            let index = (round + offset) % apps.len();
            let app = &apps[index].1;
            let started = std::time::Instant::now();
            runtime.block_on(async {
                for _ in 0..BATCH {
                    black_box(call(app, black_box(key)).await);
                }
            });
            let ns = started.elapsed().as_nanos() as f64 / BATCH as f64;
            results[index].1.push(ns);
        }
    }
    results
}

/// `KEYGATE_BENCH_COUNT=<config>:<n>`: sends `n` requests to one configuration in a plain
/// loop, for instruction counts under `valgrind --tool=callgrind` (run with two values of
/// `n`; the difference divided by the difference in `n` is the cost of one request,
/// setup excluded). See BENCHMARKS.md.
fn count(runtime: &tokio::runtime::Runtime, apps: &[(&str, Router)], spec: &str, key: &str) {
    let (config, n) = spec
        .split_once(':')
        .expect("KEYGATE_BENCH_COUNT=<config>:<n>");
    let n: usize = n.parse().expect("a number of requests");
    let (_, app) = apps
        .iter()
        .find(|(name, _)| *name == config)
        .expect("a configuration name such as 4_keygate_memory");
    runtime.block_on(async {
        for _ in 0..n {
            assert_eq!(call(app, black_box(key)).await, StatusCode::OK);
        }
    });
}

/// Reads this run's estimates back from criterion's output and prints the ratios.
mod ratios {
    use std::path::PathBuf;

    fn estimate(config: &str, size: usize) -> Option<f64> {
        let dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
        let path = dir.join(format!(
            "criterion/overhead/{config}/{size}/new/estimates.json"
        ));
        let text = std::fs::read_to_string(path).ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        json["mean"]["point_estimate"].as_f64()
    }

    /// The ratios to print: label, numerator, denominator, target.
    const RATIOS: [(&str, &str, &str, &str); 3] = [
        (
            "(4)/(3) keygate vs floor",
            "4_keygate_memory",
            "3_floor",
            "<= 1.10",
        ),
        (
            "(4)/(2) keygate vs tower-http",
            "4_keygate_memory",
            "2_tower_http_bearer",
            "",
        ),
        (
            "(5)/(4) cached sqlite vs memory",
            "5_keygate_cached_sqlite",
            "4_keygate_memory",
            "<= 1.15",
        ),
    ];

    fn median(mut values: Vec<f64>) -> f64 {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    }

    /// Medians of per-round ratios from the interleaved rounds: the figures to judge.
    pub(super) fn print_interleaved(results: &[(usize, super::Rounds)]) {
        println!();
        println!("Interleaved rounds (median ns/request; ratios are medians of per-round ratios)");
        for (size, rounds) in results {
            let find = |name: &str| rounds.iter().find(|(n, _)| n == name).map(|(_, v)| v);
            println!("  {size} keys:");
            for (name, values) in rounds {
                println!("    {name:<28} {:>8.0}", median(values.clone()));
            }
            for (label, a, b, target) in RATIOS {
                if let (Some(a), Some(b)) = (find(a), find(b)) {
                    let per_round: Vec<f64> = a.iter().zip(b).map(|(a, b)| a / b).collect();
                    println!(
                        "    {label:<34} {:>6.3}   target {target}",
                        median(per_round)
                    );
                }
            }
        }
    }

    /// Writes the interleaved medians to `target/keygate-overhead.json` for benches/plot.py.
    pub(super) fn save_interleaved(results: &[(usize, super::Rounds)]) {
        let mut json = serde_json::Map::new();
        for (size, rounds) in results {
            let medians: serde_json::Map<String, serde_json::Value> = rounds
                .iter()
                .map(|(name, values)| (name.clone(), median(values.clone()).into()))
                .collect();
            json.insert(size.to_string(), medians.into());
        }
        let dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
        let text = serde_json::Value::Object(json).to_string();
        if let Err(error) = std::fs::write(dir.join("keygate-overhead.json"), text) {
            eprintln!("could not save the interleaved medians: {error}");
        }
    }

    pub(super) fn print() {
        println!();
        println!(
            "{:<26} {:>12} {:>12}",
            "ns/request", "1,000 keys", "1,000,000 keys"
        );
        let configs = [
            "1_bare",
            "2_tower_http_bearer",
            "3_floor",
            "4_keygate_memory",
            "5_keygate_cached_sqlite",
        ];
        for config in configs {
            let cells: Vec<String> = super::SIZES
                .iter()
                .map(|&size| estimate(config, size).map_or("-".into(), |ns| format!("{ns:.0}")))
                .collect();
            println!("{config:<26} {:>12} {:>12}", cells[0], cells[1]);
        }
        println!();
        let ratio = |a: &str, b: &str, size| Some(estimate(a, size)? / estimate(b, size)?);
        for (label, a, b, target) in RATIOS {
            let cells: Vec<String> = super::SIZES
                .iter()
                .map(|&size| ratio(a, b, size).map_or("-".into(), |r| format!("{r:.3}")))
                .collect();
            println!(
                "{label:<34} {:>8} {:>8}   target {target}",
                cells[0], cells[1]
            );
        }
    }
}
