//! The dead-letter topic: messages that cannot be stored are published to
//! an MQTT broker — the payload on `<topic>/<key>`, then a JSON document
//! saying why on `<topic>/<key>/error` — so that another subscriber can
//! alert on them or replay them. Plain topics rather than MQTT 5 user
//! properties, so that any 3.1.1 client (mosquitto_sub, paho) sees both.

use std::time::Duration;

use bytes::Bytes;
use flowrun_runtime::{ConfigIssue, Metrics};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use super::retry::{Failure, PutError};
use crate::mqtt::client::{Options, Publish};
use crate::mqtt::connection::BrokerConfig;
use crate::mqtt::link::{Link, LinkEvent, EVENTS};
use crate::mqtt::outstanding::Outstanding;
use crate::mqtt::Qos;

/// Where messages that cannot be stored are published.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterTopic {
    /// The broker to publish to (the same settings as `mqtt_pub`'s).
    /// Default client id: `flowrun-<node id>-dead-letter`.
    pub broker: BrokerConfig,
    /// Topic prefix, without wildcards: the payload goes to
    /// `<topic>/<key>`, a JSON `{key, error, meta}` to `<topic>/<key>/error`.
    pub topic: String,
    /// 0, 1 or 2. Default 1: the message is acknowledged upstream only once
    /// the broker acknowledged both publishes.
    #[serde(default)]
    pub qos: Qos,
}

impl DeadLetterTopic {
    pub fn check(&self, prefix: &str) -> Vec<ConfigIssue> {
        let mut issues = self.broker.check(&format!("{prefix}.broker"));
        if self.topic.is_empty() || self.topic.contains(['#', '+', '\0']) {
            issues.push(ConfigIssue::new(
                format!("{prefix}.topic"),
                "a plain topic: not empty, no `#` or `+`",
            ));
        }
        issues
    }
}

/// How long a dead letter may wait for the broker before the message is
/// given back to its source instead (the broker is down too).
const PUBLISH_LIMIT: Duration = Duration::from_secs(30);

/// A publish for the connection task, and where to say it was acknowledged.
struct Request {
    topic: String,
    payload: Bytes,
    done: oneshot::Sender<Result<(), String>>,
}

/// A running dead-letter publisher; the connection closes when it is dropped.
pub struct TopicPublisher {
    prefix: String,
    broker: BrokerConfig,
    requests: mpsc::Sender<Request>,
}

impl TopicPublisher {
    /// Connects with `options` (built from `config.broker` at build time).
    pub fn start(config: &DeadLetterTopic, options: Options, node: &str) -> Self {
        // The link writes its connection state into the metrics it is given;
        // a registry of its own keeps cos_put's state word (its counters) intact.
        let link_metrics = Metrics::new().node(node);
        let link = Link::start(
            options,
            &config.broker,
            node,
            link_metrics,
            usize::from(config.broker.inflight),
            EVENTS,
        );
        let (requests, incoming) = mpsc::channel(64);
        tokio::spawn(publish_loop(link, config.qos, incoming));
        TopicPublisher {
            prefix: config.topic.trim_end_matches('/').to_owned(),
            broker: config.broker.clone(),
            requests,
        }
    }

    /// Publishes the payload, then why it was refused.
    pub async fn write(&self, key: &str, body: Bytes, why: Bytes) -> Result<(), PutError> {
        let topic = format!("{}/{}", self.prefix, topic_safe(key));
        self.publish(&topic, body).await?;
        self.publish(&format!("{topic}/error"), why).await
    }

    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), PutError> {
        let failed = |why: &str| {
            PutError::new(
                Failure::Store,
                format!(
                    "cannot publish the dead letter to `{topic}` at {}: {why}",
                    self.broker.url
                ),
            )
        };
        self.broker
            .check_fits(topic, &[], payload.len())
            .map_err(|why| failed(&why))?;
        let (done, acked) = oneshot::channel();
        let request = Request {
            topic: topic.to_owned(),
            payload,
            done,
        };
        self.requests
            .send(request)
            .await
            .map_err(|_| failed("the connection task ended"))?;
        match tokio::time::timeout(PUBLISH_LIMIT, acked).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(reason))) => Err(failed(&reason)),
            Ok(Err(_)) => Err(failed("the client refused it")),
            Err(_) => Err(failed(&format!(
                "not acknowledged within {} s",
                PUBLISH_LIMIT.as_secs()
            ))),
        }
    }
}

/// Hands requests to the client and answers each once the broker acknowledged it.
async fn publish_loop(mut link: Link, qos: Qos, mut requests: mpsc::Receiver<Request>) {
    let mut outstanding = Outstanding::default();
    loop {
        tokio::select! {
            request = requests.recv() => {
                let Some(request) = request else { return };
                // A refused request drops `done`: its writer reports the failure.
                let publish = Publish {
                    topic: request.topic,
                    payload: request.payload,
                    qos,
                    retain: false,
                    user_properties: Vec::new(),
                };
                if link.client.try_publish(publish).is_ok() {
                    outstanding.push(request.done);
                }
            }
            event = link.events.recv() => match event {
                Some(LinkEvent::Packet(event)) => {
                    if let Some((done, outcome)) = outstanding.on_event(&event) {
                        let _ = done.send(outcome.refusal());
                    }
                }
                Some(LinkEvent::Connected { .. } | LinkEvent::Disconnected) => {}
                None => return,
            },
        }
    }
}

/// A key as topic levels: `+`, `#` and NUL cannot appear in a topic name.
fn topic_safe(key: &str) -> String {
    key.chars()
        .map(|c| {
            if matches!(c, '+' | '#' | '\0') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_become_valid_topic_names() {
        assert_eq!(super::topic_safe("a/b+c#d\0.png"), "a/b_c_d_.png");
    }
}
