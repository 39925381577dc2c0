//! Test support shared by the integration tests: real servers (mosquitto,
//! s3s-fs) on free loopback ports, and specs run through the real engine.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

pub mod engine;
pub mod logs;
pub mod mosquitto;
pub mod rabbitmq;
pub mod s3;
pub mod s3fs;
pub mod storage;
