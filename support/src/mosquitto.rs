//! A real mosquitto (Debian's /usr/sbin/mosquitto) on a free loopback port,
//! with its own config file and data directory in a tempdir; and plain
//! rumqttc clients to publish into it and collect what arrives.

use std::collections::HashMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use crate::free_port;
use crate::wait;
use flowrun_nodes::mqtt::client::{self as flowrun_client, Polled};
use flowrun_nodes::mqtt::connection::{BrokerConfig, Protocol};
use flowrun_nodes::mqtt::Qos;
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use tokio::sync::mpsc;

const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// What a test adds to the listener's config.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Extra lines, e.g. TLS files or `password_file`.
    pub extra: String,
    /// Keep `allow_anonymous true` (default true).
    pub deny_anonymous: bool,
    /// An ACL file's lines (`topic read #` …), if the broker checks one.
    pub acl: Option<String>,
}

pub struct Mosquitto {
    pub port: u16,
    pub dir: tempfile::TempDir,
    conf: PathBuf,
    child: Option<Child>,
}

impl Mosquitto {
    /// A broker that drops nothing: unlimited queues, persistence on (so a
    /// stop and start keeps sessions), as the shipped configs do.
    pub fn start() -> Mosquitto {
        Self::start_with(Options::default())
    }

    /// A broker for one test with a [`collect`]or already subscribed to
    /// `filter` on it, so that nothing the test's graph publishes there
    /// is missed.
    pub async fn start_collecting(filter: &str) -> (Mosquitto, Collected) {
        let broker = Mosquitto::start();
        let collected = collect(broker.port, "collector", filter).await;
        (broker, collected)
    }

    pub fn start_with(options: Options) -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        let acl = match &options.acl {
            Some(lines) => {
                let file = dir.path().join("acl");
                std::fs::write(&file, lines).unwrap();
                format!("acl_file {}", file.display())
            }
            None => String::new(),
        };
        // `user root`: started as root, mosquitto would switch to the
        // `mosquitto` user, which cannot read this test's private tempdir.
        let text = format!(
            "listener {port} 127.0.0.1\n\
             user root\n\
             allow_anonymous {anon}\n\
             persistence true\n\
             persistence_location {data}/\n\
             max_queued_messages 0\n\
             max_inflight_messages 0\n\
             log_dest file {data}/mosquitto.log\n\
             log_type error\nlog_type warning\nlog_type notice\n\
             {acl}\n{extra}\n",
            anon = !options.deny_anonymous,
            data = dir.path().display(),
            extra = options.extra,
        );
        std::fs::write(&conf, text).unwrap();
        let mut broker = Mosquitto {
            port,
            dir,
            conf,
            child: None,
        };
        broker.launch();
        broker
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn launch(&mut self) {
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto must be installed (scripts/setup.sh)");
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(10));
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Stops the broker with SIGTERM (it saves its sessions) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            wait::until(Duration::from_secs(10), "mosquitto to stop", || {
                child.try_wait().unwrap().is_some()
            });
        }
    }

    /// Starts it again on the same port with the same config and data.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until something accepts connections on `port`, for at most `limit`.
pub fn wait_for_port(port: u16, limit: Duration) {
    wait::until(
        limit,
        &format!("something listening on port {port}"),
        || TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
}

/// Polls `done` until it holds, for at most `limit`. (Where the tests have
/// always found it; a binary that includes this file without waiting on
/// anything leaves it unused.)
#[allow(unused_imports)]
pub use crate::wait::eventually;

/// Everything that arrived on a subscription, in arrival order.
#[derive(Clone, Default)]
pub struct Collected(Arc<Mutex<Vec<Received>>>);

/// A topic and the payload that arrived on it.
pub type Received = (String, Vec<u8>);

// A count of arrivals that the tests compare (`len() > 0` among them), not
// a container: no `is_empty`.
#[allow(clippy::len_without_is_empty)]
impl Collected {
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    pub fn messages(&self) -> Vec<Received> {
        self.0.lock().unwrap().clone()
    }

    /// The topic of every message that arrived, sorted (repeats kept).
    pub fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.messages().into_iter().map(|(t, _)| t).collect();
        topics.sort();
        topics
    }

    /// Distinct payloads → how many times each arrived.
    pub fn counts(&self) -> HashMap<Vec<u8>, usize> {
        let mut counts = HashMap::new();
        for (_, payload) in self.0.lock().unwrap().iter() {
            *counts.entry(payload.clone()).or_insert(0) += 1;
        }
        counts
    }
}

/// A persistent-session subscriber that collects what arrives on `filter`
/// and survives broker restarts. Resolves once subscribed.
pub async fn collect(url_port: u16, client_id: &str, filter: &str) -> Collected {
    let mut options = MqttOptions::new(client_id, "127.0.0.1", url_port);
    options
        .set_clean_session(false)
        .set_max_packet_size(64 << 20, 64 << 20)
        .set_keep_alive(Duration::from_secs(10));
    let (client, mut eventloop) = AsyncClient::new(options, 100);
    let collected = Collected::default();
    let sink = collected.clone();
    let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
    let mut subscribed_tx = Some(subscribed_tx);
    let filter = filter.to_owned();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::ConnAck(ack))) if !ack.session_present => {
                    client
                        .subscribe(filter.clone(), QoS::AtLeastOnce)
                        .await
                        .unwrap();
                }
                Ok(Event::Incoming(Incoming::SubAck(_))) => {
                    if let Some(tx) = subscribed_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Event::Incoming(Incoming::Publish(p))) => {
                    sink.0
                        .lock()
                        .unwrap()
                        .push((p.topic.clone(), p.payload.to_vec()));
                }
                Ok(_) => {}
                // Not a wait for an event: the backoff of a client whose
                // broker is away (restarted by the test), as any client's.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), subscribed)
        .await
        .expect("the collector could not subscribe")
        .unwrap();
    collected
}

/// A clean-session MQTT 5 subscriber to `filter` at QoS 1, through
/// flowrun's own client (so that user properties are seen): what arrives,
/// in order. Resolves once subscribed.
pub async fn subscribe_v5(
    url: &str,
    filter: &str,
) -> mpsc::UnboundedReceiver<flowrun_client::Received> {
    let mut config = BrokerConfig::new(url);
    config.protocol = Protocol::V5;
    config.clean_session = true;
    let (client, mut eventloop) = config
        .options("test-sub", |p| PathBuf::from(p))
        .unwrap()
        .start(10);
    client
        .try_subscribe(
            &[(filter.to_owned(), Qos::AtLeastOnce)],
            flowrun_client::Subscribing::Plainly,
        )
        .unwrap();
    let (received, rx) = mpsc::unbounded_channel();
    let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
    let mut subscribed_tx = Some(subscribed_tx);
    tokio::spawn(async move {
        // Holds the client: dropping it would end the event loop.
        let _client = client;
        while let Ok(polled) = eventloop.poll().await {
            match polled {
                Polled::Event(flowrun_client::Event::Subscribed(_)) => {
                    if let Some(tx) = subscribed_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Polled::Event(flowrun_client::Event::Received(message)) => {
                    let _ = received.send(*message);
                }
                _ => {}
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), subscribed)
        .await
        .expect("the v5 subscriber could not subscribe")
        .unwrap();
    rx
}

/// Publishes every payload on `topic` at `qos` and waits (bounded) until the
/// broker acknowledged them all.
pub async fn publish_all(port: u16, topic: &str, qos: QoS, payloads: Vec<Vec<u8>>) {
    publish_with(port, topic, qos, false, payloads).await;
}

/// [`publish_all`], with the retain flag set on each publish as `retain` says.
pub async fn publish_with(port: u16, topic: &str, qos: QoS, retain: bool, payloads: Vec<Vec<u8>>) {
    let mut options =
        MqttOptions::new(format!("test-pub-{}", fastrand::u64(..)), "127.0.0.1", port);
    options
        .set_max_packet_size(64 << 20, 64 << 20)
        .set_inflight(100);
    let (client, mut eventloop) = AsyncClient::new(options, 10);
    let total = payloads.len();
    let topic = topic.to_owned();
    let publisher = tokio::spawn(async move {
        for payload in payloads {
            client
                .publish(topic.clone(), qos, retain, payload)
                .await
                .unwrap();
        }
        client
    });
    let mut acked = 0;
    let wait = async {
        while acked < total {
            match eventloop.poll().await.unwrap() {
                Event::Incoming(Incoming::PubAck(_) | Incoming::PubComp(_)) => acked += 1,
                Event::Outgoing(rumqttc::Outgoing::Publish(0)) => acked += 1,
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), wait)
        .await
        .expect("the broker did not acknowledge every publish");
    drop(publisher.await.unwrap());
}

/// Publishes `payload` on `topic` (QoS 1) every 200 ms until `arrived` says
/// it got through, for what shows only by carrying something (a link, a
/// subscription made again); panics with `what` after `limit`.
pub async fn probe_until(
    port: u16,
    topic: &str,
    payload: &[u8],
    limit: Duration,
    what: &str,
    mut arrived: impl FnMut() -> bool,
) {
    let through = wait::at_most(limit)
        .every(Duration::from_millis(200))
        .poll_async(|| {
            let done = arrived();
            async move {
                if done {
                    return Some(());
                }
                publish_all(port, topic, QoS::AtLeastOnce, vec![payload.to_vec()]).await;
                None
            }
        })
        .await;
    assert!(through.is_some(), "{what}");
}

/// Waits (up to `limit`) until everything a bridge carried from the broker
/// at `port` has reached `seen`: a marker published there after that traffic
/// is delivered to the bridge after it, and forwarded after it, so once the
/// marker is in `seen` an echo or a duplicate of the traffic would be too.
/// What the tests used to give a quiet second, awaited as an event. The
/// marker's topic must be one the bridge carries; tests leave it out of
/// what they compare (it contains `probe`).
pub async fn bridged_all_before(port: u16, topic: &str, seen: &Collected, limit: Duration) {
    assert!(
        topic.contains("probe"),
        "the marker's topic {topic} must say probe"
    );
    let marker = b"bridged-all-before";
    let arrived = || {
        seen.messages()
            .iter()
            .any(|(t, p)| t == topic && p == marker)
    };
    probe_until(
        port,
        topic,
        marker,
        limit,
        &format!("the marker on {topic} never crossed"),
        arrived,
    )
    .await;
}

/// `n` payloads of `size` bytes, each starting with its index so that they are distinct.
pub fn numbered_payloads(n: usize, size: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut payload = format!("{i:08}:").into_bytes();
            payload.resize(size.max(payload.len()), b'x');
            payload
        })
        .collect()
}

/// Runs `program` with `args` and asserts it succeeded.
pub fn run(program: &str, args: &[&str], dir: &Path) {
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(status.success(), "{program} {args:?} failed");
}
