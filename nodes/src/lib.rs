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
