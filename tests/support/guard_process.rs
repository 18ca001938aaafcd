//! `entrypoint-guard serve` — the built binary — as the API server's webhook:
//! started with the configuration the chart renders, TLS from the test PKI,
//! JSON logs in a file the tests read, and the chart's
//! MutatingWebhookConfiguration pointed at it on loopback.
//!
//! Include with `#[path = "support/guard_process.rs"] mod guard_process;`
//! next to `control_plane` (it uses its `Process` and `wait_for`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::control_plane::{Process, wait_for};

/// The webhook process and where it logs.
pub struct Guard {
    process: Option<Process>,
    /// The HTTPS admission port (kept across restarts: the webhook configuration names it).
    pub port: u16,
    /// Its JSON log lines (every start appends).
    pub log: PathBuf,
    /// Arguments after `serve`, except `--listen`.
    args: Vec<String>,
}

impl Guard {
    /// Starts `serve` in `dir` with the chart's `config.yaml` text, the
    /// serving certificate `tls` (cert, key) and the image facts file `facts`.
    pub async fn start(dir: &Path, config_yaml: &str, tls: &(PathBuf, PathBuf), facts: &Path) -> Result<Guard, String> {
        let config = dir.join("webhook-config.yaml");
        std::fs::write(&config, config_yaml).map_err(|e| format!("{}: {e}", config.display()))?;
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let args = vec![
            format!("--config={}", path(&config)),
            "--log-format=json".into(),
            // debug: one `admission answered` line per request, with its namespace and HTTP version
            "--log-level=info,entrypoint_guard=debug".into(),
            "serve".into(),
            "--health-listen=off".into(),
            format!("--tls-cert={}", path(&tls.0)),
            format!("--tls-key={}", path(&tls.1)),
            format!("--images={}", path(facts)),
        ];
        let mut guard = Guard {
            process: None,
            port: 0,
            log: dir.join("webhook.log"),
            args,
        };
        guard.port = guard.launch(0).await?;
        Ok(guard)
    }

    /// Starts the process listening on `port` (0: any); returns the port it serves on.
    async fn launch(&mut self, port: u16) -> Result<u16, String> {
        let from = self.events().len();
        let mut args = self.args.clone();
        args.push(format!("--listen=127.0.0.1:{port}"));
        let process = Process::spawn(
            "entrypoint-guard serve",
            Path::new(env!("CARGO_BIN_EXE_entrypoint-guard")),
            &args,
            &self.log,
            &[],
        )?;
        self.process = Some(process);
        let log = self.log.clone();
        let addr = wait_for("entrypoint-guard serves", Duration::from_secs(30), || {
            let exited = self.process.as_mut().and_then(Process::exited);
            let found = events_of(&log)
                .into_iter()
                .skip(from)
                .find(|e| e["message"] == "serving admission requests")
                .map(|e| e["addr"].as_str().unwrap_or_default().to_string());
            async move {
                match exited {
                    Some(why) => Err(why),
                    None => Ok(found),
                }
            }
        })
        .await?;
        let port = addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok());
        port.ok_or_else(|| format!("cannot read the port of {addr:?}"))
    }

    /// Stops the webhook with SIGTERM (it finishes in-flight requests and
    /// flushes its log); the API server then cannot reach it.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let clean = process.stop(libc::SIGTERM, Duration::from_secs(15));
            assert!(clean, "entrypoint-guard serve did not stop on SIGTERM within 15 s");
        }
    }

    /// Starts it again on the same port.
    pub async fn restart(&mut self) -> Result<(), String> {
        let port = self.launch(self.port).await?;
        assert_eq!(port, self.port);
        Ok(())
    }

    /// Every JSON log line so far.
    pub fn events(&self) -> Vec<Value> {
        events_of(&self.log)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop(libc::SIGTERM, Duration::from_secs(15));
        }
    }
}

/// The JSON lines of a log file (other lines skipped).
pub fn events_of(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The chart's MutatingWebhookConfiguration with each `clientConfig.service`
/// replaced by `https://127.0.0.1:PORT<path>` and the test CA: everything
/// else (rules, selectors, matchConditions, timeouts) exactly as rendered.
pub fn on_loopback(rendered: &Value, port: u16, ca_bundle: &str) -> Value {
    let mut configuration = rendered.clone();
    let webhooks = configuration["webhooks"].as_array_mut().expect("webhooks");
    for webhook in webhooks {
        let path = webhook["clientConfig"]["service"]["path"]
            .as_str()
            .unwrap_or_else(|| panic!("the chart's webhook has no service path: {webhook}"))
            .to_string();
        webhook["clientConfig"] = json!({
            "url": format!("https://127.0.0.1:{port}{path}"),
            "caBundle": ca_bundle,
        });
    }
    configuration
}
