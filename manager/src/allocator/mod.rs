//! The allocator, on the leader: gives every new task an address on each of its networks
//! (NEW → PENDING) and every `vip`-mode service a VIP per network, in one proposal that also
//! moves each network's serial cursor.
//!
//! Address pools are rebuilt from the store on every pass: an address is held exactly while
//! a live task or a service holds it, so a crash never leaks one. A task that finds its
//! network full stays NEW with the reason and gets an address the moment one frees up.

pub mod ipam;
pub mod networks;
pub mod run;
#[cfg(test)]
mod tests_networks;
