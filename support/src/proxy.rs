//! A TCP proxy on loopback in front of a real server, for faults between
//! two processes: `cut` takes the link down (open connections are closed,
//! new ones are closed as soon as they are accepted) and `restore` brings
//! it back; a `delay` holds every chunk the server sends back for that
//! long first (with S3, each response), making a slow server of a fast one;
//! and it counts the bytes the server sent to the client.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub port: u16,
    up: watch::Sender<bool>,
    delivered: Arc<AtomicU64>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start(target: u16, delay: Duration) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, watching) = watch::channel(true);
        let delivered = Arc::new(AtomicU64::new(0));
        let counter = delivered.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !*watching.borrow() {
                    continue;
                }
                let mut link = watching.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else {
                        return;
                    };
                    tokio::select! {
                        _ = forward(client, server, delay, &counter) => {}
                        _ = link.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Proxy {
            port,
            up,
            delivered,
            accepting,
        }
    }

    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The link goes down: every connection through it ends.
    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    pub fn restore(&self) {
        self.up.send_replace(true);
    }

    /// Bytes the server sent through to clients so far.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accepting.abort();
    }
}

/// Copies both ways until either side closes; what the server sends waits
/// `delay` first.
async fn forward(client: TcpStream, server: TcpStream, delay: Duration, delivered: &AtomicU64) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = tokio::io::copy(&mut client_read, &mut server_write);
    let downstream = async {
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let n = server_read.read(&mut buffer).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            // The link's latency, which the proxy simulates: not a wait.
            tokio::time::sleep(delay).await;
            client_write.write_all(&buffer[..n]).await?;
            delivered.fetch_add(n as u64, Ordering::Relaxed);
        }
    };
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}
