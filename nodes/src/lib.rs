//! The flowrun node catalogue: one module per node type.
//!
//! Each module holds a node type's config struct (which is its registration:
//! name, description, payload kinds, documented fields), its running node,
//! and its tests. [`catalogue`] lists them; nothing else does.
//!
//! The vision types (`camera`, `haar_detect`, `gray_crop`, `preview`) share [`vision`]:
//! frames move between them decoded, as OpenCV `Mat`s borrowed from
//! [`flowrun_runtime::Frame`]s.

pub mod camera;
pub mod cos_put;
pub mod delay;
pub mod files;
pub mod generate;
pub mod gray_crop;
pub mod haar_detect;
pub mod mqtt;
pub mod passthrough;
pub mod preview;
pub mod print;
mod util;
pub mod vision;

use flowrun_runtime::Catalogue;

/// Every node type flowrun ships.
pub fn catalogue() -> Catalogue {
    let mut catalogue = Catalogue::new();
    catalogue
        .register::<camera::CameraConfig>()
        .register::<cos_put::CosPutConfig>()
        .register::<delay::DelayConfig>()
        .register::<files::FilesConfig>()
        .register::<generate::GenerateConfig>()
        .register::<gray_crop::GrayCropConfig>()
        .register::<haar_detect::HaarDetectConfig>()
        .register::<mqtt::bridge::MqttBridgeConfig>()
        .register::<mqtt::broker::MqttBrokerConfig>()
        .register::<mqtt::publish::MqttPubConfig>()
        .register::<mqtt::subscribe::MqttSubConfig>()
        .register::<passthrough::PassthroughConfig>()
        .register::<preview::PreviewConfig>()
        .register::<print::PrintConfig>();
    catalogue
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    /// The node types that open a listening socket serve only this machine
    /// unless the spec says otherwise: the preview shows camera images, the
    /// broker takes publishes without a password.
    #[test]
    fn listeners_default_to_loopback() {
        let empty = serde_json::json!({});
        let preview: crate::preview::PreviewConfig = serde_json::from_value(empty.clone()).unwrap();
        let broker: crate::mqtt::broker::MqttBrokerConfig = serde_json::from_value(empty).unwrap();
        for address in [preview.address, broker.listen] {
            let address: SocketAddr = address.parse().unwrap();
            assert!(address.ip().is_loopback(), "{address}");
        }
    }
}
