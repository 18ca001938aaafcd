//! `registry.maxConcurrentLookups` against a registry that never answers:
//! the lookups in flight, all admissions together, never exceed the slots;
//! an image that finds no slot free waits until its request's deadline and
//! is then reported unknown with the reason, and opens no connection. The
//! stand-in (support/faults.rs) stalls every connection, so the outcome is
//! decided by the stall and the deadline, not by timing.

#[path = "support/faults.rs"]
mod faults;

use std::sync::Arc;
use std::time::{Duration, Instant};

use entrypoint_guard::config::{RegistryConfig, Span};
use entrypoint_guard::image::{Entrypoint, Facts, LookupContext, Resolver};
use entrypoint_guard::registry::{LimitLabel, NoCredentials, RegistryResolver, limit_metric};
use faults::{Fault, FaultRegistry};

const NO_SLOT: &str = "no registry lookup slot came free within the request's deadline (registry.maxConcurrentLookups)";
const TOO_SLOW: &str = "registry lookup did not finish within the request's deadline";

fn reasons(facts: &Facts, images: &[String]) -> Vec<String> {
    images
        .iter()
        .map(|i| match &facts.get(i).expect("every image answered").entrypoint {
            Entrypoint::Unknown { reason } => reason.clone(),
            other => panic!("{i}: {other:?}"),
        })
        .collect()
}

fn counted(limit: &'static str) -> u64 {
    limit_metric().get_or_create(&LimitLabel { limit }).get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_beyond_the_slots_wait_for_the_deadline_and_open_no_connection() {
    // Upstream is never reached: every connection stalls.
    let stand_in = FaultRegistry::start("127.0.0.1:0".parse().unwrap(), "127.0.0.1:9".parse().unwrap())
        .await
        .unwrap();
    stand_in.set(Fault::Stall);
    let reg = stand_in.addr.to_string();
    let config = RegistryConfig {
        pull_secrets: false,
        insecure: vec![reg.clone()],
        allow_private: vec![reg.clone()],
        // The stalled lookups hold their slots for the whole test.
        lookup_timeout: Span(Duration::from_secs(60)),
        max_concurrent_lookups: 2,
        ..Default::default()
    };
    let resolver = RegistryResolver::new(&config, Arc::new(NoCredentials)).unwrap();
    let ctx = LookupContext {
        namespace: Some("default".into()),
        ..LookupContext::default()
    };

    // One admission with five images: two take the slots and stall, three wait.
    let images: Vec<String> = (0..5).map(|i| format!("{reg}/slots/app:{i}")).collect();
    let deadline = Instant::now() + Duration::from_millis(1500);
    let facts = resolver.resolve(&images, &ctx, deadline).await;
    assert!(
        Instant::now() >= deadline,
        "the waiting images were given up at the deadline"
    );
    assert_eq!(
        reasons(&facts, &images),
        [TOO_SLOW, TOO_SLOW, NO_SLOT, NO_SLOT, NO_SLOT]
    );
    assert_eq!(counted("lookup-refused"), 3);
    assert!(counted("lookup-waited") >= 3);

    // Another admission meanwhile: the slots are still held, so none of its
    // images reaches the registry.
    let more: Vec<String> = (5..9).map(|i| format!("{reg}/slots/app:{i}")).collect();
    let facts = resolver
        .resolve(&more, &ctx, Instant::now() + Duration::from_millis(500))
        .await;
    assert_eq!(reasons(&facts, &more), [NO_SLOT; 4]);
    assert_eq!(counted("lookup-refused"), 7);
    // Only the lookups holding a slot opened a connection (both have by now
    // on an idle machine; the bound is what matters).
    let connections = stand_in.seen(Fault::Stall);
    assert!((1..=2).contains(&connections), "{connections} registry connections");
}
