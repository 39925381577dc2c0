//! A plain HTTP/1.1 GET on loopback, for the servers flowrun runs (metrics,
//! preview, gallery) and the S3 server's presigned links: no client crate,
//! one request per connection.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// `GET path_and_query` on `127.0.0.1:port` with `headers` (each ending in
/// CRLF): the whole head and the body, or `None` while nothing answers.
/// The Host header names the port, as a presigned link is signed for it.
/// Chunked bodies are not decoded: the tests read what the servers here
/// send with a length.
pub fn get(port: u16, path_and_query: &str, headers: &str) -> Option<(String, Vec<u8>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    Some((head, response[split + 4..].to_vec()))
}

/// The status line of a head [`get`] returned.
pub fn status_line(head: &str) -> &str {
    head.lines().next().unwrap_or_default()
}
