//! Images: references, the facts known about them, and where facts come from.

pub mod facts;
pub mod layered;
pub mod reference;
pub mod registry;
pub mod resolver;

pub use facts::{Entrypoint, Facts, ImageFacts, PlatformEntrypoint};
pub use layered::LayeredResolver;
pub use reference::{Reference, ReferenceError};
pub use resolver::{LookupContext, OfflineResolver, Resolver};
