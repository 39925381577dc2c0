//! Test support shared by the integration tests: a real mosquitto per test,
//! and running a spec through the real engine.

#![allow(dead_code)]

pub mod engine;
pub mod mosquitto;
