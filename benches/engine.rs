//! The engine alone, per object kind: `engine::inspect` on the object of
//! each captured admission review (a Pod, each workload kind, an update),
//! with wrapped images whose digests are known, so each run finds, fixes
//! and pins.
//!
//! `cargo bench --bench engine` prints the numbers; nothing is asserted.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use entrypoint_guard::admission;
use entrypoint_guard::engine::{self, Mode, Policy};

#[path = "support/fixtures.rs"]
mod fixtures;

fn engine_per_kind(c: &mut Criterion) {
    let facts = fixtures::facts();
    let policy = Policy::default();
    let mut group = c.benchmark_group("engine");
    for (stem, body) in fixtures::reviews() {
        let mut request = admission::decode(&body).expect("a fixture decodes");
        // Pod UPDATE is not inspected by the webhook, but the engine handles it like any Pod.
        let object = request
            .take_object(&policy.kinds)
            .or_else(|_| request.object.take().ok_or(()))
            .expect("an object");
        group.bench_function(&stem, |b| {
            b.iter(|| engine::inspect(black_box(&object), &facts, &policy, Mode::Fix))
        });
    }
    group.finish();
}

criterion_group!(benches, engine_per_kind);
criterion_main!(benches);
