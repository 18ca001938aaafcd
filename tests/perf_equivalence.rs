//! `admission::decode_lean` (the pruned decode `serve` uses) answers exactly
//! like `admission::decode` (the whole object): the same bodies accepted and
//! rejected with the same errors, the same images to resolve, the same
//! lookup context, the same inspection (findings, patch, proposed, held) and
//! the same response bytes — over every captured fixture and generated
//! objects with every shape the engine treats differently, on CREATE and on
//! UPDATE (with the `oldObject` decoded the same way); and, with custom
//! kinds configured (`decode_lean` along their schema), over generated objects
//! of those kinds: pod specs under a `*` over tasks and over a map of replica
//! types, a pod spec that is the object's own spec, an escaped key.
//!
//! The tests are split by what they feed the decodes: `fixtures` (the
//! captured reviews and hand-made bodies), `generated` (proptest reviews
//! from `generators`); `recall` proves the intake's recalled decodes (bodies
//! alike but for their uid) equal to fresh ones; `support` holds the
//! comparisons.

#[path = "perf_equivalence/fixtures.rs"]
mod fixtures;
#[path = "perf_equivalence/generated.rs"]
mod generated;
#[path = "perf_equivalence/generators.rs"]
mod generators;
#[path = "perf_equivalence/recall.rs"]
mod recall;
#[path = "perf_equivalence/support.rs"]
mod support;
