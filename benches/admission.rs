//! The admission handler without the network: the body decoded (as `serve`
//! does, pruned to what the engine reads), images resolved offline, the
//! engine run, warnings and audit annotations built, the answer encoded —
//! per captured review. Also each stage of the Pod CREATE on its own, and
//! the whole-`Value` decode the pruned one replaces.
//!
//! `cargo bench --bench admission` prints the numbers; nothing is asserted.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use entrypoint_guard::admission::{self, AdmissionRequest, Schema};
use entrypoint_guard::config::server::OnError;
use entrypoint_guard::engine::{self, Mode, Policy};
use entrypoint_guard::image::OfflineResolver;

#[path = "support/fixtures.rs"]
mod fixtures;

/// What `serve` does for one body, minus HTTP, metrics and logging: the
/// lean decode along `schema`, the schema of the policy's kinds.
fn handle(body: &[u8], schema: &Arc<Schema>, resolver: &OfflineResolver, policy: &Policy) -> Vec<u8> {
    let mut request = match admission::decode_lean(body, schema) {
        Ok(request) => request,
        Err(e) => return e.to_string().into_bytes(),
    };
    let verdict = match request.take_object(&policy.kinds) {
        Ok(object) => {
            let old = request.take_old_object();
            let needed = engine::lookups(&object, old.as_ref(), request.namespace.as_deref(), policy);
            black_box(&needed.context);
            let facts = resolver.resolve_now(&needed.images);
            admission::review(
                &request.uid,
                &object,
                old.as_ref(),
                &facts,
                policy,
                Mode::Fix,
                OnError::Allow,
            )
        }
        Err(_) => admission::untouched(&request.uid),
    };
    verdict.response.to_json()
}

fn handler(c: &mut Criterion) {
    let resolver = OfflineResolver::new(fixtures::facts());
    let policy = Policy::default();
    let schema = Arc::new(Schema::of(&policy.kinds));
    let mut group = c.benchmark_group("handler");
    for (stem, body) in fixtures::reviews() {
        group.bench_function(&stem, |b| {
            b.iter(|| handle(black_box(&body), &schema, &resolver, &policy))
        });
    }
    group.finish();
}

fn stages(c: &mut Criterion) {
    let resolver = OfflineResolver::new(fixtures::facts());
    let policy = Policy::default();
    let body = fixtures::reviews()
        .into_iter()
        .find(|(stem, _)| stem == "pod-create")
        .expect("the pod-create fixture")
        .1;
    let mut group = c.benchmark_group("pod-create");
    group.bench_function("decode-whole-value", |b| {
        b.iter(|| admission::decode(black_box(&body)).unwrap())
    });
    let schema = Arc::new(Schema::of(&policy.kinds));
    group.bench_function("decode-lean", |b| {
        b.iter(|| admission::decode_lean(black_box(&body), &schema).unwrap())
    });
    let mut request: AdmissionRequest = admission::decode_lean(&body, &schema).unwrap();
    let object = request.take_object(&policy.kinds).unwrap();
    let facts = resolver.resolve_now(&engine::lookups(&object, None, None, &policy).images);
    group.bench_function("images+context+resolve", |b| {
        b.iter(|| {
            let needed = engine::lookups(black_box(&object), None, Some("demo"), &policy);
            (resolver.resolve_now(&needed.images), needed.context)
        })
    });
    group.bench_function("review", |b| {
        b.iter(|| {
            admission::review(
                "u",
                black_box(&object),
                None,
                &facts,
                &policy,
                Mode::Fix,
                OnError::Allow,
            )
        })
    });
    let verdict = admission::review("u", &object, None, &facts, &policy, Mode::Fix, OnError::Allow);
    group.bench_function("encode", |b| b.iter(|| black_box(&verdict.response).to_json()));
    group.finish();
}

criterion_group!(benches, handler, stages);
criterion_main!(benches);
