//! Rolling update scenarios on the simulated store of `tests.rs`.

use swarmr_proto::{UpdateConfig, UpdateFailureAction, UpdateOrder, UpdateState, UpdateStatus};

use super::tests::{node, policy, replicated, Sim};
use super::*;

fn image(sim: &Sim, id: &str) -> String {
    sim.find(id)
        .unwrap()
        .container
        .as_ref()
        .unwrap()
        .image
        .clone()
}

fn config(order: UpdateOrder, action: UpdateFailureAction) -> UpdateConfig {
    let mut config = updater::default_config();
    config.set_order(order);
    config.set_failure_action(action);
    config.monitor_ms = Some(1_000);
    config
}

/// Three replicas of `v1` running on n1, with this update config.
fn running_v1(config: UpdateConfig) -> Sim {
    let restart = Some(policy(swarmr_proto::RestartCondition::Any, 0, 0));
    let mut service = replicated(3, restart);
    let spec = service.spec.as_mut().unwrap();
    spec.container.as_mut().unwrap().image = "web:v1".into();
    spec.update_config = Some(config);
    spec.rollback_config = Some(config);
    let mut sim = Sim::new(vec![service], vec![node("n1")]);
    sim.step();
    start_new(&mut sim);
    sim
}

/// What `service update --image` does: the old spec kept, the status `updating`.
fn update_image(sim: &mut Sim, image: &str) {
    let now = sim.now;
    let service = &mut sim.services[0];
    service.previous_spec = service.spec.clone();
    let spec = service.spec.as_mut().unwrap();
    spec.container.as_mut().unwrap().image = image.into();
    service.spec_version += 1;
    service.update_status = Some(UpdateStatus {
        state: UpdateState::Updating as i32,
        started_at: now,
        ..Default::default()
    });
}

/// The agent: every task not yet placed runs on its node (n1 when it has none), reported
/// now.
fn start_new(sim: &mut Sim) {
    let new: Vec<String> = sim
        .tasks
        .iter()
        .filter(|t| wants_running(t) && t.current_state() < TaskState::Assigned)
        .map(|t| t.id.clone())
        .collect();
    for id in new {
        let task = sim.task_mut(&id);
        if task.node_id.is_empty() {
            task.node_id = "n1".into();
        }
        sim.report(&id, TaskState::Running, 0);
    }
}

/// The agent stops what was told to stop.
fn stop_unwanted(sim: &mut Sim) {
    let stopping: Vec<String> = sim
        .tasks
        .iter()
        .filter(|t| !wants_running(t) && !t.current_state().is_terminal())
        .map(|t| t.id.clone())
        .collect();
    for id in stopping {
        sim.report(&id, TaskState::Shutdown, 0);
    }
}

fn state(sim: &Sim) -> (UpdateState, String) {
    let status = sim.services[0].update_status.clone().unwrap_or_default();
    (status.state(), status.message)
}

/// Images of the tasks desired RUNNING, by slot.
fn wanted_images(sim: &Sim) -> Vec<(u64, String)> {
    sim.wanted()
        .into_iter()
        .map(|(slot, id)| (slot, image(sim, &id)))
        .collect()
}

/// Steps, starting and stopping tasks and letting time pass, until nothing changes.
fn run_to_end(sim: &mut Sim) {
    for _ in 0..50 {
        let changes = sim.step();
        start_new(sim);
        stop_unwanted(sim);
        if changes.is_empty() {
            sim.now += 1_000;
            if sim.plan().changes.is_empty() {
                return;
            }
        }
    }
    panic!("the rollout never settled: {:?}", state(sim));
}

#[test]
fn start_first_keeps_the_old_task_until_its_successor_runs() {
    let mut sim = running_v1(config(UpdateOrder::StartFirst, UpdateFailureAction::Pause));
    update_image(&mut sim, "web:v2");
    sim.step();
    let images = wanted_images(&sim);
    assert_eq!(images.len(), 4, "slot 1 runs old and new: {images:?}");
    assert!(images.contains(&(1, "web:v1".into())) && images.contains(&(1, "web:v2".into())));
    assert_eq!(sim.plan().changes, vec![], "waits for the new task to run");
    start_new(&mut sim);
    sim.step();
    let images = wanted_images(&sim);
    assert!(!images.contains(&(1, "web:v1".into())), "{images:?}");
    assert!(
        images.contains(&(2, "web:v2".into())),
        "slot 2 next: {images:?}"
    );
    run_to_end(&mut sim);
    let v2 = |slot| (slot, "web:v2".to_string());
    assert_eq!(wanted_images(&sim), vec![v2(1), v2(2), v2(3)]);
    assert_eq!(state(&sim).0, UpdateState::Completed);
    sim.assert_settled();
}

#[test]
fn stop_first_refills_a_slot_only_once_its_old_task_stopped() {
    let mut sim = running_v1(config(UpdateOrder::StopFirst, UpdateFailureAction::Pause));
    update_image(&mut sim, "web:v2");
    sim.step();
    let images = wanted_images(&sim);
    assert_eq!(
        images,
        [(2, "web:v1".into()), (3, "web:v1".into())],
        "slot 1 stops first"
    );
    assert_eq!(
        sim.plan().changes,
        vec![],
        "nothing until the old task stopped"
    );
    stop_unwanted(&mut sim);
    sim.step();
    assert_eq!(wanted_images(&sim)[0], (1, "web:v2".into()));
    for _ in 0..30 {
        let alive = sim
            .tasks
            .iter()
            .filter(|t| !t.current_state().is_terminal())
            .count();
        assert!(
            alive <= 3,
            "stop-first never runs more than the replicas: {alive}"
        );
        sim.step();
        start_new(&mut sim);
        stop_unwanted(&mut sim);
        sim.now += 1_000;
    }
    assert!(wanted_images(&sim).iter().all(|(_, i)| i == "web:v2"));
    assert_eq!(
        state(&sim),
        (UpdateState::Completed, "update completed".into())
    );
    sim.assert_settled();
}

#[test]
fn a_failing_new_task_rolls_the_service_back() {
    let action = UpdateFailureAction::Rollback;
    let mut sim = running_v1(config(UpdateOrder::StartFirst, action));
    update_image(&mut sim, "web:broken");
    sim.step();
    let new = sim
        .wanted()
        .into_iter()
        .find(|(_, id)| image(&sim, id) == "web:broken");
    let (_, new) = new.unwrap();
    sim.now += 10;
    sim.report(&new, TaskState::Failed, 1);
    sim.task_mut(&new).status.as_mut().unwrap().error = "unhealthy".into();
    sim.step();
    let (rolled, message) = state(&sim);
    assert_eq!(rolled, UpdateState::RollbackStarted);
    assert!(
        message.contains(&new) && message.contains("unhealthy"),
        "{message}"
    );
    run_to_end(&mut sim);
    assert!(wanted_images(&sim).iter().all(|(_, i)| i == "web:v1"));
    let (done, message) = state(&sim);
    assert_eq!(done, UpdateState::RollbackCompleted);
    assert!(
        message.contains("update rolled back due to failure of task"),
        "{message}"
    );
    sim.assert_settled();
}

#[test]
fn a_failure_pauses_the_update_and_nothing_more_is_replaced() {
    let mut sim = running_v1(config(UpdateOrder::StartFirst, UpdateFailureAction::Pause));
    update_image(&mut sim, "web:broken");
    sim.step();
    let (_, new) = sim
        .wanted()
        .into_iter()
        .find(|(_, id)| image(&sim, id) == "web:broken")
        .unwrap();
    sim.now += 10;
    sim.report(&new, TaskState::Rejected, 0);
    sim.step();
    assert_eq!(state(&sim).0, UpdateState::Paused);
    run_to_end(&mut sim);
    assert!(wanted_images(&sim).iter().all(|(_, i)| i == "web:v1"));
    assert_eq!(state(&sim).0, UpdateState::Paused);
}

#[test]
fn force_replaces_every_task_of_an_unchanged_spec() {
    let mut sim = running_v1(config(UpdateOrder::StopFirst, UpdateFailureAction::Pause));
    let before: Vec<String> = sim.wanted().into_iter().map(|(_, id)| id).collect();
    update_image(&mut sim, "web:v1");
    let spec = sim.services[0].spec.as_mut().unwrap();
    spec.container.as_mut().unwrap().force_update += 1;
    run_to_end(&mut sim);
    let after: Vec<String> = sim.wanted().into_iter().map(|(_, id)| id).collect();
    assert_eq!(after.len(), 3);
    assert!(
        after.iter().all(|id| !before.contains(id)),
        "{before:?} {after:?}"
    );
    assert_eq!(state(&sim).0, UpdateState::Completed);
}

#[test]
fn parallelism_two_with_a_delay_waits_between_groups() {
    let mut config = config(UpdateOrder::StartFirst, UpdateFailureAction::Pause);
    config.parallelism = 2;
    config.delay_ms = 5_000;
    let mut sim = running_v1(config);
    update_image(&mut sim, "web:v2");
    sim.step();
    let fresh = |sim: &Sim| {
        wanted_images(sim)
            .iter()
            .filter(|(_, i)| i == "web:v2")
            .count()
    };
    assert_eq!(fresh(&sim), 2);
    start_new(&mut sim);
    sim.step();
    stop_unwanted(&mut sim);
    let plan = sim.plan();
    assert_eq!(plan.changes, vec![], "the delay holds slot 3 back");
    assert_eq!(plan.next_wakeup, Some(sim.now + 5_000));
    sim.now += 5_000;
    sim.step();
    assert_eq!(fresh(&sim), 3);
}

/// A global service of `v1` running on n1..n3, with this update config.
fn global_v1(config: UpdateConfig) -> Sim {
    let mut service = replicated(0, Some(policy(swarmr_proto::RestartCondition::Any, 0, 0)));
    let spec = service.spec.as_mut().unwrap();
    (spec.global, spec.replicas) = (true, None);
    spec.container.as_mut().unwrap().image = "web:v1".into();
    spec.update_config = Some(config);
    let nodes = vec![node("n1"), node("n2"), node("n3")];
    let mut sim = Sim::new(vec![service], nodes);
    sim.step();
    start_new(&mut sim);
    sim
}

/// (node, image) of the tasks desired RUNNING.
fn images_by_node(sim: &Sim) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = sim
        .tasks
        .iter()
        .filter(|t| wants_running(t))
        .map(|t| (t.node_id.clone(), image(sim, &t.id)))
        .collect();
    v.sort();
    v
}

#[test]
fn a_global_start_first_rollout_starts_each_new_task_beside_the_old_on_its_node() {
    let mut sim = global_v1(config(UpdateOrder::StartFirst, UpdateFailureAction::Pause));
    update_image(&mut sim, "web:v2");
    sim.step();
    let images = images_by_node(&sim);
    let on = |n: &str, i: &str| (n.to_string(), i.to_string());
    assert_eq!(images.len(), 4, "one node runs old and new: {images:?}");
    assert!(images.contains(&on("n1", "web:v1")) && images.contains(&on("n1", "web:v2")));
    assert_eq!(sim.plan().changes, vec![], "waits for the new task to run");
    run_to_end(&mut sim);
    let all_v2 = ["n1", "n2", "n3"].map(|n| on(n, "web:v2")).to_vec();
    assert_eq!(images_by_node(&sim), all_v2);
    assert_eq!(state(&sim).0, UpdateState::Completed);
    sim.assert_settled();
}

#[test]
fn a_global_stop_first_rollout_starts_a_nodes_new_task_once_its_old_one_stopped() {
    let mut sim = global_v1(config(UpdateOrder::StopFirst, UpdateFailureAction::Pause));
    update_image(&mut sim, "web:v2");
    sim.step();
    let images = images_by_node(&sim);
    assert_eq!(images.len(), 2, "n1's old task told to stop: {images:?}");
    assert!(images.iter().all(|(n, i)| n != "n1" && i == "web:v1"));
    assert_eq!(
        sim.plan().changes,
        vec![],
        "n1 waits for its old task to stop"
    );
    stop_unwanted(&mut sim);
    sim.step();
    assert!(images_by_node(&sim).contains(&("n1".into(), "web:v2".into())));
    run_to_end(&mut sim);
    let all_v2: Vec<(String, String)> = ["n1", "n2", "n3"]
        .iter()
        .map(|n| (n.to_string(), "web:v2".to_string()))
        .collect();
    assert_eq!(images_by_node(&sim), all_v2);
    assert_eq!(state(&sim).0, UpdateState::Completed);
}
