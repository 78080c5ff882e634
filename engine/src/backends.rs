//! Wires the engine's services into the API's backend traits.

use std::sync::Arc;

use anyhow::Context;
use skiff_api::Backends;
use skiff_storage::Store;

use crate::config::Config;
use crate::containers::backend::EventsService;
use crate::containers::events::EventBus;
use crate::containers::service::ContainerService;
use crate::images::ImageService;
use crate::registry::{RegistryClient, RegistryConfig};
use crate::system::SystemService;

/// The backends plus the container service, which the daemon restores before serving.
pub struct Built {
    pub backends: Backends,
    pub containers: ContainerService,
}

pub fn build(config: &Config, store: Arc<Store>) -> anyhow::Result<Built> {
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
    let events = Arc::new(EventBus::new());
    images.set_events(events.clone());
    let containers = ContainerService::new(config.clone(), images.clone(), events.clone())
        .context("cannot set up the container service")?;
    let users = containers.clone();
    images.set_in_use(Arc::new(move || {
        let users = users.clone();
        Box::pin(async move { users.image_users().await })
    }));
    let system = Arc::new(SystemService::new(
        config.clone(),
        images.clone(),
        containers.clone(),
    ));
    let backends = Backends {
        system,
        images,
        containers: Arc::new(containers.clone()),
        execs: Arc::new(containers.clone()),
        events: Arc::new(EventsService { bus: events }),
    };
    Ok(Built {
        backends,
        containers,
    })
}
