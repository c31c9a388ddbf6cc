//! Oracles for keygate's fuzz targets.
//!
//! Each function takes arbitrary bytes, drives keygate's public API with them and panics
//! when a documented contract breaks. The cargo-fuzz targets call them with libFuzzer's
//! input; the crate's `tests/fuzz_oracles.rs` includes this file and calls them with the
//! regression inputs under `fuzz/regressions/` and with proptest's input, so the oracles
//! run in CI without a fuzzer.

#![forbid(unsafe_code)]
#![allow(missing_docs)] // a test-support module, included by path into the test crate

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use keygate::{
    ApiKey, ApiKeyLayer, ApiKeyService, KeyFormat, KeyGenerator, KeyHasher, KeyId, KeySource,
    KeyStore, MemoryStore, StoreError, StoredKey,
};
use tower::{Layer, ServiceExt};

/// A valid key of the default format, fixed so that every finding replays the same way.
pub const KEY: &str = "kg_YdAv8cSITuXoOYhFutHOXHxiV4MKATPkAhY3prZAxERXcCE3SWPzBoVGklJLhsGN4W6nT3";
/// Well-formed (its checksum holds) but never issued: the store does not know its id.
pub const UNKNOWN_KEY: &str =
    "kg_SqTVRBo6CN2aKM8pvJ8rqLAUGLKf4chMT1i9L0powABi1fnF5SoFxLfAFyNDJNug4Siz9G";

/// The documented bodies (shared/DESIGN.md, contract 4): one per kind of rejection.
pub const BODY_MISSING: &str =
    r#"{"error":"unauthorized","error_description":"an API key is required"}"#;
pub const BODY_INVALID: &str =
    r#"{"error":"invalid_token","error_description":"the API key is invalid, expired or revoked"}"#;
pub const BODY_AMBIGUOUS: &str =
    r#"{"error":"invalid_request","error_description":"send exactly one API key"}"#;

/// Length of a key of the default format: `kg_` and 70 characters.
const KEY_LEN: usize = 73;
/// Where the checksum starts in a key of the default format.
const CHECKSUM_AT: usize = KEY_LEN - 6;

// ---------------------------------------------------------------------------------------
// Key parsing
// ---------------------------------------------------------------------------------------

/// Key parsing. The first byte picks a mode; the rest is the mode's input.
///
/// - `0`: arbitrary text against several formats; whatever passes must have a key's shape.
/// - `1`: a single-character change of [`KEY`]; it must fail.
/// - `2`: a burst of up to four changed bytes inside [`KEY`]'s id and secret, or inside
///   its checksum; CRC32 detects every burst of up to 32 bits, so it must fail.
/// - `3`: truncations and extensions of [`KEY`]; they must fail.
/// - `4`: an arbitrary prefix; a valid one must give keys that pass, an invalid one an
///   error, never a panic.
pub fn key_format(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 5 {
        0 => arbitrary_text(rest),
        1 => single_change(rest),
        2 => burst_change(rest),
        3 => resized(rest),
        _ => arbitrary_prefix(rest),
    }
}

fn formats() -> [KeyFormat; 4] {
    [
        KeyFormat::new(),
        KeyFormat::with_prefix("kg_live").expect("valid prefix"),
        KeyFormat::with_prefix("x").expect("valid prefix"),
        KeyFormat::with_prefix("undb_api_token").expect("valid prefix"),
    ]
}

fn arbitrary_text(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for format in formats() {
        let checked = format.check(&text);
        let parsed = ApiKey::parse(&text, &format);
        assert_eq!(checked.is_ok(), parsed.is_ok(), "check and parse disagree");
        if let Ok(id) = checked {
            assert_key_shape(&format, &text, id);
            let key = parsed.expect("checked above");
            assert_eq!(key.id(), id);
            assert_eq!(key.expose_secret(), text);
        }
    }
}

/// What every accepted text must look like: prefix, length, charset, and the id in place.
fn assert_key_shape(format: &KeyFormat, text: &str, id: KeyId) {
    let head = format!("{}_", format.prefix());
    assert!(text.starts_with(&head), "accepted without the prefix");
    assert_eq!(
        text.len(),
        format.key_len(),
        "accepted with the wrong length"
    );
    let body = &text[head.len()..];
    assert!(
        body.bytes().all(|b| b.is_ascii_alphanumeric()),
        "accepted a non-alphanumeric body"
    );
    assert_eq!(
        id.as_str(),
        &body[..16],
        "the id is not the body's first 16 characters"
    );
}

fn must_fail(bytes: &[u8]) {
    if bytes == KEY.as_bytes() {
        return;
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return; // a header value that is not UTF-8 is covered by the header-map oracle
    };
    assert!(
        KeyFormat::new().check(text).is_err(),
        "a changed key passed the format check"
    );
}

fn single_change(rest: &[u8]) {
    let [position, replacement, ..] = rest else {
        return;
    };
    let mut changed = KEY.as_bytes().to_vec();
    changed[usize::from(*position) % KEY_LEN] = *replacement;
    must_fail(&changed);
}

fn burst_change(rest: &[u8]) {
    let Some((&position, replacement)) = rest.split_first() else {
        return;
    };
    let replacement = &replacement[..replacement.len().min(4)];
    // Keep the burst on one side of the checksum boundary: a burst across it changes both
    // the signed text and the checksum, and then a match is unlikely but not impossible.
    let position = usize::from(position) % KEY_LEN;
    let end = if position < CHECKSUM_AT {
        CHECKSUM_AT
    } else {
        KEY_LEN
    };
    let len = replacement.len().min(end - position);
    let mut changed = KEY.as_bytes().to_vec();
    changed[position..position + len].copy_from_slice(&replacement[..len]);
    must_fail(&changed);
}

fn resized(rest: &[u8]) {
    let Some((&cut, extra)) = rest.split_first() else {
        return;
    };
    let kept = usize::from(cut) % KEY_LEN;
    must_fail(&KEY.as_bytes()[..kept]);
    let mut longer = KEY.as_bytes().to_vec();
    longer.extend_from_slice(extra);
    must_fail(&longer);
}

fn arbitrary_prefix(bytes: &[u8]) {
    let prefix = String::from_utf8_lossy(bytes);
    let Ok(format) = KeyFormat::with_prefix(&prefix) else {
        return;
    };
    assert_eq!(format.prefix(), prefix);
    let key = KeyGenerator::new(format.clone())
        .generate()
        .expect("the OS random source works");
    let id = format
        .check(key.expose_secret())
        .expect("a generated key passes");
    assert_eq!(id, key.id());
    assert_key_shape(&format, key.expose_secret(), id);
    let preview = format.preview(&key);
    let secret = &key.expose_secret()[prefix.len() + 1 + 16..][..48];
    assert!(!preview.contains(secret), "the preview shows the secret");
}

// ---------------------------------------------------------------------------------------
// Credential extraction
// ---------------------------------------------------------------------------------------

/// Header names the decoder picks from: the three sources of [`Harness`] and others that
/// must be ignored.
const NAMES: [&str; 8] = [
    "authorization",
    "x-api-key",
    "x-undb-api-token",
    "authorization",
    "x-api-key",
    "proxy-authorization",
    "cookie",
    "x-api-key-2",
];

/// Decodes fuzz input into header entries, in order. Each entry is a tag byte, a length
/// byte and that many bytes: the tag's low three bits pick the name, the next three a
/// template that may splice [`KEY`] or [`UNKNOWN_KEY`] in, so the fuzzer reaches the store
/// and the handler without having to guess a checksum.
pub fn decode_headers(mut data: &[u8]) -> Vec<(HeaderName, Vec<u8>)> {
    let mut entries = Vec::new();
    while let [tag, len, rest @ ..] = data {
        let take = usize::from(*len).min(rest.len());
        let (raw, tail) = rest.split_at(take);
        data = tail;
        let name = HeaderName::from_static(NAMES[usize::from(tag & 7)]);
        let value = match (tag >> 3) & 7 {
            0 => raw.to_vec(),
            1 => [b"Bearer ".as_slice(), raw].concat(),
            2 => KEY.as_bytes().to_vec(),
            3 => format!("Bearer {KEY}").into_bytes(),
            4 => splice(KEY.as_bytes(), raw),
            5 => [raw, KEY.as_bytes(), raw].concat(),
            6 => [b"bearer".as_slice(), raw, KEY.as_bytes()].concat(),
            _ => UNKNOWN_KEY.as_bytes().to_vec(),
        };
        entries.push((name, value));
    }
    entries
}

/// `key` with `raw[1..]` written over it at `raw[0]`.
fn splice(key: &[u8], raw: &[u8]) -> Vec<u8> {
    let mut out = key.to_vec();
    if let Some((&at, patch)) = raw.split_first() {
        let at = usize::from(at) % out.len();
        for (slot, byte) in out[at..].iter_mut().zip(patch) {
            *slot = *byte;
        }
    }
    out
}

/// The credential the documented rules find in one header value, or `None` when the value
/// is not one for that source. Written from the contract, not from `source.rs`, so the
/// two can disagree.
fn model_credential(name: &HeaderName, value: &[u8]) -> Option<Vec<u8>> {
    match name.as_str() {
        "x-api-key" | "x-undb-api-token" => Some(value.trim_ascii().to_vec()),
        "authorization" => {
            if value.len() < 6 || !value[..6].eq_ignore_ascii_case(b"bearer") {
                return None;
            }
            match value.get(6) {
                None => Some(Vec::new()),
                Some(b' ' | b'\t') => Some(value[6..].trim_ascii().to_vec()),
                Some(_) => None,
            }
        }
        _ => None,
    }
}

/// A store that counts lookups, so the oracle can check that malformed keys never reach it.
#[derive(Clone)]
struct CountingStore {
    inner: MemoryStore,
    finds: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl KeyStore for CountingStore {
    async fn find(&self, id: &KeyId) -> Result<Option<StoredKey>, StoreError> {
        self.finds.fetch_add(1, Ordering::SeqCst);
        self.inner.find(id).await
    }
}

type Inner =
    tower::util::BoxCloneSyncService<Request<()>, Response<Vec<u8>>, std::convert::Infallible>;

/// One layer over a handler that records what it saw, reused across inputs.
struct Harness {
    runtime: tokio::runtime::Runtime,
    service: ApiKeyService<Inner>,
    finds: Arc<AtomicUsize>,
    handled: Arc<AtomicUsize>,
}

impl Harness {
    fn new() -> Self {
        let store = CountingStore {
            inner: MemoryStore::new(),
            finds: Arc::default(),
        };
        let key = ApiKey::parse(KEY, &KeyFormat::new()).expect("KEY is valid");
        let hash = KeyHasher::sha256().hash(&key);
        store
            .inner
            .insert_key(StoredKey::new(
                hash,
                keygate::Identity::new(key.id(), "alice"),
            ))
            .expect("a fresh store takes the key");
        let handled = Arc::new(AtomicUsize::new(0));
        let seen = handled.clone();
        let inner = tower::service_fn(move |request: Request<()>| {
            seen.fetch_add(1, Ordering::SeqCst);
            // The handler answers with the user and every header value it received, so the
            // oracle can check that the credential was taken out.
            let identity = request.extensions().get::<keygate::Identity>().cloned();
            let mut body = identity.map(|i| i.user().to_owned()).unwrap_or_default();
            for (name, value) in request.headers() {
                body.push('\n');
                body.push_str(name.as_str());
                body.push(':');
                body.push_str(&String::from_utf8_lossy(value.as_bytes()));
            }
            async move { Ok(Response::new(body.into_bytes())) }
        });
        let layer = ApiKeyLayer::new(store.clone())
            .with_sources([
                KeySource::bearer(),
                KeySource::header("x-api-key").expect("valid name"),
                KeySource::header("x-undb-api-token").expect("valid name"),
            ])
            .expect("distinct sources");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        Self {
            runtime,
            service: layer.layer(Inner::new(inner)),
            finds: store.finds,
            handled,
        }
    }
}

thread_local! {
    static HARNESS: RefCell<Option<Harness>> = const { RefCell::new(None) };
}

/// Credential extraction: decodes `data` into headers (see [`decode_headers`]), sends one
/// request through the layer and checks the answer against the model of the contract.
pub fn header_map(data: &[u8]) {
    let entries: Vec<(HeaderName, HeaderValue)> = decode_headers(data)
        .into_iter()
        // hyper refuses values that `HeaderValue` refuses, so the layer never sees them.
        .filter_map(|(name, value)| Some((name, HeaderValue::from_bytes(&value).ok()?)))
        .collect();
    HARNESS.with(|cell| {
        let mut cell = cell.borrow_mut();
        let harness = cell.get_or_insert_with(Harness::new);
        check_request(harness, &entries);
    });
}

fn check_request(harness: &Harness, entries: &[(HeaderName, HeaderValue)]) {
    let mut request = Request::get("/me");
    for (name, value) in entries {
        request = request.header(name, value);
    }
    let request = request.body(()).expect("valid parts");

    let finds_before = harness.finds.load(Ordering::SeqCst);
    let handled_before = harness.handled.load(Ordering::SeqCst);
    let service = harness.service.clone();
    let response = harness
        .runtime
        .block_on(service.oneshot(request))
        .expect("the layer never errors");
    let finds = harness.finds.load(Ordering::SeqCst) - finds_before;
    let handled = harness.handled.load(Ordering::SeqCst) - handled_before;
    let status = response.status();
    let body = String::from_utf8_lossy(response.body()).into_owned();

    let credentials: Vec<Vec<u8>> = entries
        .iter()
        .filter_map(|(name, value)| model_credential(name, value.as_bytes()))
        .collect();
    let well_formed = |token: &[u8]| {
        std::str::from_utf8(token).is_ok_and(|text| KeyFormat::new().check(text).is_ok())
    };

    match credentials.as_slice() {
        [] => {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "no credential");
            assert_eq!(body, BODY_MISSING);
            assert_eq!(finds, 0, "the store was asked without a credential");
        }
        [token] if token.as_slice() == KEY.as_bytes() => {
            assert_eq!(status, StatusCode::OK, "the one valid key was refused");
            assert_eq!(handled, 1);
            let mut lines = body.lines();
            assert_eq!(lines.next(), Some("alice"));
            // Other headers may hold the key's text (a cookie, another scheme); none of
            // them may still be a credential.
            let credential_left = lines.any(|line| {
                line.split_once(':').is_some_and(|(name, value)| {
                    let name = HeaderName::from_bytes(name.as_bytes()).expect("a name");
                    model_credential(&name, value.as_bytes()).is_some()
                })
            });
            assert!(!credential_left, "the handler saw the credential: {body}");
        }
        [token] => {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "an invalid key got in");
            assert_eq!(body, BODY_INVALID, "the 401 body differs between reasons");
            let expected_finds = usize::from(well_formed(token));
            assert_eq!(
                finds, expected_finds,
                "malformed keys must not reach the store"
            );
        }
        _ => {
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "two credentials in one request"
            );
            assert_eq!(body, BODY_AMBIGUOUS);
            assert_eq!(finds, 0, "the store was asked for an ambiguous request");
        }
    }
    if status != StatusCode::OK {
        assert_eq!(handled, 0, "the handler ran for a rejected request");
        let challenge = response.headers().get(http::header::WWW_AUTHENTICATE);
        assert!(challenge.is_some(), "a rejection without a challenge");
    }
}
