//! `entrypoint-guard audit`: the command-line front end of the cluster audit
//! ([`crate::cluster::audit`]): arguments, the resolver, and the report in
//! the chosen format.

pub mod command;
pub mod output;

pub use command::AuditArgs;
pub use output::OutputFormat;
