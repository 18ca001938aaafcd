//! The fault-injecting registry stand-in of `tests/support/faults.rs` as a
//! process, for `scripts/reliability/faults.sh`: a TCP proxy in front of a
//! real registry whose fault is switched with `curl http://ADDR/__fault/NAME`
//! (pass, stall, 500, garbage, 401, drop; `/__fault/stats` counts connections).
//!
//! `cargo run --example fault_registry -- 127.0.0.1:15001 127.0.0.1:15000`

#[path = "../tests/support/faults.rs"]
mod faults;

use std::net::SocketAddr;

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: fault_registry LISTEN_ADDR UPSTREAM_ADDR";
    let listen: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let upstream: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let registry = faults::FaultRegistry::start(listen, upstream).await?;
    println!("fault registry on {} in front of {upstream}", registry.addr);
    tokio::signal::ctrl_c().await?;
    Ok(())
}
