//! Hostile header values, table-driven: each case gets the documented status, challenge
//! and body (README, "What a request gets"), never a 500 and never a panic; a value that
//! cannot be a well-formed key never reaches the store.

mod common;

use std::time::Duration;

use common::{Fixture, send};
use http::StatusCode;
use keygate::{KeyFormat, KeyGenerator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BODY_MISSING: &str = r#"{"error":"unauthorized","error_description":"an API key is required: send it as Authorization: Bearer <key>, or in the x-api-key header"}"#;
const BODY_INVALID: &str =
    r#"{"error":"invalid_token","error_description":"the API key is invalid, expired or revoked"}"#;
const BODY_AMBIGUOUS: &str =
    r#"{"error":"invalid_request","error_description":"send exactly one API key"}"#;

/// What a case must get back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// 200 from the handler.
    Allowed,
    /// 401, the challenge without `error=`, the "required" body.
    Missing,
    /// 401 `invalid_token`, the one invalid body, and no store call.
    Malformed,
    /// 401 `invalid_token`, the one invalid body, after one store call.
    Unknown,
    /// 400 `invalid_request`, and no store call.
    Ambiguous,
}

/// A header value built from the fixture's valid key.
type Build = fn(&str) -> Vec<u8>;

struct Case {
    name: &'static str,
    headers: &'static [(&'static str, Build)],
    expect: Expect,
}

fn raw(value: &'static [u8]) -> Vec<u8> {
    value.to_vec()
}

/// A key of another deployment: right shape and checksum, prefix `other`.
fn other_prefix_key() -> String {
    let format = KeyFormat::with_prefix("other").unwrap();
    KeyGenerator::new(format)
        .generate()
        .unwrap()
        .expose_secret()
        .to_owned()
}

/// A well-formed key (valid checksum) whose id no store knows.
fn unknown_key() -> String {
    KeyGenerator::default()
        .generate()
        .unwrap()
        .expose_secret()
        .to_owned()
}

const CASES: &[Case] = &[
    Case {
        name: "no header at all",
        headers: &[],
        expect: Expect::Missing,
    },
    Case {
        name: "empty X-API-Key",
        headers: &[("x-api-key", |_| raw(b""))],
        expect: Expect::Malformed,
    },
    Case {
        name: "spaces-only X-API-Key",
        headers: &[("x-api-key", |_| raw(b"   "))],
        expect: Expect::Malformed,
    },
    Case {
        name: "tab-only X-API-Key",
        headers: &[("x-api-key", |_| raw(b"\t"))],
        expect: Expect::Malformed,
    },
    Case {
        name: "valid key with surrounding whitespace is trimmed",
        headers: &[("x-api-key", |k| format!(" \t{k} ").into_bytes())],
        expect: Expect::Allowed,
    },
    Case {
        name: "Bearer with no token",
        headers: &[("authorization", |_| raw(b"Bearer"))],
        expect: Expect::Malformed,
    },
    Case {
        name: "Bearer with only spaces",
        headers: &[("authorization", |_| raw(b"Bearer    "))],
        expect: Expect::Malformed,
    },
    Case {
        name: "Bearer with only a tab is another scheme",
        headers: &[("authorization", |_| raw(b"Bearer\t"))],
        expect: Expect::Missing,
    },
    Case {
        // RFC 6750 section 2.1: `Bearer` is followed by one or more spaces, nothing else.
        name: "Bearer then a tab then the key is not a credential",
        headers: &[("authorization", |k| format!("Bearer\t{k}").into_bytes())],
        expect: Expect::Missing,
    },
    Case {
        name: "Bearer, a space, then a tab before the key",
        headers: &[("authorization", |k| format!("Bearer \t{k}").into_bytes())],
        expect: Expect::Malformed,
    },
    Case {
        name: "lower-case bearer scheme",
        headers: &[("authorization", |k| format!("bearer {k}").into_bytes())],
        expect: Expect::Allowed,
    },
    Case {
        name: "Bearer with two spaces",
        headers: &[("authorization", |k| format!("Bearer  {k}").into_bytes())],
        expect: Expect::Allowed,
    },
    Case {
        name: "Bearer glued to the token is another scheme",
        headers: &[("authorization", |k| format!("Bearer{k}").into_bytes())],
        expect: Expect::Missing,
    },
    Case {
        name: "Basic scheme is not a credential",
        headers: &[("authorization", |_| raw(b"Basic dXNlcjpwYXNz"))],
        expect: Expect::Missing,
    },
    Case {
        name: "two keys joined by a comma",
        headers: &[("x-api-key", |k| format!("{k},{k}").into_bytes())],
        expect: Expect::Malformed,
    },
    Case {
        name: "two Bearer tokens joined by a comma",
        headers: &[("authorization", |k| {
            format!("Bearer {k}, Bearer {k}").into_bytes()
        })],
        expect: Expect::Malformed,
    },
    Case {
        name: "key in double quotes",
        headers: &[("x-api-key", |k| format!("\"{k}\"").into_bytes())],
        expect: Expect::Malformed,
    },
    Case {
        name: "key in single quotes",
        headers: &[("authorization", |k| format!("Bearer '{k}'").into_bytes())],
        expect: Expect::Malformed,
    },
    Case {
        name: "tab inside the key",
        headers: &[("x-api-key", |k| {
            [&k.as_bytes()[..20], b"\t", &k.as_bytes()[21..]].concat()
        })],
        expect: Expect::Malformed,
    },
    Case {
        name: "non-ASCII character inside the key",
        headers: &[("x-api-key", |k| {
            format!("{}é{}", &k[..20], &k[21..]).into_bytes()
        })],
        expect: Expect::Malformed,
    },
    Case {
        name: "non-ASCII value",
        headers: &[("x-api-key", |_| "kg_ключ-🔑".as_bytes().to_vec())],
        expect: Expect::Malformed,
    },
    Case {
        name: "non-UTF-8 value",
        headers: &[("x-api-key", |_| raw(b"kg_\xff\xfe\xfd"))],
        expect: Expect::Malformed,
    },
    Case {
        name: "non-UTF-8 Bearer token",
        headers: &[("authorization", |_| raw(b"Bearer \xc3\x28"))],
        expect: Expect::Malformed,
    },
    Case {
        name: "non-UTF-8 byte in place of a key character",
        headers: &[("x-api-key", |k| {
            [&k.as_bytes()[..30], b"\x80", &k.as_bytes()[31..]].concat()
        })],
        expect: Expect::Malformed,
    },
    Case {
        name: "64 KB X-API-Key",
        headers: &[("x-api-key", |_| vec![b'a'; 64 * 1024])],
        expect: Expect::Malformed,
    },
    Case {
        name: "64 KB Bearer token",
        headers: &[("authorization", |_| {
            [b"Bearer ".as_slice(), &[b'k'; 64 * 1024]].concat()
        })],
        expect: Expect::Malformed,
    },
    Case {
        name: "valid key followed by 64 KB",
        headers: &[("x-api-key", |k| [k.as_bytes(), &[b'A'; 64 * 1024]].concat())],
        expect: Expect::Malformed,
    },
    Case {
        name: "X-API-Key repeated with the same key",
        headers: &[
            ("x-api-key", |k| k.as_bytes().to_vec()),
            ("x-api-key", |k| k.as_bytes().to_vec()),
        ],
        expect: Expect::Ambiguous,
    },
    Case {
        name: "X-API-Key repeated, once empty",
        headers: &[
            ("x-api-key", |k| k.as_bytes().to_vec()),
            ("x-api-key", |_| raw(b"")),
        ],
        expect: Expect::Ambiguous,
    },
    Case {
        name: "Authorization repeated",
        headers: &[
            ("authorization", |k| format!("Bearer {k}").into_bytes()),
            ("authorization", |_| raw(b"Bearer x")),
        ],
        expect: Expect::Ambiguous,
    },
    Case {
        name: "Bearer and Basic together: only one credential",
        headers: &[
            ("authorization", |_| raw(b"Basic dXNlcjpwYXNz")),
            ("authorization", |k| format!("Bearer {k}").into_bytes()),
        ],
        expect: Expect::Allowed,
    },
    Case {
        name: "both sources with the same key",
        headers: &[
            ("authorization", |k| format!("Bearer {k}").into_bytes()),
            ("x-api-key", |k| k.as_bytes().to_vec()),
        ],
        expect: Expect::Ambiguous,
    },
    Case {
        name: "both sources with different keys",
        headers: &[
            ("authorization", |_| {
                format!("Bearer {}", unknown_key()).into_bytes()
            }),
            ("x-api-key", |k| k.as_bytes().to_vec()),
        ],
        expect: Expect::Ambiguous,
    },
    Case {
        name: "bare Bearer beside a valid X-API-Key",
        headers: &[
            ("authorization", |_| raw(b"Bearer")),
            ("x-api-key", |k| k.as_bytes().to_vec()),
        ],
        expect: Expect::Ambiguous,
    },
    Case {
        name: "key with another prefix",
        headers: &[("x-api-key", |_| other_prefix_key().into_bytes())],
        expect: Expect::Malformed,
    },
    Case {
        name: "key without its prefix",
        headers: &[("x-api-key", |k| k.as_bytes()[3..].to_vec())],
        expect: Expect::Malformed,
    },
    Case {
        name: "upper-case prefix",
        headers: &[("x-api-key", |k| format!("KG{}", &k[2..]).into_bytes())],
        expect: Expect::Malformed,
    },
    Case {
        name: "valid checksum, unknown id",
        headers: &[("x-api-key", |_| unknown_key().into_bytes())],
        expect: Expect::Unknown,
    },
    Case {
        name: "truncated by one character",
        headers: &[("x-api-key", |k| k.as_bytes()[..k.len() - 1].to_vec())],
        expect: Expect::Malformed,
    },
    Case {
        name: "truncated to the prefix and id",
        headers: &[("x-api-key", |k| k.as_bytes()[..19].to_vec())],
        expect: Expect::Malformed,
    },
    Case {
        name: "truncated to the prefix",
        headers: &[("x-api-key", |_| raw(b"kg_"))],
        expect: Expect::Malformed,
    },
    Case {
        name: "one extra character",
        headers: &[("x-api-key", |k| format!("{k}A").into_bytes())],
        expect: Expect::Malformed,
    },
    Case {
        name: "checksum of another key",
        headers: &[("x-api-key", |k| {
            let other = unknown_key();
            format!("{}{}", &k[..k.len() - 6], &other[other.len() - 6..]).into_bytes()
        })],
        expect: Expect::Malformed,
    },
];

#[tokio::test]
async fn every_hostile_header_gets_its_documented_answer() {
    for case in CASES {
        let fx = Fixture::new();
        let values: Vec<(&str, Vec<u8>)> = case
            .headers
            .iter()
            .map(|(name, build)| (*name, build(fx.secret())))
            .collect();
        let headers: Vec<(&str, &[u8])> = values
            .iter()
            .map(|(name, value)| (*name, value.as_slice()))
            .collect();
        let reply = send(fx.app(fx.layer()), &headers).await;
        let name = case.name;
        let challenge = reply.header("www-authenticate").map(str::to_owned);

        let (status, body, error, finds) = match case.expect {
            Expect::Allowed => (StatusCode::OK, None, None, 1),
            Expect::Missing => (StatusCode::UNAUTHORIZED, Some(BODY_MISSING), None, 0),
            Expect::Malformed => (
                StatusCode::UNAUTHORIZED,
                Some(BODY_INVALID),
                Some("invalid_token"),
                0,
            ),
            Expect::Unknown => (
                StatusCode::UNAUTHORIZED,
                Some(BODY_INVALID),
                Some("invalid_token"),
                1,
            ),
            Expect::Ambiguous => (
                StatusCode::BAD_REQUEST,
                Some(BODY_AMBIGUOUS),
                Some("invalid_request"),
                0,
            ),
        };
        assert_eq!(reply.status, status, "{name}: status");
        assert_eq!(fx.store.finds(), finds, "{name}: store calls");
        assert_eq!(
            fx.handled(),
            usize::from(status == StatusCode::OK),
            "{name}: handler calls"
        );
        if let Some(body) = body {
            assert_eq!(reply.body, body, "{name}: body");
            let challenge = challenge.unwrap_or_else(|| panic!("{name}: no challenge"));
            match error {
                Some(error) => assert!(
                    challenge.contains(&format!("error=\"{error}\"")),
                    "{name}: {challenge}"
                ),
                None => assert!(!challenge.contains("error="), "{name}: {challenge}"),
            }
        } else {
            // The handler answers `user|header names it saw`: the credential's header
            // must be gone.
            let (user, seen) = reply.body.split_once('|').unwrap();
            assert_eq!(user, "alice", "{name}: user");
            for (header, _) in case.headers {
                assert!(
                    !seen.split(',').any(|n| n == *header),
                    "{name}: {header} kept"
                );
            }
        }
    }
}

/// Sends raw bytes to a real server and returns the status line's code.
async fn raw_status(address: std::net::SocketAddr, request: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response));
    read.await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&response);
    text.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn control_byte_on_the_wire_is_refused_and_the_server_keeps_serving() {
    let fx = Fixture::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = fx.app(fx.layer());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let hostile =
        b"GET /me HTTP/1.1\r\nhost: x\r\nx-api-key: kg_\x01abc\r\nconnection: close\r\n\r\n";
    let status = raw_status(address, hostile).await;
    assert!((400..500).contains(&status), "got {status}");

    let valid = format!(
        "GET /me HTTP/1.1\r\nhost: x\r\nx-api-key: {}\r\nconnection: close\r\n\r\n",
        fx.secret()
    );
    assert_eq!(raw_status(address, valid.as_bytes()).await, 200);
    server.abort();
}
