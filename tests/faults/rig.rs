//! One scenario's set-up, as the product runs: an edge broker and a cloud
//! broker (mosquitto, persistence on, queues unbounded), the link between
//! them (the link half of a shipped edge spec in its own `flowrun`), the
//! cloud (specs/cloud-cos.yaml in its own `flowrun`) and an S3 server
//! (s3s-fs). A producer publishes face crops to the edge broker at QoS 1,
//! as the edge's detector does; what arrived is checked by LIST and GET.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flowrun_test_support::crops;
use flowrun_test_support::flowrun::{cloud_cos_env, repository, Flowrun};
use flowrun_test_support::mosquitto::{collect, eventually, Mosquitto};
use flowrun_test_support::proxy::Proxy;
use flowrun_test_support::s3::S3Server;
use flowrun_test_support::wait;
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use tokio::task::JoinHandle;

use crate::FLOWRUN;

/// Faces each scenario sends.
pub const SENT: usize = 2000;
/// One face every 4 ms: 250 a second, so the stream lasts about 8 s and
/// every fault falls into it.
const PACE: Duration = Duration::from_millis(4);
/// Starting a process and connecting it.
const START: Duration = Duration::from_secs(30);
/// From the end of a fault to every face stored, at most.
pub const RECOVERY: Duration = Duration::from_secs(60);

const DEVICE: &str = "door-1";
const BUCKET: &str = "faces";

/// Which half of a shipped edge spec carries faces to the cloud.
#[derive(Debug, Clone, Copy)]
pub enum Link {
    /// specs/edge-bridge.yaml's `bridge` (mqtt_bridge).
    Bridge,
    /// specs/edge-forwarder.yaml's `from_edge` → `to_cloud` (mqtt_sub → mqtt_pub).
    Forwarder,
}

impl Link {
    fn name(self) -> &'static str {
        match self {
            Link::Bridge => "bridge",
            Link::Forwarder => "forwarder",
        }
    }

    /// The shipped spec and the nodes of it that make the link.
    fn shipped(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Link::Bridge => ("edge-bridge.yaml", &["bridge"]),
            Link::Forwarder => ("edge-forwarder.yaml", &["from_edge", "to_cloud"]),
        }
    }
}

/// `text` (a spec) with only the nodes named in `keep`: each node is the
/// block of lines from its `  id:` line to the next one.
fn only_nodes(text: &str, keep: &[&str]) -> String {
    let mut out = String::new();
    let mut in_nodes = false;
    let mut keeping = true;
    for line in text.lines() {
        if line == "nodes:" {
            in_nodes = true;
        } else if in_nodes {
            if let Some(id) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':')) {
                if !id.starts_with(' ') {
                    keeping = keep.contains(&id);
                }
            }
        }
        if keeping {
            out.push_str(line);
            out.push('\n');
        }
    }
    for id in keep {
        assert!(out.contains(&format!("\n  {id}:\n")), "no node `{id}` kept");
    }
    out
}

pub struct Rig {
    pub link: Link,
    pub edge: Mosquitto,
    pub cloud: Mosquitto,
    pub store: S3Server,
    /// Between the link and the cloud broker, when the scenario cuts it.
    pub cut: Option<Proxy>,
    link_process: Flowrun,
    dir: tempfile::TempDir,
}

impl Rig {
    /// Brokers, store and link, running; `cuttable` puts a [`Proxy`] the
    /// test can cut between the link and the cloud broker.
    pub async fn start(link: Link, cuttable: bool) -> Rig {
        let edge = Mosquitto::start();
        let cloud = Mosquitto::start();
        let store = S3Server::start_with_request_log(true);
        store.create_bucket(BUCKET).await;
        let cut = match cuttable {
            true => Some(Proxy::start(cloud.port, Duration::ZERO).await),
            false => None,
        };
        let cloud_url = cut.as_ref().map_or_else(|| cloud.url(), |p| p.url("mqtt"));

        let dir = tempfile::tempdir().unwrap();
        let (shipped, nodes) = link.shipped();
        let text = std::fs::read_to_string(repository().join("specs").join(shipped)).unwrap();
        let spec = dir.path().join(shipped);
        std::fs::write(&spec, only_nodes(&text, nodes)).unwrap();
        let mut link_process = FLOWRUN.start_file(
            link.name(),
            &spec,
            false,
            &[
                ("DEVICE_ID", DEVICE.into()),
                ("EDGE_BROKER", edge.url()),
                ("CLOUD_BROKER", cloud_url),
            ],
        );
        // Faces published before the link subscribed would have no session
        // to wait in on the edge broker.
        match link {
            Link::Bridge => {
                let state =
                    collect(edge.port, "ready-probe", &format!("status/{DEVICE}/bridge")).await;
                eventually(START, "the bridge connected to both brokers", || {
                    state.messages().iter().any(|(_, p)| p == b"1")
                })
                .await;
            }
            Link::Forwarder => {
                link_process
                    .wait_until("subscribed", START, |s| {
                        s.state("from_edge").starts_with("subscribed")
                    })
                    .await;
            }
        }
        Rig {
            link,
            edge,
            cloud,
            store,
            cut,
            link_process,
            dir,
        }
    }

    /// A copy of specs/cloud-cos.yaml in this rig's folder, to edit.
    pub fn cloud_spec_copy(&self) -> PathBuf {
        self.dir.path().join("cloud-cos.yaml")
    }

    /// Starts a cloud process on `spec` (watching it with `watch`) and
    /// waits until its subscription exists.
    pub async fn start_cloud(&self, spec: &Path, watch: bool) -> Flowrun {
        let env = cloud_cos_env(
            1,
            self.cloud.url(),
            &self.store,
            self.store.endpoint(),
            BUCKET,
        );
        let cloud = FLOWRUN.start_file("cloud-cos", spec, watch, &env);
        // A new session subscribes; a kept one (a restart) has its
        // subscription on the broker already.
        eventually(START, "the cloud subscribed or resumed its session", || {
            cloud.status().state("faces").starts_with("subscribed")
                || cloud.lines_with("session_present=true") > 0
        })
        .await;
        cloud
    }

    /// The shipped cloud spec.
    pub fn shipped_cloud_spec() -> PathBuf {
        repository().join("specs/cloud-cos.yaml")
    }

    /// Publishes [`SENT`] faces to the edge broker at QoS 1, paced, each
    /// under its own identity topic; resolves once the broker acknowledged
    /// all of them.
    pub fn produce(&self, crops: &'static [Vec<u8>]) -> JoinHandle<Sent> {
        let port = self.edge.port;
        tokio::spawn(async move {
            let mut options = MqttOptions::new("producer", "127.0.0.1", port);
            options
                .set_max_packet_size(1 << 20, 1 << 20)
                .set_inflight(100);
            let (client, mut eventloop) = AsyncClient::new(options, 100);
            let captured = 1_764_000_000_000u64;
            let mut expected = BTreeMap::new();
            let mut faces = Vec::new();
            for i in 0..SENT {
                // One frame every 40 ms with two faces in it.
                let (frame, face) = (i / 2, i % 2);
                let topic = format!(
                    "faces/{DEVICE}/camera/{}-{frame}-{face}",
                    captured + 40 * frame as u64
                );
                let crop = crops[i % crops.len()].clone();
                expected.insert(format!("{topic}.png"), crop.clone());
                faces.push((topic, crop));
            }
            let publisher = tokio::spawn(async move {
                let mut pace = tokio::time::interval(PACE);
                for (topic, crop) in faces {
                    pace.tick().await;
                    client
                        .publish(topic, QoS::AtLeastOnce, false, crop)
                        .await
                        .unwrap();
                }
                client
            });
            let mut acked = 0;
            let acks = async {
                while acked < SENT {
                    if let Event::Incoming(Incoming::PubAck(_)) = eventloop.poll().await.unwrap() {
                        acked += 1;
                    }
                }
            };
            tokio::time::timeout(Duration::from_secs(120), acks)
                .await
                .expect("the edge broker did not acknowledge every face");
            let last = Instant::now();
            drop(publisher.await.unwrap());
            Sent { expected, last }
        })
    }

    /// A scenario under way: the cloud on `spec` (watched with `watch`),
    /// faces flowing, `stored` of them in the bucket.
    pub async fn stream(
        &self,
        spec: &Path,
        watch: bool,
        stored: usize,
    ) -> (Flowrun, JoinHandle<Sent>) {
        let cloud = self.start_cloud(spec, watch).await;
        let producer = self.produce(crops::faces(crate::FLOWRUN).await);
        self.stored_at_least(stored).await;
        (cloud, producer)
    }

    /// The end of a scenario whose fault ended at `fault_end`: the recovery
    /// timed, every face sent, the cloud stopped cleanly, the bucket
    /// checked and the figures reported. `stored_before`: what a cloud
    /// killed on the way had counted.
    pub async fn finish(
        &self,
        scenario: &str,
        fault_end: Instant,
        cloud: Flowrun,
        producer: JoinHandle<Sent>,
        stored_before: u64,
    ) -> Outcome {
        let recovery = self.recovery(fault_end).await;
        let sent = producer.await.unwrap();
        let (end, clean) = cloud.stop().await;
        assert!(clean, "the cloud did not exit cleanly");
        let stored = stored_before + end.state_count("store", "stored");
        let outcome = self.outcome(&sent, stored).await;
        outcome.report(scenario, self.link, &recovery);
        outcome
    }

    /// PUT requests that reached the store so far, per key.
    pub fn puts(&self) -> BTreeMap<String, usize> {
        self.store.puts(BUCKET)
    }

    /// Waits until `n` distinct objects were put: the stream is under way.
    pub async fn stored_at_least(&self, n: usize) {
        let stored = wait::at_most(START)
            .every(Duration::from_millis(50))
            .until_async(|| self.puts().len() >= n)
            .await;
        assert!(
            stored,
            "fewer than {n} faces stored after {START:?}:\nlink:\n{}",
            self.link_process.log(),
        );
    }

    /// From `fault_end`: how long until an object not put before it was put,
    /// and until every face was (`None` if not within [`RECOVERY`]).
    pub async fn recovery(&self, fault_end: Instant) -> Recovery {
        let before: BTreeSet<String> = self.puts().into_keys().collect();
        let mut first = None;
        // Noting, on the way, when the first new object showed up.
        let all = wait::at_most(RECOVERY.saturating_sub(fault_end.elapsed()))
            .every(Duration::from_millis(50))
            .until_async(|| {
                let puts = self.puts();
                if first.is_none() && puts.keys().any(|k| !before.contains(k)) {
                    first = Some(fault_end.elapsed());
                }
                puts.len() >= SENT
            })
            .await;
        Recovery {
            fault_end,
            first: if all {
                first.or(Some(fault_end.elapsed()))
            } else {
                first
            },
            all: all.then(Instant::now),
        }
    }

    /// What the bucket holds against what was sent: LIST for the keys, GET
    /// of every 50th face for its bytes.
    pub async fn outcome(&self, sent: &Sent, stored_counted: u64) -> Outcome {
        let expected = &sent.expected;
        let keys: BTreeSet<String> = self.store.list(BUCKET).await.into_iter().collect();
        for (key, bytes) in expected.iter().step_by(50) {
            if keys.contains(key) {
                let (body, content_type) = self.store.get(BUCKET, key).await;
                assert!(
                    body == *bytes,
                    "{key}: the object differs from the face sent"
                );
                assert_eq!(content_type.as_deref(), Some("image/png"), "{key}");
            }
        }
        let puts: usize = self.puts().values().sum();
        Outcome {
            sent: expected.len(),
            last_sent: sent.last,
            stored: expected.keys().filter(|k| keys.contains(*k)).count(),
            unexpected: keys
                .iter()
                .filter(|k| !expected.contains_key(*k))
                .cloned()
                .collect(),
            puts,
            stored_counted,
        }
    }

    pub fn link_log(&self) -> String {
        self.link_process.log()
    }
}

/// What the producer sent: the object each face should become (key →
/// bytes), and when the edge broker acknowledged the last one.
pub struct Sent {
    pub expected: BTreeMap<String, Vec<u8>>,
    pub last: Instant,
}

#[derive(Debug)]
pub struct Recovery {
    /// When the fault ended: the process restarted, the server back, the
    /// link restored, the last edit reloaded.
    pub fault_end: Instant,
    /// From then to the first face put that had not been put before it.
    pub first: Option<Duration>,
    /// When every face had been put.
    pub all: Option<Instant>,
}

#[derive(Debug)]
pub struct Outcome {
    pub sent: usize,
    last_sent: Instant,
    /// Faces whose object is in the bucket.
    pub stored: usize,
    /// Objects that are no face sent: a duplicate under another key.
    pub unexpected: Vec<String>,
    /// PUT requests the store received for faces.
    pub puts: usize,
    /// The cloud processes' own count of objects stored (cos_put `stored`).
    pub stored_counted: u64,
}

impl Outcome {
    pub fn lost(&self) -> usize {
        self.sent - self.stored
    }

    /// Deliveries beyond the first: a face put again (an overwrite, with
    /// identity keys).
    pub fn redelivered(&self) -> usize {
        self.puts.saturating_sub(self.stored)
    }

    /// Prints the scenario's result line (bench/reliability/run.sh reads it)
    /// and checks that nothing was lost or stored as a second object.
    pub fn report(&self, scenario: &str, link: Link, recovery: &Recovery) {
        let ms = |d: Option<Duration>| d.map_or("none".into(), |d| d.as_millis().to_string());
        let since = |from: Instant| recovery.all.map(|all| all.saturating_duration_since(from));
        println!(
            "RELIABILITY scenario={scenario} link={} sent={} stored={} lost={} duplicate_objects={} \
             puts={} redelivered={} stored_counted={} recover_first_ms={} recover_all_ms={} \
             after_last_sent_ms={}",
            link.name(),
            self.sent,
            self.stored,
            self.lost(),
            self.unexpected.len(),
            self.puts,
            self.redelivered(),
            self.stored_counted,
            ms(recovery.first),
            ms(since(recovery.fault_end)),
            ms(since(self.last_sent)),
        );
        assert_eq!(self.lost(), 0, "{scenario}: faces lost");
        assert!(
            self.unexpected.is_empty(),
            "{scenario}: objects that are no face sent: {:?}",
            self.unexpected
        );
    }
}
