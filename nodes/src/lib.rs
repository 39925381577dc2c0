//! The flowrun node catalogue: one module per node type.
//!
//! Each module holds a node type's config struct (which is its registration:
//! name, description, payload kinds, documented fields), its running node,
//! and its tests. [`catalogue`] lists them; nothing else does.

pub mod cos_put;
pub mod files;
pub mod generate;
pub mod passthrough;
pub mod print;
mod util;

use flowrun_runtime::Catalogue;

/// Every node type flowrun ships.
pub fn catalogue() -> Catalogue {
    let mut catalogue = Catalogue::new();
    catalogue
        .register::<cos_put::CosPutConfig>()
        .register::<files::FilesConfig>()
        .register::<generate::GenerateConfig>()
        .register::<passthrough::PassthroughConfig>()
        .register::<print::PrintConfig>();
    catalogue
}
