//! Bounds on TLS handshakes at a node's port (2377 takes joins from anyone): at most
//! [`MAX_IN_FLIGHT`] at once, [`MAX_IN_FLIGHT_PER_ADDR`] of them from one address, and
//! [`MAX_PER_ADDR_PER_SEC`] new ones a second from one address. A connection over a bound
//! is closed before any TLS work, so a flood costs the node an accept and a close.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub const MAX_IN_FLIGHT: usize = 512;
pub const MAX_IN_FLIGHT_PER_ADDR: usize = 64;
pub const MAX_PER_ADDR_PER_SEC: u32 = 200;
/// Addresses tracked at most; past it the oldest windows are forgotten first.
const MAX_TRACKED: usize = 10_000;
const WINDOW: Duration = Duration::from_secs(1);

#[derive(Default)]
struct PerAddr {
    in_flight: usize,
    window_start: Option<Instant>,
    in_window: u32,
}

#[derive(Default)]
struct State {
    in_flight: usize,
    by_addr: HashMap<IpAddr, PerAddr>,
}

/// Shared by the accept loop and its handshake tasks.
#[derive(Clone, Default)]
pub struct Handshakes {
    state: Arc<Mutex<State>>,
}

/// Held while one handshake runs; dropping it frees its slot.
pub struct Slot {
    state: Arc<Mutex<State>>,
    addr: IpAddr,
}

/// Why a connection was closed unserved.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Busy,
    AddrBusy,
    AddrRate,
}

impl Handshakes {
    /// A slot for a handshake from `addr` at `now`, or why not.
    pub fn admit(&self, addr: IpAddr, now: Instant) -> Result<Slot, Refusal> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.in_flight >= MAX_IN_FLIGHT {
            return Err(Refusal::Busy);
        }
        if state.by_addr.len() >= MAX_TRACKED && !state.by_addr.contains_key(&addr) {
            forget_idle(&mut state.by_addr, now);
        }
        let entry = state.by_addr.entry(addr).or_default();
        if entry.in_flight >= MAX_IN_FLIGHT_PER_ADDR {
            return Err(Refusal::AddrBusy);
        }
        let fresh = entry
            .window_start
            .is_none_or(|start| now.duration_since(start) >= WINDOW);
        if fresh {
            entry.window_start = Some(now);
            entry.in_window = 0;
        }
        if entry.in_window >= MAX_PER_ADDR_PER_SEC {
            return Err(Refusal::AddrRate);
        }
        entry.in_window += 1;
        entry.in_flight += 1;
        state.in_flight += 1;
        Ok(Slot {
            state: self.state.clone(),
            addr,
        })
    }
}

/// Drops the addresses with no handshake in flight and no recent window.
fn forget_idle(by_addr: &mut HashMap<IpAddr, PerAddr>, now: Instant) {
    by_addr.retain(|_, a| {
        a.in_flight > 0
            || a.window_start
                .is_some_and(|s| now.duration_since(s) < WINDOW)
    });
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.in_flight = state.in_flight.saturating_sub(1);
        if let Some(entry) = state.by_addr.get_mut(&self.addr) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_per_address() {
        let limits = Handshakes::default();
        let now = Instant::now();
        let flooder: IpAddr = [192, 0, 2, 9].into();
        let slots: Vec<Slot> = (0..MAX_IN_FLIGHT_PER_ADDR)
            .map(|_| limits.admit(flooder, now).expect("within bounds"))
            .collect();
        assert_eq!(limits.admit(flooder, now).err(), Some(Refusal::AddrBusy));
        let other: IpAddr = [192, 0, 2, 10].into();
        assert!(
            limits.admit(other, now).is_ok(),
            "another address still joins"
        );
        drop(slots);
        // Slots are free again, but this second's budget keeps shrinking.
        let mut admitted = MAX_IN_FLIGHT_PER_ADDR as u32;
        while limits.admit(flooder, now).is_ok() {
            admitted += 1;
        }
        assert_eq!(admitted, MAX_PER_ADDR_PER_SEC);
        assert_eq!(limits.admit(flooder, now).err(), Some(Refusal::AddrRate));
        assert!(limits.admit(flooder, now + WINDOW).is_ok(), "a new second");
    }

    #[test]
    fn all_addresses_together_are_bounded() {
        let limits = Handshakes::default();
        let now = Instant::now();
        let slots: Vec<Slot> = (0..MAX_IN_FLIGHT)
            .map(|i| {
                let addr: IpAddr = [198, 18, (i / 256) as u8, (i % 256) as u8].into();
                limits.admit(addr, now).expect("within bounds")
            })
            .collect();
        assert_eq!(
            limits.admit([198, 19, 0, 1].into(), now).err(),
            Some(Refusal::Busy)
        );
        drop(slots);
        assert!(limits.admit([198, 19, 0, 1].into(), now).is_ok());
    }
}
