//! logs: both lines of a short-lived container, with and without tail.

use futures::TryStreamExt;
use swarmr_worker::executor::{Executor, LogStream};

use crate::util::{run, with_node, WAIT};

#[tokio::test]
#[ignore = "needs Docker and swarmr/busybox:latest"]
async fn logs_give_every_line_and_follow_ends_with_the_container() {
    with_node(|node| async move {
        // stdout and stderr are separate pipes: only the pause orders "three" after the rest.
        let script = "echo one; echo two; sleep 0.3; echo three >&2";
        let spec = node.spec("echo", &["sh", "-c", script]);
        let id = run(&node.exec, &spec).await;

        let followed = node.exec.logs(&id, true, None).try_collect::<Vec<_>>();
        let lines = tokio::time::timeout(WAIT, followed).await.unwrap().unwrap();
        let text: Vec<_> = lines.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(text, ["one", "two", "three"]);
        assert_eq!(lines[0].stream, LogStream::Stdout);
        assert_eq!(lines[2].stream, LogStream::Stderr);

        let tail: Vec<_> = node
            .exec
            .logs(&id, false, Some(1))
            .try_collect()
            .await
            .unwrap();
        assert_eq!(tail.len(), 1);
        assert_eq!(tail[0].line, "three");
    })
    .await;
}

#[tokio::test]
#[ignore = "needs Docker"]
async fn logs_of_an_unknown_container_say_not_found() {
    with_node(|node| async move {
        let unknown = format!("swarmr-no-such-container-{}", node.node_id);
        let err = node
            .exec
            .logs(&unknown, false, None)
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err();
        assert!(err.is_not_found(), "{}", err.report());
    })
    .await;
}
