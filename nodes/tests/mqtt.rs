//! The MQTT nodes against real brokers (mosquitto, and RabbitMQ for MQTT
//! 3.1.1 only), through the real engine.

mod support;

mod mqtt {
    mod auth_tls;
    mod bridge;
    mod broker;
    mod failures;
    mod forwarder;
    mod interop;
    mod resubscribe;
    mod roundtrip;
    mod sessions;
    mod subscribers;
    mod v5;
}
