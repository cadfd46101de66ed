//! An executor that runs nothing, for large-scale simulations and benchmarks only.
//!
//! Containers live in memory: `create` records one, `start` marks it running at once with
//! a fake PID, `stop` marks it exited with code 0. Ids (`noop-000000000001`, …) and PIDs
//! (from 10000 up, one per start) follow call order, so a run is reproducible. Images are
//! always present and containers print nothing. Never use it to run real workloads.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::stream::{self, BoxStream};
use futures::{future, StreamExt};
use tokio::sync::broadcast;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

use super::error::ExecutorError;
use super::types::{
    ContainerEvent, ContainerEventKind, ContainerSpec, ContainerState, ContainerStatus, LogLine,
};
use super::Executor;

/// The first fake PID handed out.
const FIRST_PID: u32 = 10_000;
/// Events kept for slow subscribers before they lag (a lagged subscriber resubscribes).
/// The benchmarks run one executor per simulated node: at 4096 the buffers alone held
/// 0.5 GB for 1,000 nodes, which each run about ten containers.
const EVENT_BUFFER: usize = 256;

/// The in-memory executor. Clones share their containers.
#[derive(Debug, Clone)]
pub struct MemoryExecutor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    events: broadcast::Sender<(String, ContainerEvent)>,
}

#[derive(Debug, Default)]
struct State {
    /// By container id: the owning node and the status.
    containers: BTreeMap<String, (String, ContainerStatus)>,
    created: u64,
    started: u32,
}

impl Default for MemoryExecutor {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryExecutor {
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        MemoryExecutor {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                events,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn emit(&self, node_id: &str, status: &ContainerStatus, kind: ContainerEventKind) {
        let event = ContainerEvent {
            container_id: status.container_id.clone(),
            task_id: status.task_id.clone(),
            kind,
            time: Some(now_millis()),
        };
        // No subscriber is fine.
        let _ = self.inner.events.send((node_id.to_string(), event));
    }

    /// Marks a running container exited; returns its node and status if it was running.
    fn exit(state: &mut State, container_id: &str) -> Option<(String, ContainerStatus)> {
        let (node_id, status) = state.containers.get_mut(container_id)?;
        if !status.state.is_running() {
            return None;
        }
        status.state = ContainerState::Exited { exit_code: 0 };
        status.pid = None;
        status.finished_at = Some(now_millis());
        Some((node_id.clone(), status.clone()))
    }
}

fn now_millis() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

fn not_found(container_id: &str) -> ExecutorError {
    ExecutorError::ContainerNotFound {
        container_id: container_id.to_string(),
    }
}

impl Executor for MemoryExecutor {
    fn engine_version(&self) -> &str {
        "noop"
    }

    /// As much as a large machine, so that simulations are not bounded by reservations.
    fn resources(&self) -> swarmr_proto::Resources {
        swarmr_proto::Resources {
            nano_cpus: 64_000_000_000,
            memory_bytes: 256 << 30,
        }
    }

    async fn prepare(&self, _spec: &ContainerSpec) -> Result<(), ExecutorError> {
        Ok(())
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, ExecutorError> {
        let mut state = self.state();
        let existing = state.containers.iter().find(|(_, (node_id, status))| {
            *node_id == spec.node_id && status.task_id == spec.task_id
        });
        if let Some((id, _)) = existing {
            return Ok(id.clone());
        }
        state.created += 1;
        let container_id = format!("noop-{:012}", state.created);
        let status = ContainerStatus {
            container_id: container_id.clone(),
            name: spec.name.clone(),
            task_id: spec.task_id.clone(),
            service_id: spec.service_id.clone(),
            state: ContainerState::Created,
            pid: None,
            started_at: None,
            finished_at: None,
            oom_killed: false,
            error: None,
            health: None,
        };
        state
            .containers
            .insert(container_id.clone(), (spec.node_id.clone(), status));
        Ok(container_id)
    }

    async fn start(&self, container_id: &str) -> Result<ContainerStatus, ExecutorError> {
        let (node_id, status) = {
            let mut state = self.state();
            let next_pid = FIRST_PID.saturating_add(state.started);
            let (node_id, status) = state
                .containers
                .get_mut(container_id)
                .ok_or_else(|| not_found(container_id))?;
            if status.state.is_running() {
                return Ok(status.clone());
            }
            status.state = ContainerState::Running;
            status.pid = Some(next_pid);
            status.started_at = Some(now_millis());
            status.finished_at = None;
            let started = (node_id.clone(), status.clone());
            state.started += 1;
            started
        };
        self.emit(&node_id, &status, ContainerEventKind::Start);
        Ok(status)
    }

    async fn stop(&self, container_id: &str, _grace: Duration) -> Result<(), ExecutorError> {
        let exited = Self::exit(&mut self.state(), container_id);
        if let Some((node_id, status)) = exited {
            let kind = ContainerEventKind::Die { exit_code: Some(0) };
            self.emit(&node_id, &status, kind);
        }
        Ok(())
    }

    async fn remove(&self, container_id: &str) -> Result<(), ExecutorError> {
        let (exited, removed) = {
            let mut state = self.state();
            let exited = Self::exit(&mut state, container_id);
            (exited, state.containers.remove(container_id))
        };
        if let Some((node_id, status)) = exited {
            self.emit(
                &node_id,
                &status,
                ContainerEventKind::Die { exit_code: Some(0) },
            );
        }
        if let Some((node_id, status)) = removed {
            self.emit(&node_id, &status, ContainerEventKind::Destroy);
        }
        Ok(())
    }

    async fn list(&self, node_id: &str) -> Result<Vec<ContainerStatus>, ExecutorError> {
        let mut statuses: Vec<ContainerStatus> = self
            .state()
            .containers
            .values()
            .filter(|(owner, _)| owner == node_id)
            .map(|(_, status)| status.clone())
            .collect();
        statuses.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(statuses)
    }

    async fn inspect(&self, container_id: &str) -> Result<ContainerStatus, ExecutorError> {
        let state = self.state();
        let (_, status) = state
            .containers
            .get(container_id)
            .ok_or_else(|| not_found(container_id))?;
        Ok(status.clone())
    }

    fn events(&self, node_id: &str) -> BoxStream<'static, Result<ContainerEvent, ExecutorError>> {
        let node_id = node_id.to_string();
        BroadcastStream::new(self.inner.events.subscribe())
            .filter_map(move |item| {
                future::ready(match item {
                    Ok((owner, event)) => (owner == node_id).then_some(Ok(event)),
                    Err(BroadcastStreamRecvError::Lagged(missed)) => {
                        Some(Err(ExecutorError::EventsLagged {
                            node_id: node_id.clone(),
                            missed,
                        }))
                    }
                })
            })
            // End after an error, as the Docker executor's stream does.
            .scan(false, |failed, item| {
                let done = *failed;
                *failed = item.is_err();
                future::ready((!done).then_some(item))
            })
            .boxed()
    }

    fn logs(
        &self,
        _container_id: &str,
        _follow: bool,
        _tail: Option<u64>,
    ) -> BoxStream<'static, Result<LogLine, ExecutorError>> {
        stream::empty().boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(node: &str, task: &str) -> ContainerSpec {
        ContainerSpec {
            name: format!("web.1.{task}"),
            image: "swarmr/busybox:latest".into(),
            node_id: node.into(),
            service_id: "s1".into(),
            task_id: task.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn lifecycle_is_deterministic_and_idempotent() {
        let exec = MemoryExecutor::new();
        let mut events = exec.events("n1");
        let id = exec.create(&spec("n1", "t1")).await.unwrap();
        assert_eq!(id, "noop-000000000001");
        assert_eq!(
            exec.create(&spec("n1", "t1")).await.unwrap(),
            id,
            "create twice"
        );
        let running = exec.start(&id).await.unwrap();
        assert_eq!(running.state, ContainerState::Running);
        assert_eq!(running.pid, Some(FIRST_PID));
        assert_eq!(
            exec.start(&id).await.unwrap().pid,
            Some(FIRST_PID),
            "start twice"
        );
        exec.stop(&id, Duration::from_secs(1)).await.unwrap();
        let stopped = exec.inspect(&id).await.unwrap();
        assert_eq!(stopped.state, ContainerState::Exited { exit_code: 0 });
        exec.remove(&id).await.unwrap();
        exec.remove(&id).await.unwrap();
        exec.stop(&id, Duration::ZERO).await.unwrap();
        assert!(exec.inspect(&id).await.unwrap_err().is_not_found());
        let kinds: Vec<_> = events
            .by_ref()
            .take(3)
            .map(|e| e.unwrap().kind)
            .collect()
            .await;
        let die = ContainerEventKind::Die { exit_code: Some(0) };
        assert_eq!(
            kinds,
            [ContainerEventKind::Start, die, ContainerEventKind::Destroy]
        );
    }

    #[tokio::test]
    async fn list_and_events_keep_to_their_node() {
        let exec = MemoryExecutor::new();
        let mut events = exec.events("n2");
        let mine = exec.create(&spec("n2", "b")).await.unwrap();
        let other = exec.create(&spec("n1", "a")).await.unwrap();
        exec.start(&other).await.unwrap();
        let status = exec.start(&mine).await.unwrap();
        assert_eq!(status.pid, Some(FIRST_PID + 1));
        let listed: Vec<_> = exec.list("n2").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].container_id, mine);
        let event = events.next().await.unwrap().unwrap();
        assert_eq!((event.container_id, event.task_id), (mine, "b".to_string()));
    }
}
