//! The set-up most end-to-end tests share: an edge broker, a cloud broker,
//! an S3 server holding the bucket, and cloud-cos workers storing into it.

use flowrun_test_support::flowrun::{cloud_cos_env, Flowrun};
use flowrun_test_support::mosquitto::Mosquitto;
use flowrun_test_support::rabbitmq::RabbitMq;
use flowrun_test_support::s3::S3Server;

use crate::{edge_env, BUCKET, FLOWRUN};

/// A cloud broker, as the flowrun processes reach it.
pub trait Broker {
    fn url(&self) -> String;
}

impl Broker for Mosquitto {
    fn url(&self) -> String {
        Mosquitto::url(self)
    }
}

impl Broker for RabbitMq {
    fn url(&self) -> String {
        RabbitMq::url(self)
    }
}

/// A broker the test runs itself (flowrun's own), by its URL.
impl Broker for String {
    fn url(&self) -> String {
        self.clone()
    }
}

pub struct Cloud<B> {
    pub edge: Mosquitto,
    pub broker: B,
    pub store: S3Server,
}

impl<B: Broker> Cloud<B> {
    /// Starts an edge broker beside `broker`, and makes the bucket in `store`.
    pub async fn start(broker: B, store: S3Server) -> Cloud<B> {
        let edge = Mosquitto::start();
        store.create_bucket(BUCKET).await;
        Cloud {
            edge,
            broker,
            store,
        }
    }

    /// Starts cloud-cos worker `worker` and waits until it has subscribed.
    pub async fn worker(&self, name: &str, worker: u32) -> Flowrun {
        let env = cloud_cos_env(
            worker,
            self.broker.url(),
            &self.store,
            self.store.endpoint(),
            BUCKET,
        );
        FLOWRUN.start_cloud(name, "cloud-cos.yaml", &env).await
    }

    /// Starts the shipped edge `spec` as `device`, between the two brokers.
    pub fn edge(&self, name: &str, spec: &str, device: &str) -> Flowrun {
        self.edge_with(name, spec, device, &[])
    }

    /// [`Cloud::edge`] with further variables.
    pub fn edge_with(
        &self,
        name: &str,
        spec: &str,
        device: &str,
        more: &[(&'static str, String)],
    ) -> Flowrun {
        let mut env = edge_env(device, &self.edge, &self.broker.url());
        env.extend_from_slice(more);
        FLOWRUN.start(name, spec, &env)
    }
}
