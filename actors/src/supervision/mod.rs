//! Supervision: what keeps the tree alive and says how it is.
//!
//! - `restart`: the restart policy actix's `Supervisor` lacks (backoff, intensity,
//!   escalation), carried by every supervised child.
//! - `health_monitor`: the `HealthMonitor` actor, which knows every child's state.
//! - `breaker`: the `Breaker` actor, one per dependency (the store, and the upstream
//!   broker when that mode is on), running `circuit`.
//! - `device_guard`: the `DeviceGuard` actor, the per-device breakers.
//! - `window`, `backoff`: the one sliding window and the one doubling delay they share.
//! - `panics`: panics become stops, which the supervisor restarts.
//! - `store_progress`: the store writer's figures, readable while it is stuck.
//! - `readiness`: whether Eliot should be sent devices now, from a health report.

mod backoff;
mod breaker;
mod circuit;
mod device_guard;
mod health_monitor;
mod panics;
mod readiness;
mod restart;
mod store_progress;
mod window;

pub use backoff::{jitter, Backoff};
pub use breaker::{Breaker, BreakersSettings, Report};
pub use circuit::{BreakerSettings, BreakerState, CallResult};
pub use device_guard::{DeviceBreakerSettings, DeviceGuard, GuardRefusal, MayConnect, Rejected};
pub use health_monitor::{
    ChildState, HealthMonitor, HealthProbe, HealthReport, HealthSettings, LinkHealth, Ping, Status,
    Watch,
};
pub use panics::catch_panic;
pub use readiness::readiness;
pub use restart::{Escalation, RestartSettings, Restarts};
pub use store_progress::{StoreProgress, StoreShape};
pub use window::SlidingWindow;
#[cfg(test)]
pub use {
    health_monitor::{BreakerHealth, ChildHealth},
    store_progress::StoreHealth,
};
