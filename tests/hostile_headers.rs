//! Hostile header values: each gets a clear 401 or 400, never a 500, never a panic, and
//! never a store call when the key cannot be well-formed.

mod common;

use std::time::Duration;

use common::{Fixture, send};
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn status_of(headers: &[(&str, &[u8])]) -> (StatusCode, usize) {
    let fx = Fixture::new();
    let reply = send(fx.app(fx.layer()), headers).await;
    (reply.status, fx.store.finds())
}

#[tokio::test]
async fn non_utf8_key_gets_401_without_a_store_call() {
    let (status, finds) = status_of(&[("x-api-key", b"kg_\xff\xfe\xfd")]).await;
    assert_eq!((status, finds), (StatusCode::UNAUTHORIZED, 0));
}

#[tokio::test]
async fn non_utf8_bearer_token_gets_401_without_a_store_call() {
    let (status, finds) = status_of(&[("authorization", b"Bearer \xc3\x28")]).await;
    assert_eq!((status, finds), (StatusCode::UNAUTHORIZED, 0));
}

#[tokio::test]
async fn tab_inside_the_key_gets_401() {
    let (status, finds) = status_of(&[("x-api-key", b"kg_abc\tdef")]).await;
    assert_eq!((status, finds), (StatusCode::UNAUTHORIZED, 0));
}

#[tokio::test]
async fn sixty_four_kilobyte_value_gets_401_without_a_store_call() {
    let huge = vec![b'a'; 64 * 1024];
    let (status, finds) = status_of(&[("x-api-key", &huge)]).await;
    assert_eq!((status, finds), (StatusCode::UNAUTHORIZED, 0));
}

#[tokio::test]
async fn empty_header_value_gets_401_invalid_token() {
    let fx = Fixture::new();
    let reply = send(fx.app(fx.layer()), &[("x-api-key", b"")]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        reply
            .header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
}

#[tokio::test]
async fn bearer_without_a_token_gets_401_invalid_token() {
    let fx = Fixture::new();
    let reply = send(fx.app(fx.layer()), &[("authorization", b"Bearer")]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        reply
            .header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
}

#[tokio::test]
async fn comma_joined_bearer_tokens_get_401() {
    let (status, _) = status_of(&[("authorization", b"Bearer kg_a, Bearer kg_b")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
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
