//! Registry resolver timings against a local `docker-registry`, printed (never asserted):
//! cache-hit lookups, cold lookups, and `skopeo inspect` of the same references.
//!
//!     cargo bench --bench resolver            # optimised build
//!     cargo bench --bench resolver --profile dev   # reuse the debug build

#[path = "../tests/support/registry.rs"]
mod registry;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use entrypoint_guard::config::RegistryConfig;
use entrypoint_guard::image::{Entrypoint, LookupContext, Resolver};
use entrypoint_guard::registry::{NoCredentials, RegistryResolver};

fn stats(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let n = samples.len();
    let mean = samples.iter().sum::<Duration>() / n as u32;
    println!(
        "{name:<44} n={n:<6} median={:>10.3?} mean={:>10.3?} min={:>10.3?} max={:>10.3?}",
        samples[n / 2],
        mean,
        samples[0],
        samples[n - 1]
    );
}

fn config(addr: &str) -> RegistryConfig {
    RegistryConfig {
        insecure: vec![addr.to_string()],
        allow_private: vec![addr.to_string()],
        ..Default::default()
    }
}

async fn lookup(r: &RegistryResolver, images: &[String]) -> Duration {
    let started = Instant::now();
    let facts = r
        .resolve(
            images,
            &LookupContext::default(),
            Instant::now() + Duration::from_secs(10),
        )
        .await;
    let elapsed = started.elapsed();
    for image in images {
        let f = facts.get(image).expect("facts for every image");
        assert!(matches!(f.entrypoint, Entrypoint::Known { .. }), "{image}: {f:?}");
    }
    elapsed
}

fn skopeo(image: &str) -> Duration {
    let started = Instant::now();
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{image}"))
        .output()
        .expect("skopeo is installed (scripts/testenv/install.sh)");
    let elapsed = started.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    elapsed
}

#[tokio::main]
async fn main() {
    let world = registry::World::new();
    let addr = world.plain.addr.clone();
    let single = format!("{addr}/chalk/bare:1.0");
    let multi = format!("{addr}/chalk/multi:1.0");
    println!("registry: docker-registry on {addr} (loopback, plain HTTP)");

    for (label, image) in [("single-arch", &single), ("multi-arch index (2 platforms)", &multi)] {
        let images = vec![image.clone()];
        // Cold: a new resolver each time (empty cache, new client and connection).
        let mut cold = Vec::new();
        for _ in 0..30 {
            let r = RegistryResolver::new(&config(&addr), Arc::new(NoCredentials)).unwrap();
            cold.push(lookup(&r, &images).await);
        }
        stats(&format!("cold lookup, {label}"), cold);
        let mut sk = Vec::new();
        for _ in 0..15 {
            sk.push(skopeo(image));
        }
        stats(&format!("skopeo inspect, {label}"), sk);
    }

    let mut build = Vec::new();
    for _ in 0..30 {
        let started = Instant::now();
        let r = RegistryResolver::new(&config(&addr), Arc::new(NoCredentials)).unwrap();
        build.push(started.elapsed());
        drop(r);
    }
    stats("RegistryResolver::new (part of each cold lookup)", build);

    // A warm resolver (client, connection and token reused) asked for tags it
    // has not seen: uncached tags whose content it already knows (HEAD only).
    let r = RegistryResolver::new(&config(&addr), Arc::new(NoCredentials)).unwrap();
    let tags: Vec<String> = (0..30).map(|i| format!("bench-{i}")).collect();
    for tag in &tags {
        let out = Command::new("skopeo")
            .args(["copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false"])
            .arg(format!("docker://{single}"))
            .arg(format!("docker://{addr}/chalk/bare:{tag}"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    lookup(&r, std::slice::from_ref(&single)).await;
    let mut warm = Vec::new();
    for tag in &tags {
        warm.push(lookup(&r, &[format!("{addr}/chalk/bare:{tag}")]).await);
    }
    stats("new tag, known digest, warm resolver (HEAD)", warm);

    let images = vec![single.clone()];
    lookup(&r, &images).await;
    let mut hits = Vec::new();
    for _ in 0..20_000 {
        hits.push(lookup(&r, &images).await);
    }
    stats("cache hit, one image", hits);
    let many: Vec<String> = ["bare", "one", "two", "shell", "flags"]
        .iter()
        .map(|n| format!("{addr}/chalk/{n}:1.0"))
        .collect();
    lookup(&r, &many).await;
    let mut hits = Vec::new();
    for _ in 0..5_000 {
        hits.push(lookup(&r, &many).await);
    }
    stats("cache hit, five images in one request", hits);
}
