//! `examples/admission_cost.rs` with mimalloc as the global allocator, as
//! the `entrypoint-guard` binary has it: the allocator's share of one admission.
//!
//! `cargo run --release --example admission_cost_mimalloc -- REVIEW.json [FACTS.yaml] [ITERATIONS]`

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "admission_cost.rs"]
mod cost;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    cost::main()
}
