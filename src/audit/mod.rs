//! `entrypoint-guard audit`: the command-line front end of the cluster audit
//! (`crate::cluster::audit`): arguments, the resolver, and the report in
//! the chosen format.

pub(crate) mod command;
pub(crate) mod output;

pub use command::AuditArgs;
pub use output::OutputFormat;
