//! `review --write` through the library: the fixture facts, a reviewer,
//! and the edit planned for a text.

#![allow(dead_code)] // each test crate uses its own part of these helpers

use std::path::PathBuf;

use entrypoint_guard::config::{self, Config};
use entrypoint_guard::image::OfflineResolver;
use entrypoint_guard::review::write::{self, FileEdit};
use entrypoint_guard::review::{FileReview, Reviewer, Source};

/// `tests/fixtures/review-write/NAME`.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/review-write")
        .join(name)
}

/// The text of a fixture.
pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A reviewer with the default configuration and the fixture image facts.
pub fn reviewer() -> Reviewer {
    let config = Config::default();
    let entries = config::load_image_facts(&fixture_path("images.yaml")).expect("the fixture facts load");
    Reviewer::new(config.policy(), OfflineResolver::new(config::facts_from(&entries)))
}

/// Reviews `text` as the file `name` (`.json`: one JSON document); no problems allowed.
pub fn review(name: &str, text: &str) -> FileReview {
    let source = Source {
        name: name.to_string(),
        text: text.to_string(),
        json: name.ends_with(".json"),
    };
    let mut problems = Vec::new();
    let file = reviewer().review(&source, &mut problems);
    assert!(problems.is_empty(), "{name}: {problems:?}");
    file
}

/// The fixes of `text` written into it.
pub fn plan(name: &str, text: &str, annotate: bool) -> (FileReview, FileEdit) {
    let file = review(name, text);
    let edit = write::plan(&file, annotate);
    (file, edit)
}
