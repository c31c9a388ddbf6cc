//! A short loopback load against the quickstart app over real TCP: 64 keep-alive
//! connections send a mix of valid, invalid and malformed keys. Every request gets its
//! documented status, none gets a 5xx, and no connection drops.
//!
//! Bounded by a request count, not by time, so it runs in CI; `benches/load.sh` is the long
//! run (60 s of wrk against the release build, with RSS).

#[path = "../examples/quickstart/app.rs"]
mod app;

use std::collections::BTreeMap;
use std::sync::Arc;

use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use keygate::{KeyFormat, KeyManager, Keygate, MemoryStore, NewKey, Scopes};
use tokio::net::{TcpListener, TcpStream};

const CONNECTIONS: usize = 64;
const REQUESTS_PER_CONNECTION: usize = 60;

/// One kind of request in the mix: path, headers, and the status it must get.
struct Kind {
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    status: StatusCode,
}

/// The same mix as `benches/load.lua`.
async fn mix(manager: &KeyManager) -> Vec<Kind> {
    let create = |new: NewKey| async move {
        let created = manager.create(new).await.unwrap();
        (created.key.expose_secret().to_owned(), created.key.id())
    };
    let (valid, _) = create(NewKey::new("load", "valid")).await;
    let (space, _) = create(NewKey::new("load", "space").with_space("one")).await;
    let (revoked, revoked_id) = create(NewKey::new("load", "revoked")).await;
    manager.revoke(&revoked_id).await.unwrap();
    let (replaced, replaced_id) = create(NewKey::new("load", "replaced")).await;
    manager.regenerate(&replaced_id, None).await.unwrap();

    let kind = |path, headers: &[(&'static str, String)], status| Kind {
        path,
        headers: headers.to_vec(),
        status,
    };
    let bearer = |key: &str| ("authorization", format!("Bearer {key}"));
    let x_api_key = |key: &str| ("x-api-key", key.to_owned());
    let charset = format!("{}!{}", &valid[..20], &valid[21..]);
    vec![
        kind("/me", &[bearer(&valid)], StatusCode::OK),
        kind("/me", &[x_api_key(&valid)], StatusCode::OK),
        kind("/spaces/one/items", &[x_api_key(&space)], StatusCode::OK),
        kind(
            "/spaces/two/items",
            &[x_api_key(&space)],
            StatusCode::FORBIDDEN,
        ),
        kind("/me", &[bearer(&revoked)], StatusCode::UNAUTHORIZED),
        kind("/me", &[x_api_key(&replaced)], StatusCode::UNAUTHORIZED),
        kind(
            "/me",
            &[x_api_key(&valid[..valid.len() - 1])],
            StatusCode::UNAUTHORIZED,
        ),
        kind("/me", &[x_api_key(&charset)], StatusCode::UNAUTHORIZED),
        kind(
            "/me",
            &[("authorization", "Bearer".into())],
            StatusCode::UNAUTHORIZED,
        ),
        kind(
            "/me",
            &[x_api_key(&"A".repeat(8192))],
            StatusCode::UNAUTHORIZED,
        ),
        kind("/me", &[], StatusCode::UNAUTHORIZED),
        kind(
            "/me",
            &[bearer(&valid), x_api_key(&valid)],
            StatusCode::BAD_REQUEST,
        ),
        kind("/health", &[], StatusCode::OK),
    ]
}

/// Sends `count` requests on one keep-alive connection, cycling through `kinds` from
/// `offset`; returns the statuses, or the error that ended the connection early.
async fn connection(
    address: std::net::SocketAddr,
    kinds: Arc<Vec<Kind>>,
    offset: usize,
    count: usize,
) -> Result<Vec<(usize, StatusCode)>, hyper::Error> {
    let stream = TcpStream::connect(address).await.unwrap();
    let (mut sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(driver);
    let mut statuses = Vec::with_capacity(count);
    for n in 0..count {
        let index = (offset + n) % kinds.len();
        let kind = &kinds[index];
        let mut request = Request::get(kind.path).header("host", "127.0.0.1");
        for (name, value) in &kind.headers {
            request = request.header(*name, value);
        }
        sender.ready().await?;
        let response = sender
            .send_request(request.body(Empty::<Bytes>::new()).unwrap())
            .await?;
        let status = response.status();
        response.into_body().collect().await?;
        statuses.push((index, status));
    }
    drop(sender);
    driver.await.unwrap()?;
    Ok(statuses)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_keys_on_64_connections_get_their_statuses_and_no_5xx() {
    let keygate =
        Keygate::new(MemoryStore::new()).with_format(KeyFormat::with_prefix("kg_live").unwrap());
    let manager = keygate.manager();
    manager
        .create(NewKey::new("admin", "admin").with_scopes(Scopes::new([app::KEYS_WRITE]).unwrap()))
        .await
        .unwrap();
    let kinds = Arc::new(mix(&manager).await);
    let (app, _keygate) = app::router(&keygate).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|n| {
            tokio::spawn(connection(
                address,
                kinds.clone(),
                n,
                REQUESTS_PER_CONNECTION,
            ))
        })
        .collect();
    let mut mix: BTreeMap<u16, usize> = BTreeMap::new();
    let mut completed = 0;
    for client in clients {
        let statuses = client.await.unwrap().expect("a connection dropped");
        assert_eq!(statuses.len(), REQUESTS_PER_CONNECTION);
        for (index, status) in statuses {
            let kind = &kinds[index];
            assert_eq!(
                status,
                kind.status,
                "{} {:?}",
                kind.path,
                kind.headers.first().map(|h| h.0)
            );
            *mix.entry(status.as_u16()).or_default() += 1;
        }
        completed += 1;
    }
    assert_eq!(completed, CONNECTIONS);
    assert_eq!(
        mix.values().sum::<usize>(),
        CONNECTIONS * REQUESTS_PER_CONNECTION
    );
    server.abort();
}
