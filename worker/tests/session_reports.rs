//! Status delivery of the session against a fake dispatcher on a loopback port: statuses
//! queued without a session arrive once it is up, and a failed delivery is sent again
//! after reconnecting.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::{self, BoxStream};
use futures::StreamExt;
use swarmr_proto::dispatcher_server::{Dispatcher, DispatcherServer};
use swarmr_proto::{
    ContainerSpec, HeartbeatRequest, HeartbeatResponse, JoinRequest, JoinResponse,
    LeaveClusterRequest, LeaveClusterResponse, ManagerPeer, RenewCertificateRequest,
    RenewCertificateResponse, SessionMessage, SessionRequest, Task, TaskState, TaskStatus,
    TaskStatusUpdate, UpdateTaskStatusRequest, UpdateTaskStatusResponse,
};
use swarmr_worker::{run_session, SessionConfig};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

#[derive(Default)]
struct Seen {
    sessions: u32,
    /// (session id, the request's updates) per call that succeeded.
    delivered: Vec<(String, Vec<TaskStatusUpdate>)>,
    /// How many `UpdateTaskStatus` calls to fail before accepting.
    fail_next: u32,
    /// The fake's own address, announced as the leader (the worker reconnects to it).
    addr: String,
    /// Tasks every session's first message carries.
    tasks: Vec<Task>,
}

#[derive(Clone, Default)]
struct FakeDispatcher {
    seen: Arc<Mutex<Seen>>,
}

#[tonic::async_trait]
impl Dispatcher for FakeDispatcher {
    type SessionStream = BoxStream<'static, Result<SessionMessage, Status>>;

    async fn join(&self, _: Request<JoinRequest>) -> Result<Response<JoinResponse>, Status> {
        Err(Status::unimplemented("join"))
    }

    async fn session(
        &self,
        _: Request<SessionRequest>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let mut seen = self.seen.lock().unwrap();
        seen.sessions += 1;
        let first = SessionMessage {
            session_id: format!("s-{}", seen.sessions),
            heartbeat_period_ms: 60_000,
            managers: vec![ManagerPeer {
                node_id: "m1".into(),
                api_addr: seen.addr.clone(),
                leader: true,
            }],
            tasks: seen.tasks.clone(),
            ..Default::default()
        };
        let stream = stream::iter([Ok(first)]).chain(stream::pending());
        Ok(Response::new(stream.boxed()))
    }

    async fn heartbeat(
        &self,
        _: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        Ok(Response::new(HeartbeatResponse { period_ms: 60_000 }))
    }

    async fn leave_cluster(
        &self,
        _: Request<LeaveClusterRequest>,
    ) -> Result<Response<LeaveClusterResponse>, Status> {
        Err(Status::unimplemented("leave"))
    }

    async fn renew_certificate(
        &self,
        _: Request<RenewCertificateRequest>,
    ) -> Result<Response<RenewCertificateResponse>, Status> {
        Err(Status::unimplemented("renew"))
    }

    async fn update_task_status(
        &self,
        request: Request<UpdateTaskStatusRequest>,
    ) -> Result<Response<UpdateTaskStatusResponse>, Status> {
        let request = request.into_inner();
        assert_eq!(request.node_id, "n1");
        let mut seen = self.seen.lock().unwrap();
        if seen.fail_next > 0 {
            seen.fail_next -= 1;
            return Err(Status::unavailable("the store is busy"));
        }
        seen.delivered.push((request.session_id, request.updates));
        Ok(Response::new(UpdateTaskStatusResponse {}))
    }
}

fn update(task_id: &str, state: TaskState) -> TaskStatusUpdate {
    TaskStatusUpdate {
        task_id: task_id.into(),
        status: Some(TaskStatus {
            state: state as i32,
            ..Default::default()
        }),
    }
}

/// Serves the fake on a loopback port; returns its address.
async fn serve(fake: FakeDispatcher) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    fake.seen.lock().unwrap().addr = addr.clone();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(DispatcherServer::new(fake))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    addr
}

type Started = (
    mpsc::Sender<TaskStatusUpdate>,
    watch::Sender<bool>,
    watch::Receiver<Option<SessionMessage>>,
);

/// Starts a session with the fake; returns the reports sender, the shutdown switch and
/// the messages the worker received.
fn start_session(addr: String) -> Started {
    let config = SessionConfig {
        node_id: "n1".into(),
        api_addr: "127.0.0.1:1".into(),
        description: Default::default(),
        managers: vec![addr],
        // The fake serves plaintext; the node's mutual TLS is tested with real processes.
        connect: std::sync::Arc::new(|addr: &str| {
            Ok(
                tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                    .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?
                    .connect_lazy(),
            )
        }),
    };
    let (updates, received) = watch::channel(None);
    let (reports, reports_rx) = mpsc::channel(16);
    let (shutdown, shutdown_rx) = watch::channel(false);
    tokio::spawn(async move { run_session(config, updates, reports_rx, shutdown_rx).await });
    (reports, shutdown, received)
}

/// Returns once `done` holds; panics after 10 s.
async fn wait_until(seen: &Mutex<Seen>, done: impl Fn(&Seen) -> bool) {
    for _ in 0..200 {
        if done(&seen.lock().unwrap()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not reached in time");
}

fn delivered_states(seen: &Seen) -> Vec<(String, String, TaskState)> {
    seen.delivered
        .iter()
        .flat_map(|(session, updates)| {
            updates.iter().map(move |u| {
                let state = u.status.as_ref().map_or(TaskState::New, |s| s.state());
                (session.clone(), u.task_id.clone(), state)
            })
        })
        .collect()
}

#[tokio::test]
async fn queued_statuses_reach_the_leader_with_the_session_id() {
    let fake = FakeDispatcher::default();
    let seen = fake.seen.clone();
    let (reports, _shutdown, _) = start_session(serve(fake).await);
    for u in [
        update("t1", TaskState::Accepted),
        update("t1", TaskState::Preparing),
        update("t2", TaskState::Rejected),
    ] {
        reports.send(u).await.unwrap();
    }
    wait_until(&seen, |s| {
        let states = delivered_states(s);
        states
            .iter()
            .any(|(_, t, st)| t == "t1" && *st == TaskState::Preparing)
            && states.iter().any(|(_, t, _)| t == "t2")
    })
    .await;
    let states = delivered_states(&seen.lock().unwrap());
    assert!(states.iter().all(|(session, _, _)| session == "s-1"));

    reports
        .send(update("t1", TaskState::Running))
        .await
        .unwrap();
    wait_until(&seen, |s| {
        delivered_states(s)
            .last()
            .map(|(_, t, st)| (t.as_str(), *st))
            == Some(("t1", TaskState::Running))
    })
    .await;
}

#[tokio::test]
async fn a_failed_delivery_is_sent_again_after_reconnecting() {
    let fake = FakeDispatcher::default();
    fake.seen.lock().unwrap().fail_next = 1;
    let seen = fake.seen.clone();
    let (reports, shutdown, _) = start_session(serve(fake).await);
    wait_until(&seen, |s| s.sessions == 1).await;
    reports
        .send(update("t1", TaskState::Running))
        .await
        .unwrap();
    wait_until(&seen, |s| !s.delivered.is_empty()).await;
    let states = delivered_states(&seen.lock().unwrap());
    assert_eq!(
        states,
        [("s-2".to_string(), "t1".to_string(), TaskState::Running)],
        "resent once, in the second session"
    );
    shutdown.send_replace(true);
}

#[tokio::test]
async fn a_session_message_over_four_mebibytes_does_not_disconnect_the_node() {
    let fake = FakeDispatcher::default();
    // 120 tasks of about 60 KB each (a spec near its size cap): a 7 MB message, over
    // tonic's 4 MiB default decoding limit.
    let env: Vec<String> = (0..15)
        .map(|i| format!("V{i}={}", "x".repeat(4000)))
        .collect();
    fake.seen.lock().unwrap().tasks = (0..120)
        .map(|i| Task {
            id: format!("t{i}"),
            container: Some(ContainerSpec {
                image: "busybox".into(),
                env: env.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    let seen = fake.seen.clone();
    let (_reports, shutdown, mut received) = start_session(serve(fake).await);
    let message = tokio::time::timeout(Duration::from_secs(10), received.wait_for(|m| m.is_some()))
        .await
        .expect("the large first message arrives")
        .expect("session running")
        .clone();
    assert_eq!(message.map(|m| m.tasks.len()), Some(120));
    assert_eq!(seen.lock().unwrap().sessions, 1, "no reconnect loop");
    shutdown.send_replace(true);
}
