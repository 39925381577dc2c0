//! The flowrun node catalogue: one module per node type.
//!
//! Each module holds a node type's config struct (which is its registration:
//! name, description, payload kinds, documented fields), its running node,
//! and its tests. [`catalogue`] lists them; nothing else does.
//!
//! The vision types (`camera`, `haar_detect`, `face_track`, `gray_crop`,
//! `preview`) share
//! `vision`: frames move between them decoded, as OpenCV `Mat`s borrowed
//! from [`frame::Frame`]s, a payload kind this crate declares ([`frame`]:
//! the engine carries it without knowing what it is). They are the `vision` feature (on by
//! default): a build without it does not link OpenCV, for the cloud side
//! and links, which need none of it.

// Library code takes nothing on trust from a spec, a broker or a store:
// no `unwrap`/`expect` outside the tests, which unwrap by design.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

#[cfg(feature = "vision")]
pub mod camera;
pub mod cos_put;
pub mod delay;
#[cfg(feature = "vision")]
pub mod face_track;
pub mod files;
pub mod frame;
pub mod generate;
#[cfg(feature = "vision")]
pub mod gray_crop;
#[cfg(feature = "vision")]
pub mod haar_detect;
pub mod mqtt;
pub mod passthrough;
#[cfg(feature = "vision")]
pub mod preview;
pub mod print;
mod util;
#[cfg(feature = "vision")]
pub mod vision;

use flowrun_runtime::Catalogue;

/// docs/WRITING-A-NODE.md, whose Rust blocks `cargo test --doc` compiles
/// and runs.
#[cfg(doctest)]
#[doc = include_str!("../../docs/WRITING-A-NODE.md")]
pub struct WritingANode;

/// Every node type flowrun ships.
pub fn catalogue() -> Catalogue {
    let mut catalogue = Catalogue::new();
    catalogue
        .register::<cos_put::CosPutConfig>()
        .register::<delay::DelayConfig>()
        .register::<files::FilesConfig>()
        .register::<generate::GenerateConfig>()
        .register::<mqtt::bridge::MqttBridgeConfig>()
        .register::<mqtt::broker::MqttBrokerConfig>()
        .register::<mqtt::publish::MqttPubConfig>()
        .register::<mqtt::subscribe::MqttSubConfig>()
        .register::<passthrough::PassthroughConfig>()
        .register::<print::PrintConfig>();
    #[cfg(feature = "vision")]
    catalogue
        .register::<camera::CameraConfig>()
        .register::<face_track::FaceTrackConfig>()
        .register::<gray_crop::GrayCropConfig>()
        .register::<haar_detect::HaarDetectConfig>()
        .register::<preview::PreviewConfig>();
    #[cfg(not(feature = "vision"))]
    for name in VISION_TYPES {
        catalogue.leave_out(
            name,
            "it was built without the `vision` feature (OpenCV); use a build with it \
             (the default: `cargo build --release`), e.g. the `edge` Docker image",
        );
    }
    catalogue
}

/// The node types of the `vision` feature (OpenCV): in a build without it
/// they are registered as placeholders that say so; the cloud image's
/// checks (tests/docker.rs) read the same list.
pub const VISION_TYPES: [&str; 5] = [
    "camera",
    "face_track",
    "gray_crop",
    "haar_detect",
    "preview",
];

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    /// The node types that open a listening socket serve only this machine
    /// unless the spec says otherwise: the preview shows camera images, the
    /// broker takes publishes without a password.
    #[test]
    fn listeners_default_to_loopback() {
        let empty = serde_json::json!({});
        let broker: crate::mqtt::broker::MqttBrokerConfig =
            serde_json::from_value(empty.clone()).unwrap();
        // The preview is a `vision` node type.
        #[cfg(feature = "vision")]
        let preview = Some(
            serde_json::from_value::<crate::preview::PreviewConfig>(empty)
                .unwrap()
                .address,
        );
        #[cfg(not(feature = "vision"))]
        let preview: Option<String> = None;
        for address in std::iter::once(broker.listen).chain(preview) {
            let address: SocketAddr = address.parse().unwrap();
            assert!(address.ip().is_loopback(), "{address}");
        }
    }
}
