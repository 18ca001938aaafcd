//! A live cluster: connecting to its API server (one place for `audit` and
//! `serve`), listing every kind of the policy's table page by page (custom
//! kinds where discovery finds them served), and the audit of
//! what it holds ([`audit::run`]), which the `audit` command and
//! `serve --background-audit` share. No command-line types here.

pub(crate) mod audit;
pub(crate) mod kinds;
pub(crate) mod list;
pub(crate) mod progress;
pub(crate) mod report;
pub mod reports;

use std::path::{Path, PathBuf};

pub use audit::{AuditOptions, run, run_with_progress};
pub use list::FailureReason;
pub use progress::{Progress, Silent};
pub use report::{AuditError, AuditReport, AuditedObject, ObjectRef, Summary};

/// Why no client for the cluster could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The kubeconfig file named on the command line cannot be used.
    #[error("kubeconfig {}: {}", path.display(), crate::error::chain(.source))]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: kube::config::KubeconfigError,
    },
    /// The kubeconfig found the usual way (`$KUBECONFIG`, `~/.kube/config`)
    /// has no usable context of that name.
    #[error("kubeconfig: {}", crate::error::chain(.0))]
    Context(#[source] kube::config::KubeconfigError),
    /// Neither a kubeconfig nor the in-cluster service account was found.
    #[error("no cluster configuration found (kubeconfig or in-cluster): {}", crate::error::chain(.0))]
    NotFound(#[source] kube::config::InferConfigError),
    /// The configuration was found but no client could be built from it.
    #[error("cannot build the Kubernetes client: {}", crate::error::chain(.0))]
    Client(#[source] kube::Error),
}

/// A client for the cluster named by `kubeconfig` and `context`, or the
/// usual inference (`$KUBECONFIG`, `~/.kube/config`, in-cluster).
pub async fn connect(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<kube::Client, ConnectError> {
    // The one crypto provider this program uses; a second install is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let file = |source| ConnectError::File {
                path: path.to_path_buf(),
                source,
            };
            let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(file)?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(file)?
        }
        None if context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(ConnectError::Context)?,
        None => kube::Config::infer().await.map_err(ConnectError::NotFound)?,
    };
    kube::Client::try_from(config).map_err(ConnectError::Client)
}
