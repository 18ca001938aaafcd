//! The pure engine: object + image facts + policy in, findings + patch out.
//!
//! No I/O and no clock, so the webhook, `review` and `audit` — all thin front
//! ends over [`inspect()`] — can never disagree.
//!
//! Safe next to controllers: an object a controller owns is never patched
//! (`owner`), and an UPDATE never changes a container the user left as it
//! was ([`inspect_update`]), so no controller can be made to loop.

pub mod chalk;
pub(crate) mod finding;
mod fix;
mod inspect;
pub(crate) mod json;
pub mod kinds;
mod lookups;
pub(crate) mod owner;
pub(crate) mod patch;
mod pointer;
pub(crate) mod policy;
pub(crate) mod rule;
mod update;
pub mod workload;

pub use finding::{Change, CommandLine, ContainerRef, Finding, Fix};
pub use fix::{may_bypass, prepend_unknown};
pub(crate) use inspect::inspect_to_answer;
pub use inspect::{Inspection, MIRROR_POD_ANNOTATION, inspect, inspect_update};
pub use kinds::{Kind, Kinds};
pub use lookups::{Lookups, lookups};
pub use owner::{Held, Owner};
pub use policy::{ImageFilter, Mode, Policy, Scope, Strategy, UnknownImages};
pub use rule::{Outcome, Rule, Severity};
