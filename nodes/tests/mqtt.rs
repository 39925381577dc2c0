//! The MQTT nodes against real mosquitto brokers, through the real engine.

mod support;

mod mqtt {
    mod auth_tls;
    mod bridge;
    mod broker;
    mod forwarder;
    mod resubscribe;
    mod roundtrip;
    mod sessions;
    mod subscribers;
    mod v5;
}
