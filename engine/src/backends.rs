//! Wires the engine's services into the API's backend traits.

use std::sync::Arc;

use anyhow::Context;
use skiff_api::Backends;
use skiff_storage::Store;

use crate::config::Config;
use crate::images::ImageService;
use crate::registry::{RegistryClient, RegistryConfig};
use crate::system::SystemService;

pub fn build(config: &Config, store: Arc<Store>) -> anyhow::Result<Backends> {
    let registry = RegistryClient::new(&RegistryConfig {
        insecure: config.insecure_registries.clone(),
        mirrors: config.registry_mirrors.clone(),
    })
    .context("invalid registry configuration")?;
    let images = Arc::new(ImageService::new(
        store,
        registry,
        config.max_concurrent_downloads,
    ));
    let system = Arc::new(SystemService::new(config.clone(), images.clone()));
    Ok(Backends { system, images })
}
