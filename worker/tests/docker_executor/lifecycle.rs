//! Create, start, list, stop and remove, and their idempotency.

use std::time::Duration;

use swarmr_worker::executor::{
    ContainerState, Executor, LABEL_NODE, LABEL_SERVICE, LABEL_TASK, NETWORK_MODE,
};

use crate::util::{run, with_node};

#[tokio::test]
#[ignore = "needs Docker and swarmr/busybox:latest"]
async fn start_gives_a_running_container_with_pid_labels_and_no_network() {
    with_node(|node| async move {
        let spec = node.spec("web", &["sleep", "600"]);
        node.exec.prepare(&spec).await.unwrap();
        let id = node.exec.create(&spec).await.unwrap();
        let status = node.exec.start(&id).await.unwrap();
        assert_eq!(status.state, ContainerState::Running);
        assert_eq!(status.container_id, id);
        assert_eq!(status.name, spec.name);
        assert_eq!(status.task_id, spec.task_id);
        assert_eq!(status.service_id, "svc");
        assert!(status.started_at.is_some());
        let pid = status.pid.expect("a running container has a PID");
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());

        let raw = node.docker.inspect_container(&id, None).await.unwrap();
        assert_eq!(
            raw.name.as_deref(),
            Some(format!("/{}", spec.name).as_str())
        );
        let config = raw.config.unwrap();
        let labels = config.labels.unwrap();
        assert_eq!(labels[LABEL_NODE], node.node_id);
        assert_eq!(labels[LABEL_SERVICE], "svc");
        assert_eq!(labels[LABEL_TASK], spec.task_id);
        assert_eq!(labels["test"], "executor");
        assert!(config.env.unwrap().contains(&"SWARMR_TEST=1".to_string()));
        assert_eq!(config.hostname.as_deref(), Some("web"));
        let host = raw.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some(NETWORK_MODE));
        let policy = host.restart_policy.unwrap().name.unwrap();
        assert_eq!(policy.to_string(), "no");
    })
    .await;
}

#[tokio::test]
#[ignore = "needs Docker and swarmr/busybox:latest"]
async fn create_twice_returns_the_same_container() {
    with_node(|node| async move {
        let spec = node.spec("web", &["sleep", "600"]);
        node.exec.prepare(&spec).await.unwrap();
        let first = node.exec.create(&spec).await.unwrap();
        let second = node.exec.create(&spec).await.unwrap();
        assert_eq!(first, second);
        node.exec.start(&first).await.unwrap();
        assert_eq!(
            node.exec.create(&spec).await.unwrap(),
            first,
            "also once running"
        );
        let again = node.exec.start(&first).await.unwrap();
        assert_eq!(
            again.state,
            ContainerState::Running,
            "starting twice is fine"
        );
        assert_eq!(node.exec.list(&node.node_id).await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
#[ignore = "needs Docker and swarmr/busybox:latest"]
async fn list_shows_this_nodes_containers_only() {
    with_node(|node| async move {
        let mine = run(&node.exec, &node.spec("mine", &["sleep", "600"])).await;
        let spec = node.spec_on(&node.other_node_id, "theirs", &["sleep", "600"]);
        let theirs = node.exec.create(&spec).await.unwrap();

        let listed = node.exec.list(&node.node_id).await.unwrap();
        let ids: Vec<_> = listed.iter().map(|s| s.container_id.as_str()).collect();
        assert_eq!(ids, [mine.as_str()]);
        assert_eq!(listed[0].state, ContainerState::Running);
        assert!(listed[0].pid.is_some(), "adoption needs the PID");

        let other = node.exec.list(&node.other_node_id).await.unwrap();
        assert_eq!(other.len(), 1);
        assert_eq!(other[0].container_id, theirs);
        assert_eq!(other[0].state, ContainerState::Created);
    })
    .await;
}

#[tokio::test]
#[ignore = "needs Docker and swarmr/busybox:latest"]
async fn stop_then_remove_and_again() {
    with_node(|node| async move {
        let id = run(&node.exec, &node.spec("web", &["sleep", "600"])).await;
        // sleep as PID 1 ignores SIGTERM: the grace runs out and Docker kills it.
        node.exec.stop(&id, Duration::from_secs(1)).await.unwrap();
        let stopped = node.exec.inspect(&id).await.unwrap();
        assert_eq!(stopped.state, ContainerState::Exited { exit_code: 137 });
        assert_eq!(stopped.pid, None);
        assert!(stopped.finished_at >= stopped.started_at);
        node.exec.stop(&id, Duration::from_secs(1)).await.unwrap();

        node.exec.remove(&id).await.unwrap();
        let gone = node.exec.inspect(&id).await.unwrap_err();
        assert!(gone.is_not_found(), "{}", gone.report());
        node.exec.remove(&id).await.unwrap();
        node.exec.stop(&id, Duration::from_secs(1)).await.unwrap();
        assert!(node.exec.list(&node.node_id).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
#[ignore = "needs Docker and swarmr/busybox:latest"]
async fn remove_of_a_running_container_and_of_unknown_ids_is_ok() {
    with_node(|node| async move {
        let id = run(&node.exec, &node.spec("web", &["sleep", "600"])).await;
        node.exec.remove(&id).await.unwrap();
        assert!(node.exec.list(&node.node_id).await.unwrap().is_empty());

        let unknown = format!("swarmr-no-such-container-{}", node.node_id);
        node.exec.remove(&unknown).await.unwrap();
        node.exec
            .stop(&unknown, Duration::from_secs(1))
            .await
            .unwrap();
        let err = node.exec.start(&unknown).await.unwrap_err();
        assert!(err.is_not_found(), "{}", err.report());
    })
    .await;
}
