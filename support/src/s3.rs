//! An `s3s-fs` S3 server on a free loopback port, with its own temporary
//! root and keys, and an aws-sdk-s3 client to look at what it holds.
//!
//! `scripts/setup.sh` installs `s3s-fs`. What was stored is always checked
//! through the S3 API (GET, LIST), never by reading the server's folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error;
use aws_sdk_s3::Client;

use std::net::{SocketAddr, TcpStream};

pub use crate::free_port;
use crate::wait;

/// A LIST that failed, in the SDK's own words (its debug form: the
/// display form hides the cause).
#[derive(Debug, thiserror::Error)]
#[error("{0:?}")]
pub struct ListError(
    pub Box<aws_sdk_s3::error::SdkError<ListObjectsV2Error, aws_sdk_s3::config::http::HttpResponse>>,
);

pub struct S3Server {
    pub port: u16,
    pub access_key: String,
    pub secret_key: String,
    root: tempfile::TempDir,
    child: Option<Child>,
    /// Where s3s-fs logs every request it receives, if asked to.
    request_log: Option<(tempfile::TempDir, PathBuf)>,
}

impl S3Server {
    /// Starts a server; panics with what to do when `s3s-fs` is missing.
    pub fn start() -> S3Server {
        Self::start_with_request_log(false)
    }

    /// Starts a server that, with `log` true, logs each request it receives
    /// (s3s's own debug log), so that a test can count what reached it:
    /// [`S3Server::puts`].
    pub fn start_with_request_log(log: bool) -> S3Server {
        let request_log = log.then(|| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("requests.log");
            (dir, path)
        });
        let n = std::process::id() ^ u32::from(free_port());
        let mut server = S3Server {
            port: free_port(),
            access_key: format!("AK{n:08X}"),
            // Marked for scripts/scan-logs.sh (see support/logs.rs).
            secret_key: format!("flowrun-secret-s3-{n:x}"),
            root: tempfile::tempdir().unwrap(),
            child: None,
            request_log,
        };
        server.resume();
        server
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Starts (again) on the same port and root.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut command = Command::new("s3s-fs");
        // s3s-fs logs on stdout.
        let stdout = match &self.request_log {
            Some((_, path)) => {
                command.env("RUST_LOG", "s3s::service=debug");
                // Appended to across restarts.
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap();
                Stdio::from(file)
            }
            None => Stdio::null(),
        };
        let mut child = command
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", &self.access_key])
            .args(["--secret-key", &self.secret_key])
            .arg(self.root.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start s3s-fs ({e}); scripts/setup.sh installs it"));
        let up = wait_for_port(self.port, Duration::from_secs(15), || {
            matches!(child.try_wait(), Ok(None))
        });
        if !up {
            let _ = child.kill();
            panic!("s3s-fs did not listen on port {} within 15 s", self.port);
        }
        self.child = Some(child);
    }

    /// Stops the server (SIGKILL: an outage, not a shutdown).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// How many PUT requests reached each object key of `bucket` so far:
    /// every attempt the server received, including ones it answered with
    /// an error. Needs [`S3Server::start_with_request_log`].
    pub fn puts(&self, bucket: &str) -> BTreeMap<String, usize> {
        let (_, path) = self
            .request_log
            .as_ref()
            .expect("puts() needs a server started with its request log");
        let log = std::fs::read_to_string(path).unwrap_or_default();
        let prefix = format!("method: PUT, uri: /{bucket}/");
        let mut puts = BTreeMap::new();
        for line in log.lines() {
            let Some((_, rest)) = line.split_once(&prefix) else {
                continue;
            };
            let key = rest.split([',', '?']).next().unwrap_or_default();
            // `PUT /<bucket>/` is the bucket's creation.
            if key.is_empty() {
                continue;
            }
            *puts.entry(key.to_owned()).or_insert(0) += 1;
        }
        puts
    }

    /// A client with the server's keys.
    pub fn client(&self) -> Client {
        self.client_with(&self.access_key, &self.secret_key)
    }

    /// A client with other keys.
    pub fn client_with(&self, access_key: &str, secret_key: &str) -> Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .force_path_style(true)
            .credentials_provider(Credentials::new(access_key, secret_key, None, None, "test"))
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        Client::from_conf(config)
    }

    pub async fn create_bucket(&self, bucket: &str) {
        self.client()
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
    }

    /// Every key in `bucket`, sorted, following continuation tokens.
    pub async fn list(&self, bucket: &str) -> Vec<String> {
        self.try_list(bucket)
            .await
            .unwrap_or_else(|e| panic!("LIST {bucket}: {e}"))
    }

    /// `list`, or why it failed (no such bucket yet, server down).
    pub async fn try_list(&self, bucket: &str) -> Result<Vec<String>, ListError> {
        let mut keys = Vec::new();
        let mut pages = self
            .client()
            .list_objects_v2()
            .bucket(bucket)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ListError(Box::new(e)))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(String::from)),
            );
        }
        keys.sort();
        Ok(keys)
    }

    /// An object's bytes and content type.
    pub async fn get(&self, bucket: &str, key: &str) -> (Vec<u8>, Option<String>) {
        let object = self
            .client()
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {bucket}/{key}: {e:?}"));
        let content_type = object.content_type().map(String::from);
        let body = object.body.collect().await.unwrap().into_bytes().to_vec();
        (body, content_type)
    }
}

/// Waits until something accepts connections on `port`, or `limit` passes.
/// `alive` is asked between attempts so a server that died fails fast.
pub fn wait_for_port(port: u16, limit: Duration, mut alive: impl FnMut() -> bool) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let up = wait::at_most(limit).poll(|| {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Some(true);
        }
        (!alive()).then_some(false)
    });
    up == Some(true)
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
