//! Eliot: an IoT telemetry ingestion server.
//!
//! # Layout
//!
//! This crate is the application shell around the actor engine (`eliot_actors`):
//!
//! - `config`: layered TOML configuration, environment overrides, typed errors.
//! - `logging`: slog drains (terminal or JSON), async with a sized buffer, `log` bridge.
//!   (Tests and examples capture logs with `eliot_actors::CapturedLogs`.)
//! - `app`: `Server`, which starts the supervision tree and runs it until a shutdown request,
//!   then drains it; the binary, the integration tests and the examples all start Eliot
//!   through it.
//! - `http`: `/health`, `/ready` and `/metrics`, and the API v1 (`/api/v1/...`),
//!   an actix-web server under the tree's supervision.
//! - `cli`: the `eliot` command (`run`, `check-config`, and `device add`, `list`,
//!   `rotate`, `remove` to provision devices); `main.rs` only calls it.

pub mod app;
pub mod cli;
pub mod config;
pub mod http;
pub mod logging;

pub use eliot_actors as actors;
