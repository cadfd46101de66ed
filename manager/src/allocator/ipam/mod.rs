//! IP address management for overlay networks: subnets, task and VIP
//! addresses, and VXLAN ids. Pure, IO-free decisions for the allocator stage.
//!
//! Role: the allocator on the leader rebuilds these structures from the
//! replicated state when it becomes leader (the subnets and VNIs of existing
//! networks, the task and VIP addresses of each network, the cursor persisted
//! in each network object), then decides allocations with them and commits
//! each in the same Raft entry as the object it serves.
//!
//! - [`SubnetAllocator`]: the first free subnet of the mask length in the
//!   cluster's default address pools (Swarm's `10.0.0.0/8` cut into /24s),
//!   skipping any that overlap an existing network; checks user subnets.
//! - [`AddressPool`]: one per network; the gateway (default `.1`) is taken
//!   first, network and broadcast addresses are never handed out, and
//!   addresses are handed out serially from a cursor.
//! - [`VniAllocator`]: the lowest free VXLAN id from 4096 up.
//! - [`validate`]: parsing and checks of `network create --subnet/--gateway`
//!   and `init --default-addr-pool/--default-addr-pool-mask-length`.
//!
//! Invariants:
//! - No duplicates: a subnet never overlaps a held one, an address or a VNI is
//!   never handed out while held.
//! - Serial order: an address is handed out after the last one given, so a
//!   freed address is not reused until the cursor wraps around (fewer stale
//!   ARP and DNS answers).
//! - Deterministic rebuild: the same persisted facts give the same
//!   structures and the same next allocations, whatever their order.
//!   `reserve` and `release` are idempotent.

mod addresses;
mod bitmap;
mod error;
mod subnets;
pub mod validate;
mod vni;

pub use addresses::AddressPool;
pub use error::{AddressRole, IpamError};
pub use subnets::SubnetAllocator;
pub use validate::{DEFAULT_MASK_LEN, DEFAULT_POOL};
pub use vni::{VniAllocator, VNI_FIRST, VNI_LAST};
