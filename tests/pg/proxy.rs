//! A TCP proxy on 127.0.0.1 that can stall the connections of an invalidation listener
//! without closing them: what a NAT, firewall or proxy that stops forwarding looks like.
//!
//! A connection counts as a listener's once its client has sent `LISTEN "`; `stall_listeners`
//! stops forwarding on those, in both directions, and holds their sockets open until the
//! proxy is dropped. Connections opened later forward normally.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// One proxied connection.
#[derive(Default)]
struct Link {
    listener: AtomicBool,
    stalled: AtomicBool,
}

pub struct StallingProxy {
    address: SocketAddr,
    links: Arc<Mutex<Vec<Arc<Link>>>>,
    tasks: Arc<Mutex<JoinSet<()>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl StallingProxy {
    /// Forwards 127.0.0.1:<port> to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        let links: Arc<Mutex<Vec<Arc<Link>>>> = Arc::default();
        let tasks: Arc<Mutex<JoinSet<()>>> = Arc::default();
        let accept = tokio::spawn({
            let (links, tasks) = (links.clone(), tasks.clone());
            async move {
                while let Ok((client, _)) = socket.accept().await {
                    let Ok(server) = TcpStream::connect(target).await else {
                        continue;
                    };
                    let link = Arc::new(Link::default());
                    links.lock().unwrap().push(link.clone());
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    let mut tasks = tasks.lock().unwrap();
                    tasks.spawn(pipe(client_read, server_write, link.clone(), true));
                    tasks.spawn(pipe(server_read, client_write, link, false));
                }
            }
        });
        Self {
            address,
            links,
            tasks,
            accept,
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops forwarding on every listener connection open now; returns how many.
    pub fn stall_listeners(&self) -> usize {
        let links = self.links.lock().unwrap();
        let mut stalled = 0;
        for link in links.iter() {
            if link.listener.load(Ordering::SeqCst) && !link.stalled.swap(true, Ordering::SeqCst) {
                stalled += 1;
            }
        }
        stalled
    }

    /// Connections stalled so far and still held open.
    pub fn stalled(&self) -> usize {
        let links = self.links.lock().unwrap();
        links
            .iter()
            .filter(|link| link.stalled.load(Ordering::SeqCst))
            .count()
    }
}

impl Drop for StallingProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.tasks.lock().unwrap().abort_all();
    }
}

/// Copies one direction; once the link is stalled, whatever arrives is held, never sent,
/// and the socket stays open.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    link: Arc<Link>,
    from_client: bool,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    // The end of the previous read, so that `LISTEN "` split across two reads is seen.
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if from_client && !link.listener.load(Ordering::SeqCst) {
            tail.extend_from_slice(&buffer[..read]);
            if tail.windows(8).any(|window| window == b"LISTEN \"") {
                link.listener.store(true, Ordering::SeqCst);
            }
            let keep = tail.len().saturating_sub(8);
            tail.drain(..keep);
        }
        if link.stalled.load(Ordering::SeqCst) {
            // Hold both halves open and forward nothing, until the proxy is dropped.
            std::future::pending::<()>().await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
