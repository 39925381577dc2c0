//! `flowrun health [ADDR]`: asks a running flowrun's `/healthz` whether every
//! node is up, for a container's HEALTHCHECK (the images carry no curl).
//!
//! A plain HTTP/1.0 GET over a TCP stream rather than an HTTP client crate:
//! the peer is always flowrun's own metrics server, the request one line,
//! and the answer read to its end; a client crate would add its TLS and
//! connection pool to a binary that needs neither here.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context};
use clap::Args;

#[derive(Args)]
pub struct HealthArgs {
    /// Where the flowrun to ask serves its metrics (`run --metrics`); a bare port means loopback.
    #[arg(value_name = "ADDR", default_value = "127.0.0.1:9464")]
    address: String,
    /// Seconds to wait for the answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 3.0)]
    timeout: f64,
}

/// Exit 0 with `ok` when `/healthz` answers 200; exit 1 with its answer
/// (the nodes that are down) or with why it could not be asked.
pub fn run(args: HealthArgs) -> anyhow::Result<ExitCode> {
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| anyhow!("--timeout must be a positive number of seconds"))?;
    let address = resolve(&args.address)?;
    let (status, body) = get_healthz(address, timeout)?;
    let body = body.trim();
    if status == 200 {
        println!("{body}");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("unhealthy (HTTP {status}): {body}");
        Ok(ExitCode::FAILURE)
    }
}

fn resolve(text: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.to_socket_addrs()
        .with_context(|| format!("`{text}` is neither a port nor an address like 127.0.0.1:9464"))?
        .next()
        .ok_or_else(|| anyhow!("`{text}` resolves to no address"))
}

/// The status code and body of `GET /healthz`.
fn get_healthz(address: SocketAddr, timeout: Duration) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, timeout).with_context(|| {
        format!(
            "cannot reach flowrun's metrics at {address} (is it running with --metrics {address}?)"
        )
    })?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET /healthz HTTP/1.0\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .with_context(|| format!("no complete answer from {address} within {timeout:?}"))?;
    parse_response(&String::from_utf8_lossy(&answer)).ok_or_else(|| {
        anyhow!("{address} did not answer with HTTP: is that flowrun's metrics port?")
    })
}

fn parse_response(text: &str) -> Option<(u16, String)> {
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head
        .lines()
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((status, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::parse_response;

    #[test]
    fn reads_the_status_and_body() {
        let text = "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 12\r\n\r\nstore: down\n";
        assert_eq!(parse_response(text), Some((503, "store: down\n".into())));
        assert_eq!(parse_response("SSH-2.0-OpenSSH\r\n"), None);
    }
}
