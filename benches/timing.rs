//! A dudect test (Reparaz, Balasch, Verbauwhede 2016) of secret verification: does
//! rejecting a wrong key take a time that depends on *where* it is wrong?
//!
//! Every bench times two classes of wrong keys, Left and Right, and Welch's t-test on the
//! two timing distributions must stay below 5 in absolute value (dudect's threshold for
//! "no leak found"). Two questions are asked, each of the comparison alone, of verification
//! (parse, hash, compare) and of a whole request through the layer:
//!
//! - `*_secret_position`: the wrong secret differs from the issued one in its first
//!   character (Left) or its last (Right). Both keys carry a valid checksum, so both reach
//!   verification. Because keygate compares hashes, this shows that where a secret is wrong
//!   cannot matter; it would not catch an early-exit comparison, since the two hashes then
//!   differ at random places.
//! - `*_hash_position`: the presented key's hash differs from the stored one in byte 0
//!   (Left) or byte 31 (Right): the store is set up, per sample, with the presented key's
//!   own hash with one byte flipped. This is the test an early-exit comparison would fail.
//!
//! ```text
//! cargo bench --bench timing                                # 1M samples per bench
//! KEYGATE_DUDECT_SAMPLES=5000000 cargo bench --bench timing -- layer
//! ```
//!
//! `control_early_exit_compare` runs the comparison inputs through a deliberately leaky
//! comparison: its `max t` must come out far above 5, which shows the setup can see a
//! leak of that size.
//!
//! dudect prints `max t` for each bench. The bench prints; it does not judge: read the
//! figures (BENCHMARKS.md keeps the latest).

use dudect_bencher::ctbench::{BenchMetadata, BenchName, BenchOpts, run_benches_console};
use dudect_bencher::rand::RngExt;
use dudect_bencher::{BenchRng, Class, CtRunner};
use futures_util::FutureExt;
use http::{HeaderValue, Request, Response, StatusCode};
use keygate::{
    ApiKey, ApiKeyService, Identity, KeyFormat, KeyGenerator, KeyHash, KeyHasher, KeySource,
    Keygate, MemoryStore, NoAudit, StoredKey,
};
use subtle::ConstantTimeEq;
use tower::{Layer, ServiceExt};

/// Samples per bench, half of each class on average.
fn samples() -> usize {
    std::env::var("KEYGATE_DUDECT_SAMPLES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1_000_000)
}

/// Characters in a key's id, which precedes the secret.
const ID_LEN: usize = 16;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// All the inputs of one bench, made before any timing: each sample's class is drawn at
/// random and its input is built in that order, so both classes are spread alike over
/// memory and time, and the only difference between them is the one under test.
fn inputs<T>(
    rng: &mut BenchRng,
    mut make: impl FnMut(Class, &mut BenchRng) -> T,
) -> Vec<(Class, T)> {
    (0..samples())
        .map(|_| {
            let class = if rng.random::<bool>() {
                Class::Left
            } else {
                Class::Right
            };
            (class, make(class, rng))
        })
        .collect()
}

/// `hash` with byte 0 (Left) or byte 31 (Right) changed.
fn flipped(hash: &KeyHash, class: Class, rng: &mut BenchRng) -> KeyHash {
    use base64::Engine;
    let mut bytes = *hash.as_bytes();
    let position = match class {
        Class::Left => 0,
        Class::Right => 31,
    };
    bytes[position] ^= rng.random_range(1..=255u8);
    let text = base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes);
    KeyHash::from_base64(&text).unwrap()
}

/// A well-formed key whose secret differs from `issued`'s in its first character (Left)
/// or its last (Right), with the checksum recomputed so that it reaches verification.
fn wrong_secret(issued: &ApiKey, class: Class, rng: &mut BenchRng) -> String {
    let format = KeyFormat::new();
    let position = match class {
        Class::Left => format.prefix().len() + 1 + ID_LEN,
        Class::Right => format.key_len() - 6 - 1,
    };
    let mut bytes = issued.expose_secret().as_bytes().to_vec();
    let original = bytes[position];
    while bytes[position] == original {
        bytes[position] = BASE62[rng.random_range(0..BASE62.len())];
    }
    let signed = bytes.len() - 6;
    let mut crc = crc32fast::hash(&bytes[..signed]);
    for slot in bytes[signed..].iter_mut().rev() {
        *slot = BASE62[(crc % 62) as usize];
        crc /= 62;
    }
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(
        format.check(&text),
        Ok(issued.id()),
        "the wrong key must be well-formed"
    );
    text
}

/// Verification as the layer does it once the store has answered: parse, hash, compare.
fn verify(text: &str, stored: &KeyHash) -> bool {
    let presented = ApiKey::parse(text, &KeyFormat::new()).unwrap();
    bool::from(KeyHasher::sha256().hash(&presented).ct_eq(stored))
}

/// The comparison alone, on hashes that differ in their first byte or in their last.
fn compare_hash_position(runner: &mut CtRunner, rng: &mut BenchRng) {
    let issued = KeyGenerator::default().generate().unwrap();
    let stored = KeyHasher::sha256().hash(&issued);
    for (class, presented) in inputs(rng, |class, rng| flipped(&stored, class, rng)) {
        runner.run_one(class, || bool::from(presented.ct_eq(&stored)));
    }
}

/// The control: the same inputs through a deliberately leaky comparison that stops at the
/// first differing byte. Its `max t` must be far above 5, or the setup cannot see a leak.
fn control_early_exit_compare(runner: &mut CtRunner, rng: &mut BenchRng) {
    let issued = KeyGenerator::default().generate().unwrap();
    let stored = KeyHasher::sha256().hash(&issued);
    let leaky = |a: &KeyHash, b: &KeyHash| {
        for (x, y) in a.as_bytes().iter().zip(b.as_bytes()) {
            if std::hint::black_box(x) != y {
                return false;
            }
        }
        true
    };
    for (class, presented) in inputs(rng, |class, rng| flipped(&stored, class, rng)) {
        runner.run_one(class, || leaky(&presented, &stored));
    }
}

/// Verification of wrong secrets that differ from the issued one first or last.
fn verify_secret_position(runner: &mut CtRunner, rng: &mut BenchRng) {
    let issued = KeyGenerator::default().generate().unwrap();
    let stored = KeyHasher::sha256().hash(&issued);
    for (class, text) in inputs(rng, |class, rng| wrong_secret(&issued, class, rng)) {
        runner.run_one(class, || assert!(!verify(&text, &stored)));
    }
}

/// Verification of keys whose hash differs from the stored one first or last.
fn verify_hash_position(runner: &mut CtRunner, rng: &mut BenchRng) {
    let generator = KeyGenerator::default();
    let inputs = inputs(rng, |class, rng| {
        let key = generator.generate().unwrap();
        let stored = flipped(&KeyHasher::sha256().hash(&key), class, rng);
        (key.expose_secret().to_owned(), stored)
    });
    for (class, (text, stored)) in inputs {
        runner.run_one(class, || assert!(!verify(&text, &stored)));
    }
}

type Handler = tower::util::ServiceFn<
    fn(Request<()>) -> std::future::Ready<Result<Response<Vec<u8>>, std::convert::Infallible>>,
>;

/// The handler behind the layer: no wrong key may reach it.
fn refuse(
    _: Request<()>,
) -> std::future::Ready<Result<Response<Vec<u8>>, std::convert::Infallible>> {
    unreachable!("a wrong key got through")
}

/// The layer over `store`, reading `X-API-Key`, with a handler that must never run.
fn service(store: MemoryStore) -> ApiKeyService<Handler> {
    let handler: Handler = tower::service_fn(refuse as fn(_) -> _);
    Keygate::read_only(store)
        .with_sources([KeySource::header("x-api-key").unwrap()])
        .unwrap()
        .with_audit_sink(NoAudit, 1)
        .layer()
        .layer(handler)
}

/// Times one request per input, each to its 401.
fn run_requests(
    runner: &mut CtRunner,
    service: &ApiKeyService<Handler>,
    inputs: Vec<(Class, String)>,
) {
    let inputs: Vec<(Class, Request<()>)> = inputs
        .into_iter()
        .map(|(class, text)| {
            let mut request = Request::new(());
            request
                .headers_mut()
                .insert("x-api-key", HeaderValue::from_str(&text).unwrap());
            (class, request)
        })
        .collect();
    for (class, request) in inputs {
        // `run_one` takes an `Fn`; the cell hands the request over to its single call.
        let request = std::cell::Cell::new(Some(request));
        runner.run_one(class, || {
            // The embedded store answers synchronously, so the future is ready at once.
            let response = service
                .clone()
                .oneshot(request.take().unwrap())
                .now_or_never();
            assert_eq!(
                response.unwrap().unwrap().status(),
                StatusCode::UNAUTHORIZED
            );
        });
    }
}

/// One request through the layer with a wrong secret that differs first or last.
fn layer_secret_position(runner: &mut CtRunner, rng: &mut BenchRng) {
    let issued = KeyGenerator::default().generate().unwrap();
    let store = MemoryStore::new();
    let stored = StoredKey::new(
        KeyHasher::sha256().hash(&issued),
        Identity::new(issued.id(), "u"),
    );
    store.insert_key(stored).unwrap();
    let inputs = inputs(rng, |class, rng| wrong_secret(&issued, class, rng));
    run_requests(runner, &service(store), inputs);
}

/// One request through the layer with a key whose stored hash differs first or last. Each
/// sample has a key of its own in the store.
fn layer_hash_position(runner: &mut CtRunner, rng: &mut BenchRng) {
    let generator = KeyGenerator::default();
    let store = MemoryStore::new();
    let inputs = inputs(rng, |class, rng| {
        let key = generator.generate().unwrap();
        let stored = flipped(&KeyHasher::sha256().hash(&key), class, rng);
        store
            .insert_key(StoredKey::new(stored, Identity::new(key.id(), "u")))
            .unwrap();
        key.expose_secret().to_owned()
    });
    run_requests(runner, &service(store), inputs);
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters benches by name.
    let filter = std::env::args().skip(1).find(|arg| !arg.starts_with("--"));
    let bench = |name, benchfn| BenchMetadata {
        name: BenchName(name),
        seed: None,
        benchfn,
    };
    let benches = vec![
        bench("compare_hash_position", compare_hash_position),
        bench("control_early_exit_compare", control_early_exit_compare),
        bench("verify_secret_position", verify_secret_position),
        bench("verify_hash_position", verify_hash_position),
        bench("layer_secret_position", layer_secret_position),
        bench("layer_hash_position", layer_hash_position),
    ];
    let options = BenchOpts {
        filter,
        ..BenchOpts::default()
    };
    run_benches_console(options, benches).unwrap();
}
