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

/// Characters in a key's id, which precedes the secret.
const ID_LEN: usize = 16;
const ALPHANUMERIC: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
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

/// The issued key, and how to make wrong keys that differ from it at one secret position.
struct Keys {
    format: KeyFormat,
    issued: ApiKey,
}

impl Keys {
    fn new() -> Self {
        let format = KeyFormat::new();
        let issued = KeyGenerator::new(format.clone()).generate().unwrap();
        Self { format, issued }
    }

    /// A well-formed wrong key: its secret differs from the issued one in its first
    /// character (Left) or its last (Right).
    fn wrong(&self, class: Class, rng: &mut BenchRng) -> String {
        let secret_start = self.format.prefix().len() + 1 + ID_LEN;
        let secret_end = self.format.key_len() - 6;
        let position = match class {
            Class::Left => secret_start,
            Class::Right => secret_end - 1,
        };
        wrong_at(self.issued.expose_secret(), position, rng)
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
    String::from_utf8(bytes).unwrap()
}

/// Parsing, hashing and the constant-time comparison: what the layer does per key once
/// the store has answered.
fn parse_hash_compare(runner: &mut CtRunner, rng: &mut BenchRng) {
    let keys = Keys::new();
    let hasher = KeyHasher::sha256();
    let stored = hasher.hash(&keys.issued);
    for (class, text) in inputs(rng, |class, rng| keys.wrong(class, rng)) {
        runner.run_one(class, || {
            let presented = ApiKey::parse(&text, &keys.format).unwrap();
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
    let inputs = inputs(rng, |class, rng| {
        let position = match class {
            Class::Left => 0,
            Class::Right => 31,
        };
        let mut other = bytes;
        other[position] ^= rng.random_range(1..=255u8);
        hash_of(other)
    });
    for (class, presented) in inputs {
        runner.run_one(class, || bool::from(presented.ct_eq(&stored)));
    }
}

fn hash_of(bytes: [u8; 32]) -> KeyHash {
    use base64::Engine;
    KeyHash::from_base64(&base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)).unwrap()
}

/// The whole layer on the embedded store: one request with a wrong key, to the 401.
fn layer(runner: &mut CtRunner, rng: &mut BenchRng) {
    let keys = Keys::new();
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
    let inputs = inputs(rng, |class, rng| {
        let mut request = Request::new(());
        let value = HeaderValue::from_str(&keys.wrong(class, rng)).unwrap();
        request.headers_mut().insert("x-api-key", value);
        request
    });
    for (class, request) in inputs {
        // `run_one` takes an `Fn`; the cell hands the request over to its single call.
        let request = std::cell::Cell::new(Some(request));
        runner.run_one(class, || {
            // The embedded store answers synchronously, so the future is ready at once.
            let response = service
                .clone()
                .oneshot(request.take().unwrap())
                .now_or_never();
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
