//! events: start, die with the exit code, destroy; only this node's containers.

use bollard::query_parameters::KillContainerOptions;
use futures::StreamExt;
use swarmr_worker::executor::{ContainerEvent, ContainerEventKind, Executor};

use crate::util::{run, with_node, WAIT};

/// The next event of `container_id`, skipping others; panics after `WAIT`.
async fn next_of(
    events: &mut (impl futures::Stream<Item = Result<ContainerEvent, swarmr_worker::executor::ExecutorError>>
              + Unpin),
    container_id: &str,
) -> ContainerEvent {
    let wait = async {
        loop {
            let event = events.next().await.expect("stream ended").expect("event");
            if event.container_id == container_id {
                return event;
            }
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .expect("no event in time")
}

#[tokio::test]
#[ignore = "needs Docker and swarmr/busybox:latest"]
async fn start_kill_and_remove_give_start_die_and_destroy() {
    with_node(|node| async move {
        // Subscribed before anything happens, but first polled only afterwards.
        let mut events = node.exec.events(&node.node_id);
        let other_spec = node.spec_on(&node.other_node_id, "other", &["sleep", "600"]);
        let other = run(&node.exec, &other_spec).await;
        let spec = node.spec("web", &["sleep", "600"]);
        let id = run(&node.exec, &spec).await;
        let kill = KillContainerOptions {
            signal: "SIGKILL".to_string(),
        };
        node.docker.kill_container(&id, Some(kill)).await.unwrap();

        let start = next_of(&mut events, &id).await;
        assert_eq!(start.kind, ContainerEventKind::Start);
        assert_eq!(start.task_id, spec.task_id);
        assert!(start.time.is_some());
        let die = next_of(&mut events, &id).await;
        assert_eq!(
            die.kind,
            ContainerEventKind::Die {
                exit_code: Some(137)
            }
        );

        node.exec.remove(&id).await.unwrap();
        assert_eq!(
            next_of(&mut events, &id).await.kind,
            ContainerEventKind::Destroy
        );

        // The other node's container was started first: had its events come through, the
        // loop above would have seen them. Check directly with an event of our own last.
        node.exec.remove(&other).await.unwrap();
        let last = run(&node.exec, &node.spec("last", &["sleep", "600"])).await;
        let next = tokio::time::timeout(WAIT, events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(
            next.container_id, last,
            "no event of another node's container"
        );
    })
    .await;
}

#[tokio::test]
#[ignore = "needs Docker and swarmr/busybox:latest"]
async fn a_health_check_reports_through_events_and_inspect() {
    use std::time::Duration;
    use swarmr_worker::executor::{Health, Healthcheck};
    with_node(|node| async move {
        let mut events = node.exec.events(&node.node_id);
        let check = |test: &str| Healthcheck {
            test: vec!["CMD-SHELL".into(), test.into()],
            interval: Duration::from_millis(200),
            retries: 1,
            ..Default::default()
        };
        let mut good = node.spec("good", &["sleep", "600"]);
        good.healthcheck = Some(check("true"));
        let mut bad = node.spec("bad", &["sleep", "600"]);
        bad.healthcheck = Some(check("false"));
        let good_id = run(&node.exec, &good).await;
        let bad_id = run(&node.exec, &bad).await;
        let mut seen = std::collections::HashSet::new();
        let wait = async {
            while seen.len() < 2 {
                let event = events.next().await.expect("stream ended").expect("event");
                if event.kind == ContainerEventKind::Health {
                    seen.insert(event.container_id);
                }
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .expect("health events in time");
        for (id, health) in [(&good_id, Health::Healthy), (&bad_id, Health::Unhealthy)] {
            let status = node.exec.inspect(id).await.unwrap();
            assert_eq!(status.health, Some(health), "{id}");
        }
        let plain = run(&node.exec, &node.spec("plain", &["sleep", "600"])).await;
        assert_eq!(node.exec.inspect(&plain).await.unwrap().health, None);
    })
    .await;
}
