//! The edge↔cloud link as a TCP relay the test can cut: the link process
//! reaches the cloud broker only through it. A cut closes every connection
//! through it and refuses new ones until it is restored, on the same port;
//! the cloud broker and the cloud process never notice.

use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;

pub struct LinkCut {
    port: u16,
    upstream: u16,
    relay: Option<tokio::task::JoinHandle<()>>,
}

impl LinkCut {
    /// A relay on a free loopback port to `upstream`, open.
    pub fn open(upstream: u16) -> LinkCut {
        let mut link = LinkCut {
            port: crate::s3::free_port(),
            upstream,
            relay: None,
        };
        link.restore();
        link
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Closes every connection and stops listening.
    pub fn cut(&mut self) {
        if let Some(relay) = self.relay.take() {
            // Aborting the relay drops its listener and its JoinSet, which
            // aborts every connection's task and so closes its sockets.
            relay.abort();
        }
    }

    /// Listens again on the same port.
    pub fn restore(&mut self) {
        assert!(self.relay.is_none(), "the link is already up");
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket
            .bind(([127, 0, 0, 1], self.port).into())
            .unwrap_or_else(|e| panic!("cannot listen on port {} again: {e}", self.port));
        let listener = socket.listen(64).unwrap();
        let upstream = self.upstream;
        self.relay = Some(tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut edge, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut cloud) = TcpStream::connect(("127.0.0.1", upstream)).await {
                        let _ = tokio::io::copy_bidirectional(&mut edge, &mut cloud).await;
                    }
                });
            }
        }));
    }
}

impl Drop for LinkCut {
    fn drop(&mut self) {
        self.cut();
    }
}
