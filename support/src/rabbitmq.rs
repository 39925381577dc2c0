//! A real RabbitMQ 3.10 (Debian's rabbitmq-server, its MQTT plugin): a
//! broker that speaks MQTT 3.1.1 only, as many deployed ones do. It closes
//! the connection on an MQTT 5 CONNECT without a CONNACK, and grants QoS 1
//! for a subscription at 2.
//!
//! Each instance runs as a child process on free loopback ports, with its
//! node name, data, logs, config and Erlang cookie (`HOME`) in a tempdir,
//! and is killed (its whole process group) on drop. epmd, the Erlang port
//! mapper it starts on first use, keeps running: it is shared and harmless.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::wait;

use crate::mosquitto::{free_port, wait_for_port};

const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// How long a start may take: the Erlang VM and the plugin take 10–30 s on a
/// busy two-core machine.
const START_LIMIT: Duration = Duration::from_secs(60);

pub struct RabbitMq {
    /// The MQTT listener.
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// The AMQP and Erlang distribution ports, kept for a restart.
    amqp: u16,
    dist: u16,
    child: Option<Child>,
}

impl RabbitMq {
    /// Guest may connect from loopback without a password (anonymous MQTT
    /// connections log in as guest); a wrong password is refused.
    pub fn start() -> RabbitMq {
        Self::start_on(free_port())
    }

    /// The same on a given MQTT `port` (one another broker used before).
    pub fn start_on(port: u16) -> RabbitMq {
        let dir = tempfile::tempdir().unwrap();
        let (amqp, dist) = (free_port(), free_port());
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("enabled_plugins"), "[rabbitmq_mqtt].\n").unwrap();
        std::fs::write(
            path("rabbitmq.conf"),
            format!(
                "listeners.tcp.default = {amqp}\n\
                 mqtt.listeners.tcp.default = {port}\n\
                 loopback_users = none\n\
                 mqtt.allow_anonymous = true\n\
                 mqtt.default_user = guest\n\
                 mqtt.default_pass = guest\n"
            ),
        )
        .unwrap();
        let mut broker = RabbitMq {
            port,
            dir,
            amqp,
            dist,
            child: None,
        };
        broker.launch();
        broker
    }

    /// Starts the server on this instance's ports and data, and waits (bounded) for MQTT.
    fn launch(&mut self) {
        let path = |name: &str| self.dir.path().join(name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path("server.log"))
            .unwrap();
        let child = Command::new(SERVER)
            .env("HOME", self.dir.path())
            .env(
                "RABBITMQ_NODENAME",
                format!("rabbit-{}@localhost", self.port),
            )
            .env("RABBITMQ_NODE_PORT", self.amqp.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist.to_string())
            .env("RABBITMQ_MNESIA_BASE", path("mnesia"))
            .env("RABBITMQ_LOG_BASE", path("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", path("rabbitmq.conf"))
            .env("RABBITMQ_PID_FILE", path("pid"))
            // Its own process group: the script runs the VM as a child, and
            // drop kills both.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("rabbitmq-server must be installed (scripts/setup.sh)");
        self.child = Some(child);
        wait_for_port(self.port, START_LIMIT);
    }

    /// Stops the server as `systemctl restart` would (SIGTERM: it shuts
    /// down in order) and starts it again on the same ports with the same
    /// data: its durable sessions and queues survive.
    pub fn restart(&mut self) {
        self.signal("-TERM");
        self.launch();
    }

    fn kill(&mut self) {
        self.signal("-KILL");
    }

    /// Signals the whole process group, waits (bounded) for it to end and
    /// for the MQTT port to be free.
    fn signal(&mut self, signal: &str) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // The Erlang VM's own pid: it must be gone before the same node
        // name can start again.
        let vm = std::fs::read_to_string(self.path("pid")).unwrap_or_default();
        let vm = std::path::Path::new("/proc").join(vm.trim());
        let group = format!("-{}", child.id());
        let _ = Command::new("kill").args([signal, "--", &group]).status();
        // Bounded: whatever happened, it is killed after that.
        let _ = wait::at_most(Duration::from_secs(30))
            .every(Duration::from_millis(50))
            .until(|| {
                child.try_wait().ok().flatten().is_some()
                    && (vm == std::path::Path::new("/proc") || !vm.exists())
            });
        let _ = child.kill();
        let _ = child.wait();
        // The VM is a grandchild that no wait covers: until it is gone its
        // listener still accepts, and a broker started on the same port
        // after it (a test swapping brokers, a restart) would fail to bind.
        let _ = wait::at_most(Duration::from_secs(10))
            .every(Duration::from_millis(50))
            .until(|| std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err());
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for RabbitMq {
    fn drop(&mut self) {
        self.kill();
    }
}
