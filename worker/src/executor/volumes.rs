//! Named volumes of a spec's mounts, made before its container through the Docker API
//! with their driver, options and labels. They are never removed with the container,
//! so a task restarted on the node finds its data (anonymous volumes are removed).

use bollard::models::VolumeCreateRequest;
use bollard::Docker;
use swarmr_proto::MountType;
use tracing::debug;

use super::error::{DockerError, ExecutorError};
use super::types::ContainerSpec;

/// Creates every named volume of the spec; one that exists already is kept as it is.
pub async fn ensure_volumes(docker: &Docker, spec: &ContainerSpec) -> Result<(), ExecutorError> {
    let named = spec
        .options
        .mounts
        .iter()
        .filter(|m| m.r#type() == MountType::Volume && !m.source.is_empty());
    for mount in named {
        let request = VolumeCreateRequest {
            name: Some(mount.source.clone()),
            driver: Some(match mount.volume_driver.as_str() {
                "" => "local".to_string(),
                driver => driver.to_string(),
            }),
            driver_opts: (!mount.volume_options.is_empty()).then(|| mount.volume_options.clone()),
            labels: (!mount.volume_labels.is_empty()).then(|| mount.volume_labels.clone()),
            ..Default::default()
        };
        // Creating an existing volume with the same driver returns it unchanged.
        let volume =
            docker
                .create_volume(request)
                .await
                .map_err(|source| ExecutorError::CreateVolume {
                    name: mount.source.clone(),
                    source,
                })?;
        debug!(volume = %volume.name, driver = %volume.driver, "volume ready");
    }
    Ok(())
}

/// The missing bind source Docker names when it refuses a container, if that is why.
pub fn missing_bind_source(err: &DockerError, spec: &ContainerSpec) -> Option<String> {
    let DockerError::DockerResponseServerError { message, .. } = err else {
        return None;
    };
    let missing = message.contains("bind source path does not exist");
    let path = message.rsplit(": ").next().unwrap_or_default().trim();
    let known = spec.options.mounts.iter().find(|m| m.source == path);
    missing.then(|| known.map_or(path, |m| m.source.as_str()).to_string())
}
