//! Test support shared by the integration tests: real servers on free
//! loopback ports, and specs run through the real engine.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

pub mod s3;
pub mod storage;
