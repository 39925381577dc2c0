//! Test support of the node catalogue's integration tests: specs run
//! through the real engine, stored-object checks; the real servers
//! (mosquitto, RabbitMQ, s3s-fs) and logs come from `flowrun-test-support`,
//! under the names the tests have always used.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

pub mod engine;
pub mod storage;

#[allow(unused_imports)]
pub use flowrun_test_support::{logs, mosquitto, rabbitmq, s3, s3fs};
