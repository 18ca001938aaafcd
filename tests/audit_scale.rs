//! The audit's memory at scale (issue 13): the real binary audits 100,000
//! Pods (made from the fixture's Pods by the stand-in API server, page by
//! page, one in 100 with a bypass) and its peak RSS is printed. A
//! measurement, not a timed test: ignored by default, run it with
//!
//! ```sh
//! cargo test --test audit_scale -- --ignored --nocapture
//! EG_BASELINE_BIN=/path/to/older/entrypoint-guard cargo test --test audit_scale -- --ignored --nocapture
//! ```
//!
//! (`EG_BASELINE_BIN` measures another build the same way, for comparison.)

#[path = "support/audit.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::Instant;

use support::{ApiServer, Behaviour, GeneratedPods, images_file};

/// `EG_AUDIT_PODS` (default 100,000) and `EG_AUDIT_BYPASS_EVERY` (default
/// 100) change the cluster, e.g. to see how the peak grows with the findings.
fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs `binary audit -o json` against `api` with `args`; returns (exit
/// code, peak RSS in KiB, seconds, objects with findings).
fn measure(binary: &str, api: &ApiServer, dir: &std::path::Path, args: &[&str]) -> (i32, i64, f64, usize) {
    let kubeconfig = api.kubeconfig(dir);
    let images = images_file(dir);
    let started = Instant::now();
    // Reaped by wait4 below, which also gives its rusage (Child::wait does not).
    #[allow(clippy::zombie_processes)]
    let child = Command::new(binary)
        .args(["audit", "-o", "json", "--images", images.to_str().unwrap()])
        .args(args)
        .env("KUBECONFIG", &kubeconfig)
        .env("HOME", dir)
        .env_remove("ENTRYPOINT_GUARD_CONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run entrypoint-guard");
    let pid = child.id() as libc::pid_t;
    let output = std::thread::spawn(move || {
        let mut stdout = child.stdout.expect("stdout");
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut text).expect("read stdout");
        text
    });
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet reaped (Child was never waited on).
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4");
    let seconds = started.elapsed().as_secs_f64();
    let text = output.join().expect("stdout reader");
    let report: serde_json::Value = serde_json::from_slice(&text).expect("a JSON report");
    let with_findings = report["objects"].as_array().map_or(0, Vec::len);
    (libc::WEXITSTATUS(status), usage.ru_maxrss, seconds, with_findings)
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn audit_peak_rss_over_100k_pods() {
    let (pods, bypass_every) = (setting("EG_AUDIT_PODS", 100_000), setting("EG_AUDIT_BYPASS_EVERY", 100));
    let dir = tempfile::tempdir().unwrap();
    let api = ApiServer::start(Behaviour {
        generated_pods: Some(GeneratedPods {
            count: pods,
            namespaces: 50,
            bypass_every,
        }),
        ..Behaviour::default()
    });
    let mut binaries = vec![("this build", env!("CARGO_BIN_EXE_entrypoint-guard").to_string())];
    if let Ok(baseline) = std::env::var("EG_BASELINE_BIN") {
        binaries.push(("baseline", baseline));
    }
    for (name, binary) in binaries {
        for chunk in ["500", "100"] {
            let (code, rss_kib, seconds, with_findings) = measure(&binary, &api, dir.path(), &["--chunk-size", chunk]);
            assert_eq!(code, 1, "{name}: findings exit 1");
            // The fixture's bypassing Pod, its Deployment, ... and one generated Pod in BYPASS_EVERY.
            assert!(
                with_findings >= pods / bypass_every,
                "{name}: {with_findings} objects with findings"
            );
            println!(
                "{name}: {pods} generated Pods, --chunk-size {chunk}: peak RSS {:.1} MiB, {seconds:.1} s, {with_findings} objects with findings",
                rss_kib as f64 / 1024.0
            );
        }
    }
}
