//! Oracles for keygate's fuzz targets.
//!
//! Each function takes arbitrary bytes, drives keygate's public API with them and panics
//! when a documented contract breaks. The cargo-fuzz targets call them with libFuzzer's
//! input; the crate's `tests/fuzz_regressions.rs` and `tests/properties.rs` include this
//! file and call them with the inputs under `fuzz/regressions/` and with proptest's input,
//! so the oracles run in CI without a fuzzer.
//!
//! The keys below are test fixtures of this file only, never issued anywhere.

#![forbid(unsafe_code)]
#![allow(missing_docs)] // a test-support module, included by path into the test crate

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use keygate::{
    ApiKey, ApiKeyService, KeyFormat, KeyGenerator, KeyHasher, KeyId, KeySource, KeyStore, Keygate,
    MalformedKey, MemoryStore, StoreError, StoredKey,
};
use tower::{Layer, ServiceExt};

/// A valid key of the default format, fixed so that every finding replays the same way.
pub const KEY: &str = "kg_YdAv8cSITuXoOYhFutHOXHxiV4MKATPkAhY3prZAxERXcCE3SWPzBoVGklJLhsGN4W6nT3";
/// Well-formed (its checksum holds) but never issued: the store does not know its id.
pub const UNKNOWN_KEY: &str =
    "kg_SqTVRBo6CN2aKM8pvJ8rqLAUGLKf4chMT1i9L0powABi1fnF5SoFxLfAFyNDJNug4Siz9G";
/// [`KEY`]'s id with another secret and a valid checksum: a wrong secret.
pub const WRONG_SECRET_KEY: &str =
    "kg_YdAv8cSITuXoOYhFz3iWFafpTJgzENWFWcOseARAhiaBZRBrd0MVclbeEu6gXzPY3uOflF";
/// Stored, but revoked.
pub const REVOKED_KEY: &str =
    "kg_5S47qJgOGD9z4lraxu0iHdRwMO8gOiZB7J1ptLMOuOVdPk8spEpG4fHzggK7vZse21bOY0";
/// Stored, but expired.
pub const EXPIRED_KEY: &str =
    "kg_SkLE7nlKhTBVbgqxfjFDfo1vqo20nVPAXr0N5RYCuAJ91fSOwLqVxA6QS5Gj2KLh43oIBG";

/// The documented bodies (shared/DESIGN.md, contract 4): one per kind of rejection.
pub const BODY_MISSING: &str = r#"{"error":"unauthorized","error_description":"an API key is required: send it as Authorization: Bearer <key>, or in the x-api-key header, or in the x-undb-api-token header"}"#;
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
/// - `1`: a single-character change of [`KEY`]; it must fail, and when the new character
///   is alphanumeric (so the charset check passes) it must fail the checksum.
/// - `2`: a burst of up to four changed alphanumeric characters inside [`KEY`]'s id and
///   secret, or inside its checksum; CRC32 detects every burst of up to 32 bits, so it
///   must fail the checksum.
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

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Asserts that a changed key is refused, by the checksum when `by_checksum`.
fn must_fail(bytes: &[u8], by_checksum: bool) {
    if bytes == KEY.as_bytes() {
        return;
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return; // a header value that is not UTF-8 is covered by the header-map oracle
    };
    let checked = KeyFormat::new().check(text);
    assert!(checked.is_err(), "a changed key passed the format check");
    if by_checksum {
        assert_eq!(
            checked,
            Err(MalformedKey::Checksum),
            "wrong check failed first"
        );
    }
}

fn single_change(rest: &[u8]) {
    let [position, replacement, ..] = rest else {
        return;
    };
    let position = usize::from(*position) % KEY_LEN;
    // Bytes below 0x80 become a key character; the others stay raw, to fail the charset.
    let alphanumeric = *replacement < 0x80;
    let replacement = if alphanumeric {
        BASE62[usize::from(*replacement) % 62]
    } else {
        *replacement
    };
    let mut changed = KEY.as_bytes().to_vec();
    changed[position] = replacement;
    // A change inside the prefix fails the prefix check, not the checksum.
    must_fail(&changed, alphanumeric && position >= 3);
}

fn burst_change(rest: &[u8]) {
    let Some((&position, replacement)) = rest.split_first() else {
        return;
    };
    let replacement: Vec<u8> = replacement
        .iter()
        .take(4)
        .map(|&byte| BASE62[usize::from(byte) % 62])
        .collect();
    // Keep the burst after the prefix and on one side of the checksum boundary: a burst
    // across it changes both the signed text and the checksum, and then a match is
    // unlikely but not impossible.
    let position = 3 + usize::from(position) % (KEY_LEN - 3);
    let end = if position < CHECKSUM_AT {
        CHECKSUM_AT
    } else {
        KEY_LEN
    };
    let len = replacement.len().min(end - position);
    let mut changed = KEY.as_bytes().to_vec();
    changed[position..position + len].copy_from_slice(&replacement[..len]);
    must_fail(&changed, true);
}

fn resized(rest: &[u8]) {
    let Some((&cut, extra)) = rest.split_first() else {
        return;
    };
    let kept = usize::from(cut) % KEY_LEN;
    must_fail(&KEY.as_bytes()[..kept], false);
    let mut longer = KEY.as_bytes().to_vec();
    longer.extend_from_slice(extra);
    must_fail(&longer, false);
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
/// byte and that many bytes: the tag's low three bits pick the name, the rest a template
/// that may splice in [`KEY`] or one of the other fixture keys, so the fuzzer reaches the
/// store, every kind of invalid key and the handler without having to guess a checksum.
pub fn decode_headers(mut data: &[u8]) -> Vec<(HeaderName, Vec<u8>)> {
    let mut entries = Vec::new();
    while let [tag, len, rest @ ..] = data {
        let take = usize::from(*len).min(rest.len());
        let (raw, tail) = rest.split_at(take);
        data = tail;
        let name = HeaderName::from_static(NAMES[usize::from(tag & 7)]);
        let value = match (tag >> 3) % 12 {
            0 => raw.to_vec(),
            1 => [b"Bearer ".as_slice(), raw].concat(),
            2 => KEY.as_bytes().to_vec(),
            3 => format!("Bearer {KEY}").into_bytes(),
            4 => splice(KEY.as_bytes(), raw),
            5 => [raw, KEY.as_bytes(), raw].concat(),
            6 => [&bearer_scheme(raw), KEY.as_bytes()].concat(),
            7 => UNKNOWN_KEY.as_bytes().to_vec(),
            8 => WRONG_SECRET_KEY.as_bytes().to_vec(),
            9 => format!("Bearer {REVOKED_KEY}").into_bytes(),
            10 => EXPIRED_KEY.as_bytes().to_vec(),
            _ => [raw, b"Bearer ", WRONG_SECRET_KEY.as_bytes()].concat(),
        };
        entries.push((name, value));
    }
    entries
}

/// `Bearer` in the case that `raw[0]`'s bits pick letter by letter, then the separator that
/// `raw[1]` picks: a space, a tab, two spaces, or none (which makes it another scheme).
fn bearer_scheme(raw: &[u8]) -> Vec<u8> {
    let case = raw.first().copied().unwrap_or(0);
    let mut scheme: Vec<u8> = b"bearer"
        .iter()
        .enumerate()
        .map(|(i, &letter)| {
            if case >> i & 1 == 1 {
                letter.to_ascii_uppercase()
            } else {
                letter
            }
        })
        .collect();
    let separator: &[u8] = match raw.get(1).map(|byte| byte % 4) {
        None | Some(0) => b" ",
        Some(1) => b"\t",
        Some(2) => b"  ",
        _ => b"",
    };
    scheme.extend_from_slice(separator);
    scheme
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
/// is not one for that source. The rules are the README's ("How a header value is read"):
/// a named header's value trimmed of spaces and tabs; for `Authorization`, the scheme
/// `Bearer` in any case (RFC 7235 section 2.1) followed by nothing or by spaces and the
/// token. They are simple enough that this restatement looks like `source.rs`; it is kept
/// apart so that a change to either shows up here.
fn model_credential(name: &HeaderName, value: &[u8]) -> Option<Vec<u8>> {
    match name.as_str() {
        "x-api-key" | "x-undb-api-token" => Some(value.trim_ascii().to_vec()),
        "authorization" => {
            if value.len() < 6 || !value[..6].eq_ignore_ascii_case(b"bearer") {
                return None;
            }
            // RFC 6750 section 2.1: only spaces separate the scheme from the token.
            match value.get(6) {
                None => Some(Vec::new()),
                Some(b' ') => {
                    let rest = value[6..].trim_ascii_end();
                    let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
                    Some(rest[start..].to_vec())
                }
                Some(_) => None,
            }
        }
        _ => None,
    }
}

/// A store that counts lookups, so the oracle can check that malformed keys never reach it.
/// With `fast`, it answers through `find_ready` as the embedded and cached stores do;
/// without, through the asynchronous `find` as the SQL stores do.
#[derive(Clone)]
struct CountingStore {
    inner: MemoryStore,
    fast: bool,
    finds: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl KeyStore for CountingStore {
    async fn find(&self, id: &KeyId) -> Result<Option<StoredKey>, StoreError> {
        self.finds.fetch_add(1, Ordering::SeqCst);
        self.inner.find(id).await
    }

    fn find_ready(&self, id: &KeyId) -> Option<Result<Option<StoredKey>, StoreError>> {
        if !self.fast {
            return None;
        }
        self.finds.fetch_add(1, Ordering::SeqCst);
        self.inner.find_ready(id)
    }
}

type Inner =
    tower::util::BoxCloneSyncService<Request<()>, Response<Vec<u8>>, std::convert::Infallible>;

/// One layer over a counting store and a handler that records what it saw.
struct Path {
    service: ApiKeyService<Inner>,
    finds: Arc<AtomicUsize>,
    handled: Arc<AtomicUsize>,
}

/// Both lookup paths, reused across inputs; every input goes through each.
struct Harness {
    runtime: tokio::runtime::Runtime,
    paths: [Path; 2],
}

/// The fixture store: [`KEY`] for alice, [`REVOKED_KEY`] revoked, [`EXPIRED_KEY`] expired.
fn fixture_store() -> MemoryStore {
    let store = MemoryStore::new();
    let stored = |text: &str| {
        let key = ApiKey::parse(text, &KeyFormat::new()).expect("a valid fixture key");
        let identity = keygate::Identity::new(key.id(), "alice");
        StoredKey::new(KeyHasher::sha256().hash(&key), identity)
    };
    let mut revoked = stored(REVOKED_KEY);
    revoked.revoked = true;
    let mut expired = stored(EXPIRED_KEY);
    expired.expires_at = Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1));
    for key in [stored(KEY), revoked, expired] {
        store.insert_key(key).expect("a fresh store takes the key");
    }
    store
}

impl Path {
    fn new(store: &MemoryStore, fast: bool) -> Self {
        let store = CountingStore {
            inner: store.clone(),
            fast,
            finds: Arc::default(),
        };
        let handled = Arc::new(AtomicUsize::new(0));
        let seen = handled.clone();
        let inner = tower::service_fn(move |request: Request<()>| {
            seen.fetch_add(1, Ordering::SeqCst);
            // The handler answers with the user and every header value it received, so the
            // oracle can check that the credential was taken out.
            let identity = request
                .extensions()
                .get::<keygate::Authenticated>()
                .map(|found| found.identity().clone());
            let mut body = identity.map(|i| i.user().to_owned()).unwrap_or_default();
            for (name, value) in request.headers() {
                body.push('\n');
                body.push_str(name.as_str());
                body.push(':');
                body.push_str(&String::from_utf8_lossy(value.as_bytes()));
            }
            async move { Ok(Response::new(body.into_bytes())) }
        });
        let layer = Keygate::read_only(store.clone())
            .with_sources([
                KeySource::bearer(),
                KeySource::header("x-api-key").expect("valid name"),
                KeySource::header("x-undb-api-token").expect("valid name"),
            ])
            .expect("distinct sources")
            .layer();
        Self {
            service: layer.layer(Inner::new(inner)),
            finds: store.finds,
            handled,
        }
    }
}

impl Harness {
    fn new() -> Self {
        let store = fixture_store();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        Self {
            runtime,
            paths: [Path::new(&store, true), Path::new(&store, false)],
        }
    }
}

thread_local! {
    static HARNESS: RefCell<Option<Harness>> = const { RefCell::new(None) };
}

/// Credential extraction: decodes `data` into headers (see [`decode_headers`]), sends one
/// request through each lookup path of the layer and checks each answer against the model
/// of the contract.
pub fn header_map(data: &[u8]) {
    let entries: Vec<(HeaderName, HeaderValue)> = decode_headers(data)
        .into_iter()
        // hyper refuses values that `HeaderValue` refuses, so the layer never sees them.
        .filter_map(|(name, value)| Some((name, HeaderValue::from_bytes(&value).ok()?)))
        .collect();
    HARNESS.with(|cell| {
        let mut cell = cell.borrow_mut();
        let harness = cell.get_or_insert_with(Harness::new);
        for path in &harness.paths {
            check_request(&harness.runtime, path, &entries);
        }
    });
}

fn check_request(
    runtime: &tokio::runtime::Runtime,
    path: &Path,
    entries: &[(HeaderName, HeaderValue)],
) {
    let mut request = Request::get("/me");
    for (name, value) in entries {
        request = request.header(name, value);
    }
    let request = request.body(()).expect("valid parts");

    let finds_before = path.finds.load(Ordering::SeqCst);
    let handled_before = path.handled.load(Ordering::SeqCst);
    let response = runtime
        .block_on(path.service.clone().oneshot(request))
        .expect("the layer never errors");
    let finds = path.finds.load(Ordering::SeqCst) - finds_before;
    let handled = path.handled.load(Ordering::SeqCst) - handled_before;
    let status = response.status();
    let body = String::from_utf8_lossy(response.body()).into_owned();
    let challenge = response
        .headers()
        .get(http::header::WWW_AUTHENTICATE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());

    let credentials: Vec<Vec<u8>> = entries
        .iter()
        .filter_map(|(name, value)| model_credential(name, value.as_bytes()))
        .collect();
    let well_formed = |token: &[u8]| {
        std::str::from_utf8(token).is_ok_and(|text| KeyFormat::new().check(text).is_ok())
    };

    // The expected answer: status, body and `error=` of the challenge for a rejection,
    // and how many store lookups it takes.
    let (expected_status, expected_body, expected_error, expected_finds) =
        match credentials.as_slice() {
            [] => (StatusCode::UNAUTHORIZED, BODY_MISSING, None, 0),
            [token] if token.as_slice() == KEY.as_bytes() => (StatusCode::OK, "", None, 1),
            [token] => (
                StatusCode::UNAUTHORIZED,
                BODY_INVALID,
                Some("invalid_token"),
                usize::from(well_formed(token)),
            ),
            _ => (
                StatusCode::BAD_REQUEST,
                BODY_AMBIGUOUS,
                Some("invalid_request"),
                0,
            ),
        };
    assert_eq!(
        status,
        expected_status,
        "credentials: {}",
        credentials.len()
    );
    assert_eq!(
        finds, expected_finds,
        "store lookups (malformed keys must make none)"
    );

    if status == StatusCode::OK {
        assert_eq!(handled, 1);
        let mut lines = body.lines();
        assert_eq!(lines.next(), Some("alice"));
        // Other headers may hold the key's text (a cookie, another scheme); none of them
        // may still be a credential.
        let credential_left = lines.any(|line| {
            line.split_once(':').is_some_and(|(name, value)| {
                let name = HeaderName::from_bytes(name.as_bytes()).expect("a name");
                model_credential(&name, value.as_bytes()).is_some()
            })
        });
        assert!(!credential_left, "the handler saw a credential header");
    } else {
        assert_eq!(handled, 0, "the handler ran for a rejected request");
        assert_eq!(body, expected_body, "one body per kind of rejection");
        let challenge = challenge.expect("a rejection without a challenge");
        match expected_error {
            Some(error) => assert!(
                challenge.contains(&format!("error=\"{error}\"")),
                "challenge {challenge}"
            ),
            None => assert!(!challenge.contains("error="), "challenge {challenge}"),
        }
    }
}
