//! Images: references, the facts known about them, and where facts come from.

pub(crate) mod facts;
pub(crate) mod layered;
pub(crate) mod reference;
pub(crate) mod resolver;

pub use facts::{Entrypoint, Facts, ImageFacts, PlatformEntrypoint};
pub use layered::LayeredResolver;
pub use reference::{Reference, ReferenceError};
pub use resolver::{LookupContext, LookupStats, OfflineResolver, Resolver};
