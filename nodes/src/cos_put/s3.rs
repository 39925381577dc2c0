//! The `s3` backend: puts through an S3-compatible API (IBM COS, AWS, MinIO,
//! s3s…) with aws-sdk-s3.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use aws_sdk_s3::Client;
use bytes::Bytes;
use schemars::JsonSchema;
use serde::Deserialize;

use super::retry::{Failure, PutError};

/// Where and how the `s3` backend connects.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The bucket objects are put into.
    pub bucket: String,
    /// The endpoint URL of an S3-compatible store, such as
    /// `https://s3.eu-de.cloud-object-storage.appdomain.cloud` for IBM COS.
    /// Leave it out for AWS S3 itself.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The region to sign requests for. Default `us-east-1`.
    #[serde(default = "default_region")]
    pub region: String,
    /// Address buckets as `endpoint/bucket` instead of `bucket.endpoint`.
    /// Default: on when `endpoint` is given (what third-party stores
    /// expect), off for AWS.
    #[serde(default)]
    pub path_style: Option<bool>,
    /// The environment variable holding the access key id (an IBM COS HMAC
    /// access key). Default `AWS_ACCESS_KEY_ID`. Keys are never put in a spec.
    #[serde(default = "default_access_key_env")]
    pub access_key_id_env: String,
    /// The environment variable holding the secret access key. Default
    /// `AWS_SECRET_ACCESS_KEY`.
    #[serde(default = "default_secret_key_env")]
    pub secret_access_key_env: String,
    /// The environment variable holding a session token, read when set.
    /// Default `AWS_SESSION_TOKEN`.
    #[serde(default = "default_session_token_env")]
    pub session_token_env: String,
    /// Create the bucket when the node starts if it does not exist yet.
    /// Default false.
    #[serde(default)]
    pub create_bucket: bool,
    /// Milliseconds allowed to open a connection. Default 3000.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Milliseconds allowed for one put, from sending to the response.
    /// Default 30000.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
}

fn default_region() -> String {
    "us-east-1".into()
}
fn default_access_key_env() -> String {
    "AWS_ACCESS_KEY_ID".into()
}
fn default_secret_key_env() -> String {
    "AWS_SECRET_ACCESS_KEY".into()
}
fn default_session_token_env() -> String {
    "AWS_SESSION_TOKEN".into()
}
fn default_connect_timeout_ms() -> u64 {
    3000
}
fn default_request_timeout_ms() -> u64 {
    30_000
}

/// A credential whose environment variable is unset or empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {what} is read from the environment variable {variable}, which is not set")]
pub struct MissingCredential {
    /// `access key id` or `secret access key`.
    pub what: &'static str,
    pub variable: String,
}

/// Why the gallery cannot show the recent objects (its HTTP 502 body).
#[derive(Debug, thiserror::Error)]
pub enum RecentError {
    /// Listing failed: in the words a failed put has.
    #[error(transparent)]
    List(#[from] PutError),
    #[error(transparent)]
    Expiry(#[from] aws_sdk_s3::presigning::PresigningConfigError),
    #[error("cannot presign s3://{bucket}/{key}: {source}")]
    Presign {
        bucket: String,
        key: String,
        source: Box<SdkError<aws_sdk_s3::operation::get_object::GetObjectError, HttpResponse>>,
    },
}

/// A connected S3 client for one bucket.
pub struct S3Store {
    client: Client,
    bucket: String,
    /// Where requests go, for error messages.
    endpoint: String,
}

impl S3Store {
    /// A client for `config`, with credentials read through `env`. Nothing
    /// is sent yet.
    pub fn new(
        config: &S3Config,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, MissingCredential> {
        let read = |name: &str, what: &'static str| {
            env(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| MissingCredential {
                    what,
                    variable: name.to_owned(),
                })
        };
        let credentials = Credentials::new(
            read(&config.access_key_id_env, "access key id")?,
            read(&config.secret_access_key_env, "secret access key")?,
            env(&config.session_token_env).filter(|v| !v.is_empty()),
            None,
            "flowrun environment",
        );
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(config.path_style.unwrap_or(config.endpoint.is_some()))
            // Since aws-sdk-s3 1.69 the SDK adds checksum trailers to every
            // put by default; s3s, MinIO and other third-party stores reject
            // them. Only what an operation requires is sent and checked.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            // The node retries itself, with its own counters and without a
            // limit on attempts while the message waits unacknowledged.
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
                    .operation_attempt_timeout(Duration::from_millis(config.request_timeout_ms))
                    .build(),
            );
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Ok(S3Store {
            client: Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
            endpoint: config
                .endpoint
                .clone()
                .unwrap_or_else(|| format!("AWS S3 ({})", config.region)),
        })
    }

    pub fn describe(&self) -> String {
        format!("s3://{} at {}", self.bucket, self.endpoint)
    }

    /// Where an object is: `s3://bucket/key`, and its URL at the endpoint
    /// (path style, as third-party stores address it) when there is one.
    /// The URL needs the store's credentials or a presigned query to read.
    pub fn location(&self, key: &str) -> String {
        if self.endpoint.starts_with("http") {
            format!(
                "s3://{}/{key} ({}/{}/{key})",
                self.bucket,
                self.endpoint.trim_end_matches('/'),
                self.bucket
            )
        } else {
            format!("s3://{}/{key}", self.bucket)
        }
    }

    /// The `count` most recently modified objects under `prefix`, newest
    /// first, each with a GET URL presigned for `expires`. Lists at most
    /// 10,000 keys (ten pages) to find them.
    pub async fn recent(
        &self,
        prefix: &str,
        count: usize,
        expires: Duration,
    ) -> Result<Vec<super::gallery::Shown>, RecentError> {
        use aws_sdk_s3::presigning::PresigningConfig;
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..10 {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| self.error("cannot list", None, &e))?;
            objects.extend(page.contents().iter().cloned());
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        let modified = |o: &aws_sdk_s3::types::Object| {
            o.last_modified().map_or(0, |t| t.to_millis().unwrap_or(0))
        };
        // Newest first; among objects of one instant, the greater key first
        // (identity keys carry the capture time).
        objects.sort_by(|a, b| {
            modified(b)
                .cmp(&modified(a))
                .then_with(|| b.key().cmp(&a.key()))
        });
        let presigning = PresigningConfig::expires_in(expires)?;
        let mut shown = Vec::new();
        for object in objects.into_iter().take(count) {
            let Some(key) = object.key() else { continue };
            let url = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .presigned(presigning.clone())
                .await
                .map_err(|source| RecentError::Presign {
                    bucket: self.bucket.clone(),
                    key: key.to_owned(),
                    source: Box::new(source),
                })?;
            shown.push(super::gallery::Shown {
                key: key.to_owned(),
                size: object.size().unwrap_or(0),
                modified_ms: modified(&object),
                url: url.uri().to_owned(),
            });
        }
        Ok(shown)
    }

    /// Creates the bucket unless it exists already.
    pub async fn create_bucket(&self, region: &str) -> Result<(), PutError> {
        let mut request = self.client.create_bucket().bucket(&self.bucket);
        // us-east-1 is the one region that must not be named.
        if region != "us-east-1" {
            request = request.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(error)
                if matches!(
                    error.code(),
                    Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
                ) =>
            {
                Ok(())
            }
            Err(error) => Err(self.error("cannot create bucket", None, &error)),
        }
    }

    /// Checks that the bucket exists, so that a wrong name is reported when
    /// the node starts rather than on the first message. Keys allowed to
    /// write objects but not to look at the bucket (IBM COS's "Object
    /// Writer" role) get a 403 here, which is only a warning.
    pub async fn check_bucket(&self) -> Result<(), PutError> {
        let Err(error) = self.client.head_bucket().bucket(&self.bucket).send().await else {
            return Ok(());
        };
        let status = match &error {
            SdkError::ServiceError(context) => context.raw().status().as_u16(),
            _ => 0,
        };
        match status {
            404 => Err(PutError::new(
                Failure::Store,
                format!(
                    "the bucket {} does not exist at {} (create it, or set `create_bucket: true`)",
                    self.bucket, self.endpoint
                ),
            )),
            403 => {
                tracing::warn!(
                    bucket = %self.bucket,
                    endpoint = %self.endpoint,
                    "these keys may not look at the bucket (HTTP 403); puts will tell whether they may write"
                );
                Ok(())
            }
            _ => Err(self.error("cannot reach bucket", None, &error)),
        }
    }

    /// Puts `body` as `key`.
    pub async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        metadata: HashMap<String, String>,
    ) -> Result<(), PutError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .set_metadata((!metadata.is_empty()).then_some(metadata))
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|error| self.error("cannot store", Some(key), &error))
    }

    fn error<E>(&self, what: &str, key: Option<&str>, error: &SdkError<E, HttpResponse>) -> PutError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let failure = classify(error);
        let target = match key {
            Some(key) => format!("s3://{}/{key}", self.bucket),
            None => format!("s3://{}", self.bucket),
        };
        let detail = match error {
            SdkError::ServiceError(context) => {
                let status = context.raw().status().as_u16();
                let code = error.code().unwrap_or("no error code");
                let hint = match (code, status) {
                    ("NoSuchBucket", _) => {
                        " (does the bucket exist? `create_bucket: true` creates it)"
                    }
                    (_, 401 | 403) => {
                        " (check the access key id and secret in the environment, and what they may do)"
                    }
                    _ => "",
                };
                match error.message() {
                    Some(message) => format!("{code} (HTTP {status}): {message}{hint}"),
                    None => format!("{code} (HTTP {status}){hint}"),
                }
            }
            SdkError::TimeoutError(_) => {
                "no answer in time (see `connect_timeout_ms`, `timeout_ms`)".to_owned()
            }
            other => {
                // The SDK's own text is a chain of wrappers and debug dumps,
                // repeated in every retry line: one cause here, the rest at DEBUG.
                tracing::debug!("S3 request failed: {}", DisplayErrorContext(other));
                root_cause(other)
            }
        };
        PutError::new(
            failure,
            format!("{what} {target} at {}: {detail}", self.endpoint),
        )
    }
}

/// The innermost cause of a failed request, in words: a refused or reset
/// connection, a DNS failure, a TLS problem, else the deepest error's text.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut deepest = error;
    let mut io = None;
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<std::io::Error>() {
            io = Some(found);
        }
        deepest = e;
        current = e.source();
    }
    let text = deepest.to_string();
    match io.map(std::io::Error::kind) {
        Some(std::io::ErrorKind::ConnectionRefused) => {
            "connection refused (is the S3 endpoint up, and is `endpoint` right?)".to_owned()
        }
        Some(std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted) => {
            "the connection was reset by the endpoint".to_owned()
        }
        Some(std::io::ErrorKind::TimedOut) => "the connection timed out".to_owned(),
        _ if text.contains("dns error") || text.contains("failed to lookup") => {
            format!("cannot resolve the endpoint's host name ({text})")
        }
        _ => text,
    }
}

fn classify<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> Failure {
    match error {
        SdkError::ConstructionFailure(_) => Failure::Message,
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            match error.code() {
                Some(
                    "SlowDown"
                    | "Throttling"
                    | "ThrottlingException"
                    | "RequestTimeout"
                    | "InternalError"
                    | "ServiceUnavailable"
                    | "RequestTimeTooSkewed",
                ) => Failure::Transient,
                Some(
                    "NoSuchBucket"
                    | "AccessDenied"
                    | "InvalidAccessKeyId"
                    | "SignatureDoesNotMatch"
                    | "AllAccessDisabled"
                    | "InvalidBucketName",
                ) => Failure::Store,
                _ if status >= 500 || status == 429 || status == 408 => Failure::Transient,
                _ if status == 401 || status == 403 => Failure::Store,
                _ => Failure::Message,
            }
        }
        // Connection refused or reset, DNS, timeouts, a response cut short.
        _ => Failure::Transient,
    }
}
