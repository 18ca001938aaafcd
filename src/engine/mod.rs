//! The pure engine: object + image facts + policy in, findings + patch out.
//!
//! No I/O and no clock, so the webhook, `review` and `audit` — all thin front
//! ends over [`inspect`] — can never disagree.

pub mod chalk;
pub mod finding;
mod fix;
mod inspect;
pub mod patch;
pub mod policy;
pub mod workload;

pub use finding::{Change, CommandLine, ContainerRef, Finding, Fix, Rule};
pub use inspect::{Inspection, MIRROR_POD_ANNOTATION, images, inspect};
pub use policy::{ImageFilter, Mode, Policy, Strategy, UnknownImages};
