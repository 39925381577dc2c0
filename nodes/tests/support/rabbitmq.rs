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

use super::mosquitto::{free_port, wait_for_port};

const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// How long a start may take: the Erlang VM and the plugin take 10–30 s on a
/// busy two-core machine.
const START_LIMIT: Duration = Duration::from_secs(60);

pub struct RabbitMq {
    /// The MQTT listener.
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
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
        let log = std::fs::File::create(path("server.log")).unwrap();
        let child = Command::new(SERVER)
            .env("HOME", dir.path())
            .env("RABBITMQ_NODENAME", format!("rabbit-{port}@localhost"))
            .env("RABBITMQ_NODE_PORT", amqp.to_string())
            .env("RABBITMQ_DIST_PORT", dist.to_string())
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
        let broker = RabbitMq { port, dir, child };
        wait_for_port(port, START_LIMIT);
        broker
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
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The VM is a grandchild that no wait covers: until it is gone its
        // listener still accepts, and a broker started on the same port
        // after it (a test swapping brokers) would fail to bind.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
