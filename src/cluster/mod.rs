//! A live cluster: connecting to its API server (one place for `audit` and
//! `serve`), listing every supported kind page by page, and the audit of
//! what it holds ([`audit::run`]), which the `audit` command and
//! `serve --background-audit` share. No command-line types here.

pub mod audit;
pub mod list;
pub mod ownership;
pub mod progress;
pub mod report;

use std::path::Path;

pub use audit::{AuditOptions, run, run_with_progress};
pub use list::FailureReason;
pub use progress::{Progress, Silent};
pub use report::{AuditError, AuditReport, AuditedObject, Summary};

/// A client for the cluster named by `kubeconfig` and `context`, or the
/// usual inference (`$KUBECONFIG`, `~/.kube/config`, in-cluster).
pub async fn connect(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<kube::Client, String> {
    // The one crypto provider this program uses; a second install is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("kubeconfig {}: {}", path.display(), crate::error::chain(&e)))?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| format!("kubeconfig {}: {}", path.display(), crate::error::chain(&e)))?
        }
        None if context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| format!("kubeconfig: {}", crate::error::chain(&e)))?,
        None => kube::Config::infer().await.map_err(|e| {
            format!(
                "no cluster configuration found (kubeconfig or in-cluster): {}",
                crate::error::chain(&e)
            )
        })?,
    };
    kube::Client::try_from(config)
        .map_err(|e| format!("cannot build the Kubernetes client: {}", crate::error::chain(&e)))
}
