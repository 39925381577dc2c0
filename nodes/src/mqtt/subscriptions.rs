//! Subscriptions that follow the spec, on a connection with a persistent
//! session.
//!
//! A broker keeps a persistent session's subscriptions: after a restart or
//! a reload with the same client id it reports `session_present` and goes
//! on delivering what the *earlier* spec subscribed. So a filter removed
//! from the spec would still be delivered, and one added would never be
//! subscribed if flowrun trusted the kept session. flowrun therefore keeps
//! a record of what each client id subscribed on each broker, in its state
//! directory, and on every connect works out what to do:
//!
//! - no session kept: subscribe every filter of the spec;
//! - session kept, record found: unsubscribe the filters the record has
//!   and the spec no longer has; subscribe the filters that are new or
//!   whose QoS changed, and every shared one (mosquitto 2.0.11 does not
//!   restore shared subscriptions from its persistence file while still
//!   reporting the session as present). Filters kept as they were are not
//!   subscribed again: that would make the broker resend their retained
//!   messages;
//! - session kept, no record (the first run after an upgrade, a lost state
//!   directory): subscribe every filter, and say once that filters an
//!   earlier spec subscribed may still be delivered, and how to drop them.
//!
//! The record is written as "unconfirmed" (the union of old and new)
//! before the requests go out, and as what the broker granted once its
//! SUBACK is back, so a connection lost half-way is reconciled again on
//! the next connect. A new session that subscribes nothing (a bridge side
//! that only publishes) is recorded as holding nothing. The broker handles
//! an UNSUBSCRIBE before the SUBSCRIBE sent after it, so one SUBACK
//! confirms both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::client::{SubscribeRefused, Subscribing};
use super::connection::Protocol;
use super::link::Link;
use super::Qos;

/// What to send on connecting.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Requests {
    pub unsubscribe: Vec<String>,
    pub subscribe: Vec<(String, Qos)>,
}

/// One connection's subscriptions: what the spec wants, what the broker
/// holds as far as flowrun knows.
#[derive(Debug)]
pub struct Subscriptions {
    /// The spec's filters, as written.
    filters: Vec<(String, Qos)>,
    /// `share:`: subscribed as `$share/<group>/<filter>` over MQTT 5.
    share: Option<String>,
    /// What this connection asks for: `filters`, shared where it can be.
    wanted: Vec<(String, Qos)>,
    /// Where the record lives; `None` when there is no state directory.
    file: Option<PathBuf>,
    /// Filter → (asked, granted) as last confirmed by the broker.
    held: BTreeMap<String, (Qos, Qos)>,
    /// What the SUBSCRIBE in flight asked for, in order.
    pending: Vec<(String, Qos)>,
    /// The kept-session warning was given.
    warned: bool,
    /// The warning that `share` cannot be had over 3.1.1 was given.
    warned_share: bool,
    /// Filters already warned about a lower QoS granted, so that a
    /// reconnect does not repeat it.
    lowered: std::collections::HashSet<String>,
    node: String,
    client_id: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    /// The broker confirmed `filters` (a SUBACK came back for them).
    confirmed: bool,
    filters: Vec<Recorded>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Recorded {
    filter: String,
    qos: u8,
    granted: u8,
}

impl Subscriptions {
    /// `wanted` for client `client_id` on `host:port`; the record goes under
    /// `state_dir` (none: reconcile as if nothing were recorded).
    pub fn new(
        filters: Vec<(String, Qos)>,
        share: Option<String>,
        state_dir: Option<&Path>,
        broker: (&str, u16),
        client_id: &str,
        node: &str,
    ) -> Subscriptions {
        let file = state_dir.map(|dir| {
            dir.join("mqtt-subscriptions")
                .join(safe(&format!("{}_{}", broker.0, broker.1)))
                .join(format!("{}.json", safe(client_id)))
        });
        Subscriptions {
            wanted: filters.clone(),
            filters,
            share,
            file,
            held: BTreeMap::new(),
            pending: Vec::new(),
            warned: false,
            warned_share: false,
            lowered: Default::default(),
            node: node.to_owned(),
            client_id: client_id.to_owned(),
        }
    }

    /// What to unsubscribe and subscribe on a new connection, which speaks
    /// `protocol`.
    pub fn on_connect(&mut self, session_present: bool, protocol: Protocol) -> Requests {
        self.wanted = self.shared(protocol);
        let record = if session_present { self.read() } else { None };
        let requests = match &record {
            None => {
                if session_present && !self.warned {
                    self.warned = true;
                    tracing::warn!(
                        node = %self.node,
                        client_id = %self.client_id,
                        "the broker kept a session for client id `{}` that flowrun has no record of: \
                         filters an earlier spec subscribed may still be delivered here. Every filter \
                         of the spec is subscribed now; to drop the others, run once with \
                         `clean_session: true` (which also drops what the broker queued for this \
                         client) or clear the session on the broker",
                        self.client_id
                    );
                }
                Requests {
                    unsubscribe: Vec::new(),
                    subscribe: self.wanted.clone(),
                }
            }
            Some(record) => self.reconcile(record),
        };
        self.held = match record {
            Some(record) if record.confirmed => record
                .filters
                .iter()
                .filter(|r| !requests.unsubscribe.contains(&r.filter))
                .filter_map(|r| {
                    Some((
                        r.filter.clone(),
                        (Qos::try_from(r.qos).ok()?, Qos::try_from(r.granted).ok()?),
                    ))
                })
                .collect(),
            _ => BTreeMap::new(),
        };
        if !requests.subscribe.is_empty() || !requests.unsubscribe.is_empty() {
            // Until the SUBACK: everything the broker may hold.
            let mut unsure: Vec<(String, Qos)> = requests
                .unsubscribe
                .iter()
                .map(|f| (f.clone(), Qos::AtMostOnce))
                .collect();
            unsure.extend(self.wanted.iter().cloned());
            self.write(false, unsure.iter().map(|(f, q)| (f.as_str(), *q, *q)));
        } else if !session_present {
            // A new session holds nothing, and this connection subscribes
            // nothing (a bridge side that only publishes): recorded, so
            // that a restart finding the session kept knows what it holds
            // instead of warning that it cannot know.
            self.write(true, std::iter::empty());
        }
        self.pending = requests.subscribe.clone();
        requests
    }

    /// The filters to ask for over `protocol`: `$share/<group>/…` over MQTT
    /// 5; over 3.1.1 the plain ones, since flowrun cannot know whether a
    /// 3.1.1 broker honours `$share` (mosquitto does, RabbitMQ 3.10 takes it
    /// as a filter nothing matches): said once, with what it costs.
    fn shared(&mut self, protocol: Protocol) -> Vec<(String, Qos)> {
        let Some(group) = &self.share else {
            return self.filters.clone();
        };
        if protocol == Protocol::V5 {
            return self
                .filters
                .iter()
                .map(|(f, q)| (format!("$share/{group}/{f}"), *q))
                .collect();
        }
        if !self.warned_share {
            self.warned_share = true;
            tracing::warn!(
                node = %self.node,
                "the broker speaks MQTT 3.1.1: `share: {group}` cannot be asked for, so the plain \
                 filters are subscribed. Every worker of the group now receives every message: \
                 nothing is lost, and with identity keys (`{{topic}}.{{ext}}`) a repeat is an \
                 overwrite, but the work is done once per worker. Scaling out needs a broker with \
                 shared subscriptions over MQTT 5 (mosquitto ≥ 1.6, EMQX, HiveMQ, RabbitMQ ≥ 3.13)"
            );
        }
        self.filters.clone()
    }

    fn reconcile(&self, record: &Record) -> Requests {
        let unsubscribe = record
            .filters
            .iter()
            .filter(|r| !self.wanted.iter().any(|(f, _)| *f == r.filter))
            .map(|r| r.filter.clone())
            .collect();
        let subscribe = self
            .wanted
            .iter()
            .filter(|(filter, qos)| {
                !record.confirmed
                    || filter.starts_with("$share/")
                    || !record
                        .filters
                        .iter()
                        .any(|r| r.filter == *filter && r.qos == u8::from(*qos))
            })
            .cloned()
            .collect();
        Requests {
            unsubscribe,
            subscribe,
        }
    }

    /// The broker's answer to the SUBSCRIBE sent on connecting: per filter,
    /// the QoS granted or why not. Returns the refused filters with their
    /// reasons, and records what is now held.
    pub fn on_suback(
        &mut self,
        codes: &[Result<Qos, SubscribeRefused>],
    ) -> Vec<(String, SubscribeRefused)> {
        let mut refused = Vec::new();
        for ((filter, asked), code) in self.pending.drain(..).zip(codes) {
            match code {
                Ok(granted) => {
                    if u8::from(*granted) < u8::from(asked) && self.lowered.insert(filter.clone()) {
                        tracing::warn!(
                            node = %self.node,
                            %filter,
                            "the broker granted QoS {} where the spec asks for {}: messages on it \
                             are delivered at QoS {} at most",
                            u8::from(*granted),
                            u8::from(asked),
                            u8::from(*granted)
                        );
                    }
                    self.held.insert(filter, (asked, *granted));
                }
                Err(reason) => {
                    self.held.remove(&filter);
                    refused.push((filter, *reason));
                }
            }
        }
        let held: Vec<(String, Qos, Qos)> = self
            .held
            .iter()
            .map(|(f, (asked, granted))| (f.clone(), *asked, *granted))
            .collect();
        self.write(true, held.iter().map(|(f, a, g)| (f.as_str(), *a, *g)));
        refused
    }

    /// Whether a SUBACK is awaited.
    pub fn is_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// `subscribed faces/# (qos 1), in/# (qos 1, 2 asked)`: the filters
    /// held, with the QoS the broker granted (and the one asked, where the
    /// broker granted less: RabbitMQ grants 1 for 2).
    pub fn state(&self) -> String {
        let held: Vec<String> = self
            .held
            .iter()
            .map(|(filter, (asked, granted))| {
                let (asked, granted) = (u8::from(*asked), u8::from(*granted));
                if granted < asked {
                    format!("{filter} (qos {granted}, {asked} asked)")
                } else {
                    format!("{filter} (qos {granted})")
                }
            })
            .collect();
        if held.is_empty() {
            "subscribed to nothing".to_owned()
        } else {
            format!("subscribed {}", held.join(", "))
        }
    }

    fn read(&self) -> Option<Record> {
        let file = self.file.as_ref()?;
        let text = std::fs::read_to_string(file).ok()?;
        match serde_json::from_str(&text) {
            Ok(record) => Some(record),
            Err(error) => {
                tracing::warn!(node = %self.node, file = %file.display(), "ignoring an unreadable subscription record: {error}");
                None
            }
        }
    }

    fn write<'a>(&self, confirmed: bool, filters: impl Iterator<Item = (&'a str, Qos, Qos)>) {
        let Some(file) = &self.file else { return };
        let record = Record {
            confirmed,
            filters: filters
                .map(|(filter, qos, granted)| Recorded {
                    filter: filter.to_owned(),
                    qos: qos.into(),
                    granted: granted.into(),
                })
                .collect(),
        };
        if let Err(error) = write_atomically(file, &record) {
            tracing::warn!(
                node = %self.node,
                file = %file.display(),
                "cannot record the subscriptions ({error}): after a restart, filters removed from \
                 the spec may still be delivered (set --state-dir or FLOWRUN_STATE_DIR to a \
                 writable directory)"
            );
        }
    }
}

/// Sends what reconciling the subscriptions on a new connection asked for:
/// UNSUBSCRIBEs first, then one SUBSCRIBE (the broker handles them in
/// order, so the SUBACK confirms both).
pub fn send_requests(
    link: &Link,
    requests: &Requests,
    how: Subscribing,
    node: &str,
) -> Result<(), flowrun_runtime::NodeError> {
    if !requests.unsubscribe.is_empty() {
        tracing::info!(node = %node, filters = ?requests.unsubscribe, "unsubscribing from filters the spec no longer has");
        link.client
            .try_unsubscribe(&requests.unsubscribe)
            .map_err(|e| format!("cannot unsubscribe: {e}"))?;
    }
    if !requests.subscribe.is_empty() {
        link.client
            .try_subscribe(&requests.subscribe, how)
            .map_err(|e| format!("cannot subscribe: {e}"))?;
    }
    Ok(())
}

/// Written aside and renamed, so a crash never leaves half a record.
fn write_atomically(file: &Path, record: &Record) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let aside = file.with_extension("json.new");
    let text = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
    std::fs::write(&aside, text)?;
    std::fs::rename(&aside, file)
}

/// A file name from a client id or host: what is not a letter, digit, `.`,
/// `-` or `_` becomes `_` (client ids may hold `/`).
fn safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: Qos = Qos::AtLeastOnce;
    const TWO: Qos = Qos::ExactlyOnce;

    fn subs(dir: &Path, wanted: &[(&str, Qos)]) -> Subscriptions {
        Subscriptions::new(
            wanted.iter().map(|(f, q)| (f.to_string(), *q)).collect(),
            None,
            Some(dir),
            ("127.0.0.1", 1883),
            "flowrun-sub",
            "sub",
        )
    }

    fn subscribe(requests: &Requests) -> Vec<&str> {
        requests.subscribe.iter().map(|(f, _)| f.as_str()).collect()
    }

    #[test]
    fn a_kept_session_is_reconciled_with_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = subs(dir.path(), &[("alpha/#", ONE), ("$share/g/faces/#", ONE)]);
        let requests = first.on_connect(false, Protocol::V5);
        assert_eq!(subscribe(&requests), ["alpha/#", "$share/g/faces/#"]);
        assert!(first.on_suback(&[Ok(ONE), Ok(ONE)]).is_empty());
        assert_eq!(
            first.state(),
            "subscribed $share/g/faces/# (qos 1), alpha/# (qos 1)"
        );

        // The same spec again: only the shared filter is subscribed again.
        let mut same = subs(dir.path(), &[("alpha/#", ONE), ("$share/g/faces/#", ONE)]);
        let requests = same.on_connect(true, Protocol::V5);
        assert!(requests.unsubscribe.is_empty());
        assert_eq!(subscribe(&requests), ["$share/g/faces/#"]);
        same.on_suback(&[Ok(ONE)]);

        // An edited spec: alpha removed, beta added, the shared one at QoS 2.
        let mut edited = subs(dir.path(), &[("beta/#", ONE), ("$share/g/faces/#", TWO)]);
        let requests = edited.on_connect(true, Protocol::V5);
        assert_eq!(requests.unsubscribe, ["alpha/#"]);
        assert_eq!(subscribe(&requests), ["beta/#", "$share/g/faces/#"]);
        // The broker grants 1 for 2 (RabbitMQ does).
        edited.on_suback(&[Ok(ONE), Ok(ONE)]);
        assert_eq!(
            edited.state(),
            "subscribed $share/g/faces/# (qos 1, 2 asked), beta/# (qos 1)"
        );
    }

    #[test]
    fn a_connection_lost_before_the_suback_is_reconciled_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = subs(dir.path(), &[("alpha/#", ONE)]);
        first.on_connect(false, Protocol::V5);
        first.on_suback(&[Ok(ONE)]);
        let mut edited = subs(dir.path(), &[("beta/#", ONE)]);
        edited.on_connect(true, Protocol::V5);
        // No SUBACK: the next connect unsubscribes and subscribes again.
        let mut again = subs(dir.path(), &[("beta/#", ONE)]);
        let requests = again.on_connect(true, Protocol::V5);
        assert_eq!(requests.unsubscribe, ["alpha/#"]);
        assert_eq!(subscribe(&requests), ["beta/#"]);
    }

    /// A bridge side that only publishes: after a restart that finds its
    /// session kept, the record says it holds nothing (no warning).
    #[test]
    fn a_connection_that_subscribes_nothing_is_recorded_too() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = subs(dir.path(), &[]);
        assert_eq!(first.on_connect(false, Protocol::V5), Requests::default());
        let mut restarted = subs(dir.path(), &[]);
        assert_eq!(
            restarted.on_connect(true, Protocol::V5),
            Requests::default()
        );
        assert!(
            !restarted.warned,
            "it warned of a session it has a record of"
        );
        assert_eq!(restarted.state(), "subscribed to nothing");
    }

    #[test]
    fn without_a_record_every_filter_is_subscribed() {
        let dir = tempfile::tempdir().unwrap();
        let mut subs = subs(dir.path(), &[("a/#", ONE), ("b/#", ONE)]);
        let requests = subs.on_connect(true, Protocol::V5);
        assert!(requests.unsubscribe.is_empty());
        assert_eq!(subscribe(&requests), ["a/#", "b/#"]);
        let not_authorized = SubscribeRefused::Reason {
            code: 0x87,
            name: "NotAuthorized",
        };
        let refused = subs.on_suback(&[Ok(ONE), Err(not_authorized)]);
        assert_eq!(refused, [("b/#".to_owned(), not_authorized)]);
        assert_eq!(subs.state(), "subscribed a/# (qos 1)");
    }

    #[test]
    fn share_asks_for_shared_subscriptions_over_5_and_plain_ones_over_3_1_1() {
        let dir = tempfile::tempdir().unwrap();
        let mut subs = Subscriptions::new(
            vec![("faces/#".to_owned(), ONE)],
            Some("cloud".to_owned()),
            Some(dir.path()),
            ("127.0.0.1", 1883),
            "w1",
            "sub",
        );
        let requests = subs.on_connect(false, Protocol::V5);
        assert_eq!(subscribe(&requests), ["$share/cloud/faces/#"]);
        subs.on_suback(&[Ok(ONE)]);
        // The same broker, now 3.1.1 only, still holding the session: the
        // shared filter goes, the plain one comes.
        let requests = subs.on_connect(true, Protocol::V311);
        assert_eq!(requests.unsubscribe, ["$share/cloud/faces/#"]);
        assert_eq!(subscribe(&requests), ["faces/#"]);
    }

    #[test]
    fn client_ids_become_safe_file_names() {
        assert_eq!(safe("edge/1 a"), "edge_1_a");
        assert_eq!(safe("cloud-cos-1"), "cloud-cos-1");
    }
}
