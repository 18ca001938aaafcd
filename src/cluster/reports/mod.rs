//! PolicyReports: the audit's findings where Policy Reporter, Rancher and
//! other report readers look. `openreports.io/v1alpha1` Reports when the API
//! server serves that API, else `wgpolicyk8s.io/v1alpha2` PolicyReports,
//! else none (discovery decides each time, so installing a CRD later works).
//!
//! One report per namespace, named `entrypoint-guard`, owned by its
//! Namespace (deleting the namespace deletes it), applied whole with
//! server-side apply so results that went away are dropped; a namespace
//! left without results has its report deleted. [`build`] is pure (the
//! report from the audit's findings); [`writer`] talks to the API server.

pub mod build;
pub mod writer;

pub use build::{NAME, OPEN_REPORTS, ReportApi, WG_POLICY};
pub use writer::{Written, discover, write};

/// Why reports could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportsError {
    /// The discovery documents could not be read.
    #[error("report API discovery: {}", crate::error::chain(.0))]
    Discovery(#[source] kube::Error),
    /// The audit could not list everything: reports applied whole would
    /// drop results, so none are written this time.
    #[error("the audit could not list everything ({0} errors): reports left as they are")]
    Incomplete(usize),
    /// A request could not be built.
    #[error("cannot build the report request: {0}")]
    Build(String),
    /// A Namespace could not be read (for its uid).
    #[error("namespace {namespace}: {}", crate::error::chain(.source))]
    Namespace {
        /// The namespace.
        namespace: String,
        /// Why.
        source: kube::Error,
    },
    /// A report could not be applied.
    #[error("applying the report of namespace {namespace}: {}", crate::error::chain(.source))]
    Apply {
        /// The namespace (empty: the cluster report).
        namespace: String,
        /// Why.
        source: kube::Error,
    },
    /// The existing reports could not be listed.
    #[error("listing the existing reports: {}", crate::error::chain(.0))]
    List(#[source] kube::Error),
    /// A stale report could not be deleted.
    #[error("deleting the report of namespace {namespace}: {}", crate::error::chain(.source))]
    Delete {
        /// The namespace.
        namespace: String,
        /// Why.
        source: kube::Error,
    },
}
