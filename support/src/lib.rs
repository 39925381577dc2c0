//! What flowrun's integration tests share, as a crate of its own (a
//! dev-dependency, never published) instead of files included by path.
//!
//! - [`wait`]: bounded waits on an event — a port open, a message arrived,
//!   a file written, a process ended — in place of fixed sleeps;
//! - [`mosquitto`]: a real mosquitto on a free loopback port, and plain
//!   clients to publish into it and collect what arrives;
//! - [`rabbitmq`]: a real RabbitMQ with its MQTT plugin, the same way;
//! - [`s3`]: an `s3s-fs` S3 server and a client to look at what it holds;
//! - [`s3fs`]: one of its buckets mounted with s3fs-fuse;
//! - [`logs`]: every log line of a test binary, kept and written for the
//!   secrets scan;
//! - [`proxy`]: a TCP proxy whose link can be cut, slowed and restored;
//! - [`faces`]: checks on stored face crops;
//! - [`flowrun`]: a `flowrun run` process and its parsed status lines;
//! - [`crops`]: real face crops from Megamind.avi, made once by flowrun;
//! - [`http`]: a plain HTTP GET on loopback;
//! - [`chromium`]: headless Chromium on a page flowrun serves.

pub mod chromium;
pub mod crops;
pub mod faces;
pub mod flowrun;
pub mod http;
pub mod logs;
pub mod mosquitto;
pub mod proxy;
pub mod rabbitmq;
pub mod s3;
pub mod s3fs;
pub mod wait;

/// A loopback port nobody listens on right now (the OS picks it; it is
/// free again once the probe listener is dropped).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// Cargo's `target/` folder, found from the test binary's own path
/// (`target/<profile>/deps/<binary>`), so that it follows `CARGO_TARGET_DIR`.
pub fn target_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors()
        .nth(3)
        .expect("the test binary lives in target/<profile>/deps")
        .into()
}
