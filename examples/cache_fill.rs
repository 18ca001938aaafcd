//! Fills the registry resolver's cache with N distinct lookups and prints how
//! many entries it keeps and the process RSS as it goes, for
//! `scripts/reliability/memory.sh`: the cache must stay within
//! `registry.cacheCapacity` however many images are named.
//!
//! Every lookup names a tag never asked before on a loopback stand-in that
//! answers 500 at once (tests/support/faults.rs), so each makes one real
//! registry round trip through the guarded proxy and leaves one cached
//! outcome (the negative TTL is set to an hour so none expires meanwhile).
//!
//! `cargo run --release --example cache_fill -- [LOOKUPS=100000] [CAPACITY=10000]`

#[path = "../tests/support/faults.rs"]
mod faults;

use std::sync::Arc;
use std::time::{Duration, Instant};

use entrypoint_guard::config::{RegistryConfig, Span};
use entrypoint_guard::image::{LookupContext, Resolver};
use entrypoint_guard::registry::{NoCredentials, RegistryResolver};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let lookups: usize = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let capacity: u64 = args.next().map_or(Ok(10_000), |a| a.parse())?;
    let stand_in = faults::FaultRegistry::start("127.0.0.1:0".parse()?, "127.0.0.1:9".parse()?).await?;
    stand_in.set(faults::Fault::ServerError);
    let registry = stand_in.addr.to_string();
    let config = RegistryConfig {
        pull_secrets: false,
        insecure: vec![registry.clone()],
        allow_private: vec![registry.clone()],
        cache_capacity: capacity,
        negative_ttl: Span(Duration::from_secs(3600)),
        ..Default::default()
    };
    let resolver = RegistryResolver::new(&config, Arc::new(NoCredentials))?;
    let ctx = LookupContext {
        namespace: Some("default".into()),
        ..LookupContext::default()
    };
    println!(
        "lookups={lookups} cacheCapacity={capacity} rss_before={} KiB",
        rss_kib()
    );
    let started = Instant::now();
    let batch = 200;
    let mut done = 0;
    let mut unresolved = 0;
    while done < lookups {
        let n = batch.min(lookups - done);
        let images: Vec<String> = (done..done + n).map(|i| format!("{registry}/fill/app:t{i}")).collect();
        let facts = resolver
            .resolve(&images, &ctx, Instant::now() + Duration::from_secs(30))
            .await;
        unresolved += images.iter().filter(|i| facts.get(i.as_str()).is_some()).count();
        done += n;
        if done % (lookups / 4).max(1) == 0 || done == lookups {
            println!(
                "after {done:>7} lookups: cached_entries={:>6} rss={} KiB elapsed={:.1}s",
                resolver.cached_entries().await,
                rss_kib(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    // cached_entries runs the pending evictions first.
    let settled = resolver.cached_entries().await;
    println!(
        "settled: cached_entries={settled} (bound {capacity}) rss_after={} KiB; answers={unresolved}; registry requests={}",
        rss_kib(),
        stand_in.seen(faults::Fault::ServerError)
    );
    if settled > capacity {
        return Err(format!("the cache holds {settled} entries, over its bound of {capacity}").into());
    }
    Ok(())
}
