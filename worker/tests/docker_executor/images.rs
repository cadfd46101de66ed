//! prepare: present images pass, missing ones fail fast with advice.

use std::time::Duration;

use swarmr_worker::executor::{Executor, ExecutorError};

use crate::util::{with_node, WAIT};

#[tokio::test]
#[ignore = "needs Docker and swarmr/busybox:latest"]
async fn prepare_of_a_local_image_is_ok() {
    with_node(|node| async move {
        let spec = node.spec("web", &[]);
        node.exec.prepare(&spec).await.unwrap();
        node.exec.prepare(&spec).await.unwrap();
    })
    .await;
}

#[tokio::test]
#[ignore = "needs Docker (no registry is reachable)"]
async fn prepare_of_a_missing_image_says_to_build_or_load_it() {
    with_node(|node| async move {
        let mut spec = node.spec("web", &[]);
        spec.image = "swarmr/does-not-exist:1".to_string();
        let exec = node.exec.clone().with_pull_timeout(Duration::from_secs(20));
        let err = tokio::time::timeout(WAIT, exec.prepare(&spec))
            .await
            .expect("prepare must give up within its pull timeout")
            .unwrap_err();
        assert!(
            matches!(&err, ExecutorError::ImageNotFound { image, .. } if image == "swarmr/does-not-exist:1"),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.starts_with("image \"swarmr/does-not-exist:1\" not found locally and could not be pulled: "), "{text}");
        assert!(text.ends_with("; build or load it on every node"), "{text}");
    })
    .await;
}
