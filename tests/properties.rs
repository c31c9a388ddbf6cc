//! Property tests: generated keys always verify, any one-character change never does, and
//! no header value, however odd, panics the layer or gets an undocumented answer.

#[path = "../fuzz/src/lib.rs"]
mod oracles;

use std::convert::Infallible;

use futures_util::FutureExt;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use keygate::{
    ApiKey, ApiKeyService, Identity, KeyFormat, KeyGenerator, KeyHasher, KeySource, Keygate,
    MalformedKey, MemoryStore, NoAudit, StoredKey,
};
use proptest::prelude::*;
use tower::{Layer, ServiceExt};

type Handler = tower::util::BoxCloneSyncService<Request<()>, Response<Vec<u8>>, Infallible>;

/// A layer over the embedded store holding `key`, hashed by `hasher`.
fn service_with(key: &ApiKey, format: KeyFormat, hasher: KeyHasher) -> ApiKeyService<Handler> {
    let store = MemoryStore::new();
    let stored = StoredKey::new(hasher.hash(key), Identity::new(key.id(), "alice"));
    store.insert_key(stored).unwrap();
    let handler = tower::service_fn(|request: Request<()>| {
        let user = request
            .extensions()
            .get::<keygate::Authenticated>()
            .unwrap()
            .identity()
            .user()
            .to_owned();
        async move { Ok(Response::new(user.into_bytes())) }
    });
    Keygate::read_only(store)
        .with_sources([KeySource::bearer(), KeySource::header("x-api-key").unwrap()])
        .unwrap()
        .with_format(format)
        .with_hasher(hasher)
        .with_audit_sink(NoAudit, 1)
        .layer()
        .layer(Handler::new(handler))
}

/// Sends one request; the embedded store answers synchronously, so the answer is ready
/// without a runtime.
fn status(service: &ApiKeyService<Handler>, headers: &[(HeaderName, HeaderValue)]) -> StatusCode {
    let mut request = Request::new(());
    for (name, value) in headers {
        request.headers_mut().append(name.clone(), value.clone());
    }
    let response = service.clone().oneshot(request).now_or_never();
    response
        .expect("the embedded store answers at once")
        .unwrap()
        .status()
}

fn x_api_key(value: &str) -> Vec<(HeaderName, HeaderValue)> {
    vec![(
        HeaderName::from_static("x-api-key"),
        HeaderValue::from_str(value).unwrap(),
    )]
}

const ALPHANUMERIC: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `key` with one character after its prefix replaced, or `None` when `replacement` is the
/// character already there.
fn changed_at(
    format: &KeyFormat,
    key: &ApiKey,
    position: prop::sample::Index,
    replacement: char,
) -> Option<String> {
    let text = key.expose_secret();
    // Only the checksummed part: the prefix is checked by comparison, not by checksum.
    let head = format.prefix().len() + 1;
    let at = head + position.index(text.len() - head);
    if char::from(text.as_bytes()[at]) == replacement {
        return None;
    }
    let mut changed = text.to_owned();
    changed.replace_range(at..=at, replacement.encode_utf8(&mut [0; 4]));
    Some(changed)
}

/// Prefixes [`KeyFormat::with_prefix`] accepts.
fn prefix() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9_]{0,31}"
}

/// The plain hasher, or HMAC with a pepper of a valid length.
fn hasher() -> impl Strategy<Value = KeyHasher> {
    prop_oneof![
        Just(KeyHasher::sha256()),
        proptest::collection::vec(any::<u8>(), 32..64)
            .prop_map(|pepper| KeyHasher::hmac_sha256(&pepper).unwrap()),
    ]
}

proptest! {
    #[test]
    fn every_generated_key_parses_back_and_verifies(prefix in prefix(), hasher in hasher()) {
        let format = KeyFormat::with_prefix(&prefix).unwrap();
        let key = KeyGenerator::new(format.clone()).generate().unwrap();

        prop_assert_eq!(format.check(key.expose_secret()), Ok(key.id()));
        let parsed = ApiKey::parse(key.expose_secret(), &format).unwrap();
        prop_assert_eq!(parsed.id(), key.id());
        let service = service_with(&key, format, hasher);
        prop_assert_eq!(status(&service, &x_api_key(key.expose_secret())), StatusCode::OK);
    }

    #[test]
    fn any_single_character_change_fails_the_checksum_and_verification(
        prefix in prefix(),
        position in any::<prop::sample::Index>(),
        replacement in prop::sample::select(ALPHANUMERIC.to_vec()),
    ) {
        let format = KeyFormat::with_prefix(&prefix).unwrap();
        let key = KeyGenerator::new(format.clone()).generate().unwrap();
        // A key character for a key character: only the checksum can catch it.
        let Some(changed) = changed_at(&format, &key, position, char::from(replacement)) else {
            return Ok(());
        };
        prop_assert_eq!(format.check(&changed), Err(MalformedKey::Checksum));
        let service = service_with(&key, format, KeyHasher::sha256());
        prop_assert_eq!(status(&service, &x_api_key(&changed)), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn any_single_character_change_to_any_character_fails_the_format_check(
        prefix in prefix(),
        position in any::<prop::sample::Index>(),
        replacement in any::<char>(),
    ) {
        let format = KeyFormat::with_prefix(&prefix).unwrap();
        let key = KeyGenerator::new(format.clone()).generate().unwrap();
        let Some(changed) = changed_at(&format, &key, position, replacement) else {
            return Ok(());
        };
        prop_assert!(format.check(&changed).is_err(), "a changed key passed the check");
        if let Ok(value) = HeaderValue::from_str(&changed) {
            let service = service_with(&key, format, KeyHasher::sha256());
            let headers = [(HeaderName::from_static("x-api-key"), value)];
            prop_assert_eq!(status(&service, &headers), StatusCode::UNAUTHORIZED);
        }
    }

    #[test]
    fn arbitrary_header_values_never_panic_and_get_a_documented_status(
        values in proptest::collection::vec(
            (0..4usize, proptest::collection::vec(any::<u8>(), 0..256)),
            0..5,
        ),
    ) {
        const NAMES: [&str; 4] = ["authorization", "x-api-key", "x-other", "cookie"];
        let key = KeyGenerator::default().generate().unwrap();
        let service = service_with(&key, KeyFormat::new(), KeyHasher::sha256());
        let headers: Vec<_> = values
            .iter()
            .filter_map(|(name, bytes)| {
                Some((HeaderName::from_static(NAMES[*name]), HeaderValue::from_bytes(bytes).ok()?))
            })
            .collect();
        let got = status(&service, &headers);
        prop_assert!(
            [StatusCode::BAD_REQUEST, StatusCode::UNAUTHORIZED].contains(&got),
            "undocumented status {got}"
        );
    }

    #[test]
    fn random_header_maps_hold_the_fuzz_oracle(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        oracles::header_map(&data);
    }

    #[test]
    fn random_key_texts_hold_the_fuzz_oracle(data in proptest::collection::vec(any::<u8>(), 0..128)) {
        oracles::key_format(&data);
    }
}
