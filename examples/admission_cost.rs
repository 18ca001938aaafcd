//! Where the time of one admission goes, stage by stage, without TLS or
//! HTTP: decode (pruned, as `serve` does), take the object and list its
//! images, resolve (offline), review (engine + warnings + audit
//! annotations), encode the answer; then the same through
//! `admission::Memo` (every request after the first answered from memory),
//! and through `admission::Intake` as `serve` runs it (each body alike to
//! the first but for a new uid, so recalled, not decoded); and, for comparison, the whole-`Value` decode.
//! Companion of `scripts/load.sh`; prints numbers, asserts nothing.
//! `examples/admission_cost_mimalloc.rs` is the same with mimalloc.
//!
//! `cargo run --release --example admission_cost -- REVIEW.json [FACTS.yaml] [ITERATIONS] [CONFIG.yaml]`
//! (a configuration's `customKinds` widen the decode schema, as in `serve`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use entrypoint_guard::admission::Schema;
use entrypoint_guard::config::{self, Config, server::OnError};
use entrypoint_guard::engine::{self, Mode};
use entrypoint_guard::{admission, image::OfflineResolver};

/// Runs the stages `ITERATIONS` times and prints the mean of each.
pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let review = args
        .next()
        .ok_or("usage: admission_cost REVIEW.json [FACTS.yaml] [ITERATIONS] [CONFIG.yaml]")?;
    let body = std::fs::read(&review)?;
    let facts = args.next();
    let iterations: u32 = args.next().map_or(Ok(20_000), |n| n.parse())?;
    let mut config = match args.next() {
        Some(path) => Config::load(Path::new(&path))?,
        None => Config::default(),
    };
    if let Some(facts) = facts {
        config.image_facts = config::load_image_facts(Path::new(&facts))?;
    }
    let resolver = OfflineResolver::new(config.facts());
    let policy = config.policy();
    let schema = Arc::new(Schema::of(&policy.kinds));

    let stages = [
        "decode",
        "take object + images",
        "resolve (offline)",
        "review",
        "encode answer",
    ];
    let mut spent = [Duration::ZERO; 5];
    // The staged run decodes every time, as on a first sight of a body.
    for _ in 0..iterations {
        let t0 = Instant::now();
        let mut request = admission::decode_lean(&body, &schema)?;
        let t1 = Instant::now();
        let Ok(object) = request.take_object(&policy.kinds) else {
            return Err("this review is not inspected (operation, kind or subresource)".into());
        };
        let old = request.take_old_object();
        let images = engine::lookups(&object, old.as_ref(), request.namespace.as_deref(), &policy).images;
        let t2 = Instant::now();
        let facts = resolver.resolve_now(&images);
        let t3 = Instant::now();
        let verdict = admission::review(
            &request.uid,
            &object,
            old.as_ref(),
            &facts,
            &policy,
            Mode::Fix,
            OnError::Allow,
        );
        let t4 = Instant::now();
        std::hint::black_box(verdict.response.to_json());
        let t5 = Instant::now();
        for (i, (a, b)) in [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5)]
            .into_iter()
            .enumerate()
        {
            spent[i] += b - a;
        }
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(iterations);
    println!("{review}: {} bytes, {iterations} iterations", body.len());
    for (stage, d) in stages.iter().zip(spent) {
        println!("{stage:>22}: {:8.1} us", per(d));
    }
    println!("{:>22}: {:8.1} us", "total", per(spent.iter().sum()));
    // The memo's path without the recall: decode and prepare every time,
    // resolve, then the memo (a hit after the first request: the same
    // object, facts and ceiling every time).
    let memo = admission::Memo::new(16);
    let t = Instant::now();
    for _ in 0..iterations {
        let request = admission::decode_lean(&body, &schema)?;
        let uid = request.uid.clone();
        let prepared = admission::Prepared::new(request, &policy, &memo);
        let target = prepared.target.as_ref().map_err(|_| "not inspected")?;
        let facts = resolver.resolve_now(&target.lookups.images);
        let answer = memo.review(&uid, &target.subject, &facts, &policy, Mode::Fix, OnError::Allow);
        std::hint::black_box(answer.body);
    }
    println!("{:>22}: {:8.1} us", "total, memo hit", per(t.elapsed()));
    // serve's path: the intake recalls the decode of a body alike but for
    // its uid (each request here has a new one, as from an API server),
    // then resolve and the memo.
    let intake = admission::Intake::new(Arc::clone(&schema), 16);
    let bodies = with_new_uids(&body, 1024)?;
    let t = Instant::now();
    for i in 0..iterations {
        let read = intake.read(&bodies[i as usize % bodies.len()], &policy, &memo)?;
        let target = read.prepared.target.as_ref().map_err(|_| "not inspected")?;
        let facts = resolver.resolve_now(&target.lookups.images);
        let answer = memo.review(&read.uid, &target.subject, &facts, &policy, Mode::Fix, OnError::Allow);
        std::hint::black_box(answer.body);
    }
    println!("{:>22}: {:8.1} us", "total, recalled", per(t.elapsed()));
    // What the recall costs when nothing is alike: every body is another
    // object (its name differs), so each read decodes, collects the spans
    // of the skipped strings and keeps the body.
    let others = with_new_names(&body, 1024)?;
    let t = Instant::now();
    for i in 0..iterations {
        std::hint::black_box(intake.read(&others[i as usize % others.len()], &policy, &memo)?);
    }
    println!("{:>22}: {:8.1} us", "intake read, a miss", per(t.elapsed()));
    let plain = admission::Intake::new(Arc::clone(&schema), 0);
    let t = Instant::now();
    for i in 0..iterations {
        std::hint::black_box(plain.read(&others[i as usize % others.len()], &policy, &memo)?);
    }
    println!("{:>22}: {:8.1} us", "(the same, no recall)", per(t.elapsed()));
    let t = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(admission::decode(&body)?);
    }
    println!("{:>22}: {:8.1} us", "(whole-Value decode)", per(t.elapsed()));
    // The floor of any decode that checks the body as serde_json does:
    // reading it as JSON and building nothing.
    let t = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(serde_json::from_slice::<serde::de::IgnoredAny>(&body)?);
    }
    println!("{:>22}: {:8.1} us", "(validate only)", per(t.elapsed()));
    // The API server sends compact JSON; the fixture is indented.
    let compact = serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&body)?)?;
    let t = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(admission::decode_lean(&compact, &schema)?);
    }
    println!(
        "{:>22}: {:8.1} us ({} bytes)",
        "(decode, compact)",
        per(t.elapsed()),
        compact.len()
    );
    Ok(())
}

/// `count` copies of `body` whose object's `metadata.name` (a kept field)
/// ends in another number each.
fn with_new_names(body: &[u8], count: usize) -> Result<Vec<Vec<u8>>, Box<dyn std::error::Error>> {
    let mut review: serde_json::Value = serde_json::from_slice(body)?;
    let name = review["request"]["object"]["metadata"]["name"]
        .as_str()
        .unwrap_or("object")
        .to_string();
    (0..count)
        .map(|i| {
            review["request"]["object"]["metadata"]["name"] = format!("{name}-{i:04}").into();
            Ok(serde_json::to_vec_pretty(&review)?)
        })
        .collect()
}

/// `count` copies of `body` whose `request.uid` is a new one of the same length each.
fn with_new_uids(body: &[u8], count: usize) -> Result<Vec<Vec<u8>>, Box<dyn std::error::Error>> {
    let uid = admission::decode(body)?.uid;
    let at = body
        .windows(uid.len())
        .position(|w| w == uid.as_bytes())
        .ok_or("the uid is not written plainly in the body")?;
    Ok((0..count)
        .map(|i| {
            let mut copy = body.to_vec();
            let new = format!("{i:0width$x}", width = uid.len());
            copy[at..at + uid.len()].copy_from_slice(new.as_bytes());
            copy
        })
        .collect())
}
