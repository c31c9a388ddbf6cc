//! A dudect test (Reparaz, Balasch, Verbauwhede 2016) of secret verification: does
//! rejecting a wrong secret take a time that depends on *where* it is wrong?
//!
//! Each bench times two classes of wrong keys against one issued key. Left: the secret
//! differs in its first character; Right: it differs in its last one. Both carry a valid
//! checksum, so both reach verification. Welch's t-test on the two timing distributions
//! must stay below 5 in absolute value (dudect's threshold for "no leak found").
//!
//! ```text
//! cargo bench --bench timing                      # 1M samples per bench
//! KEYGATE_DUDECT_SAMPLES=5000000 cargo bench --bench timing -- layer
//! ```
//!
//! dudect prints `max t` for each bench: below 5 in absolute value, no leak was found.

use dudect_bencher::ctbench::{BenchMetadata, BenchName, BenchOpts, run_benches_console};
use dudect_bencher::rand::{Rng, RngExt};
use dudect_bencher::{BenchRng, Class, CtRunner};
use futures_util::FutureExt;
use http::{HeaderValue, Request, Response, StatusCode};
use keygate::{
    ApiKey, ApiKeyLayer, Identity, KeyFormat, KeyGenerator, KeyHash, KeyHasher, KeySource,
    MemoryStore, NoAudit, StoredKey,
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

/// Distinct wrong keys per class; samples draw from these at random.
const VARIANTS: usize = 4096;

/// Characters in a key's id, which precedes the secret.
const ID_LEN: usize = 16;
const ALPHANUMERIC: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The issued key, and wrong keys that differ from it at one secret position each.
struct Keys {
    format: KeyFormat,
    issued: ApiKey,
    first: Vec<String>,
    last: Vec<String>,
}

impl Keys {
    fn new(rng: &mut BenchRng) -> Self {
        let format = KeyFormat::new();
        let issued = KeyGenerator::new(format.clone()).generate().unwrap();
        let secret_start = format.prefix().len() + 1 + ID_LEN;
        let secret_end = format.key_len() - 6;
        let first = (0..VARIANTS)
            .map(|_| wrong_at(issued.expose_secret(), secret_start, rng))
            .collect();
        let last = (0..VARIANTS)
            .map(|_| wrong_at(issued.expose_secret(), secret_end - 1, rng))
            .collect();
        Self {
            format,
            issued,
            first,
            last,
        }
    }

    /// A random class and a random wrong key of that class.
    fn pick(&self, rng: &mut BenchRng) -> (Class, &str) {
        let index = rng.random_range(0..VARIANTS);
        if rng.random::<bool>() {
            (Class::Left, &self.first[index])
        } else {
            (Class::Right, &self.last[index])
        }
    }
}

/// `key` with the character at `position` replaced by another alphanumeric one, and the
/// checksum recomputed so that the wrong key is well-formed and reaches verification.
fn wrong_at(key: &str, position: usize, rng: &mut BenchRng) -> String {
    let mut bytes = key.as_bytes().to_vec();
    let original = bytes[position];
    let mut replacement = original;
    while replacement == original {
        replacement = ALPHANUMERIC[rng.random_range(0..ALPHANUMERIC.len())];
    }
    bytes[position] = replacement;
    let signed = bytes.len() - 6;
    let mut crc = crc32fast::hash(&bytes[..signed]);
    for slot in bytes[signed..].iter_mut().rev() {
        *slot = BASE62[(crc % 62) as usize];
        crc /= 62;
    }
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        KeyFormat::new().check(&text).is_ok(),
        "the wrong key must be well-formed"
    );
    text
}

/// Parsing, hashing and the constant-time comparison: what the layer does per key once
/// the store has answered.
fn parse_hash_compare(runner: &mut CtRunner, rng: &mut BenchRng) {
    let keys = Keys::new(rng);
    let hasher = KeyHasher::sha256();
    let stored = hasher.hash(&keys.issued);
    for _ in 0..samples() {
        let (class, text) = keys.pick(rng);
        runner.run_one(class, || {
            let presented = ApiKey::parse(text, &keys.format).unwrap();
            bool::from(hasher.hash(&presented).ct_eq(&stored))
        });
    }
}

/// The comparison alone, on hashes that differ in their first byte or in their last: the
/// step where an early exit would show.
fn hash_compare(runner: &mut CtRunner, rng: &mut BenchRng) {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    let stored = hash_of(bytes);
    let flipped = |position: usize, rng: &mut BenchRng| {
        let mut other = bytes;
        other[position] ^= rng.random_range(1..=255u8);
        hash_of(other)
    };
    let first: Vec<KeyHash> = (0..VARIANTS).map(|_| flipped(0, rng)).collect();
    let last: Vec<KeyHash> = (0..VARIANTS).map(|_| flipped(31, rng)).collect();
    for _ in 0..samples() {
        let index = rng.random_range(0..VARIANTS);
        let (class, presented) = if rng.random::<bool>() {
            (Class::Left, &first[index])
        } else {
            (Class::Right, &last[index])
        };
        runner.run_one(class, || bool::from(presented.ct_eq(&stored)));
    }
}

fn hash_of(bytes: [u8; 32]) -> KeyHash {
    use base64::Engine;
    KeyHash::from_base64(&base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)).unwrap()
}

/// The whole layer on the embedded store: one request with a wrong key, to the 401.
fn layer(runner: &mut CtRunner, rng: &mut BenchRng) {
    let keys = Keys::new(rng);
    let store = MemoryStore::new();
    let hash = KeyHasher::sha256().hash(&keys.issued);
    store
        .insert_key(StoredKey::new(hash, Identity::new(keys.issued.id(), "u")))
        .unwrap();
    let layer = ApiKeyLayer::new(store)
        .with_sources([KeySource::header("x-api-key").unwrap()])
        .unwrap()
        .with_audit_sink(NoAudit, 1);
    let inner = tower::service_fn(|_: Request<()>| async {
        Ok::<_, std::convert::Infallible>(Response::new(Vec::<u8>::new()))
    });
    let service = layer.layer(inner);
    let values: Vec<(Class, HeaderValue)> = (0..VARIANTS * 2)
        .map(|_| {
            let (class, text) = keys.pick(rng);
            (class, HeaderValue::from_str(text).unwrap())
        })
        .collect();
    for _ in 0..samples() {
        let (class, value) = &values[rng.random_range(0..values.len())];
        runner.run_one(*class, || {
            let mut request = Request::new(());
            request.headers_mut().insert("x-api-key", value.clone());
            // The embedded store answers synchronously, so the future is ready at once.
            let response = service.clone().oneshot(request).now_or_never();
            let status = response.unwrap().unwrap().status();
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        });
    }
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters benches by name.
    let filter = std::env::args().skip(1).find(|arg| !arg.starts_with("--"));
    let benches = vec![
        BenchMetadata {
            name: BenchName("hash_compare"),
            seed: None,
            benchfn: hash_compare,
        },
        BenchMetadata {
            name: BenchName("parse_hash_compare"),
            seed: None,
            benchfn: parse_hash_compare,
        },
        BenchMetadata {
            name: BenchName("layer"),
            seed: None,
            benchfn: layer,
        },
    ];
    let options = BenchOpts {
        filter,
        ..BenchOpts::default()
    };
    run_benches_console(options, benches).unwrap();
}
