//! entrypoint-guard keeps chalk-wrapped image entrypoints running in
//! Kubernetes and pins images to digests.
//!
//! A container `command` replaces the image ENTRYPOINT, so a Pod that sets it
//! on a chalk-wrapped image silently bypasses chalk. The [`engine`] decides,
//! from the image's config, whether to move `command` into `args` or to
//! prepend the wrapper; the front ends (`serve`, `review`, `audit`) apply it.
//! The layers and the life of one admission request: docs/ARCHITECTURE.md.

// `pub` only for what the binary, tests, benches, examples and fuzz targets
// use; everything else is `pub(crate)` (`cargo fix --lib` applies this lint).
#![warn(unreachable_pub)]

pub mod admission;
pub mod audit;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod engine;
mod error;
pub mod image;
pub mod krm;
mod logging;
pub mod registry;
mod resolver;
pub mod review;
mod runtime;
mod sarif;
pub mod server;
