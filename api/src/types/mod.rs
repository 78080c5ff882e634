//! Wire types of the Engine API (field names and shapes from moby's `api/swagger.yaml`, v1.47).

pub mod container;
pub mod event;
pub mod exec;
pub mod image;
pub mod system;

use serde::{Deserialize, Deserializer};

/// Accepts `null` where Go would leave the zero value (image configs written by other tools
/// sometimes carry `"Hostname": null`).
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
