//! Generated reviews, of the built-in kinds and of custom kinds: the same
//! answer from both decodes, and the same request from the intake (fresh,
//! recalled, or with a byte changed).

use entrypoint_guard::engine::Kinds;
use proptest::prelude::*;

use super::generators::*;
use super::support::*;

#[test]
fn generated_objects_get_the_same_answer() {
    generated_get_the_same_answer(review, 512, Kinds::builtin());
}

/// `cases` reviews from the strategy `reviews` makes get the same answer
/// from both decodes under `kinds`; most of them reach the engine (the rest
/// are refused or skipped alike).
fn generated_get_the_same_answer<S: Strategy<Value = Vec<u8>> + 'static>(reviews: fn() -> S, cases: u32, kinds: Kinds) {
    // The nested generators need more stack than a test thread has in debug builds.
    let run = move || {
        let reviews = reviews();
        let inspected = std::cell::Cell::new(0);
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases,
            ..ProptestConfig::default()
        });
        runner
            .run(&(reviews, 0usize..7), |(body, seed)| {
                if same_answer_for(&body, seed, &kinds) > 0 {
                    inspected.set(inspected.get() + 1);
                }
                // A few changed bytes each: the fixtures change many.
                super::recall::same_when_recalled(&body, &kinds, body.len() / 6 + 1);
                Ok(())
            })
            .unwrap();
        assert!(
            inspected.get() > cases / 2,
            "only {} of {cases} reviews were inspected",
            inspected.get()
        );
    };
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(run)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn generated_objects_of_custom_kinds_get_the_same_answer() {
    generated_get_the_same_answer(custom_review, 256, custom_kinds());
}
