//! Image reference parsing: never panics, and what it accepts round-trips.
#![no_main]

use entrypoint_guard::image::Reference;
use libfuzzer_sys::fuzz_target;

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(reference) = Reference::parse(text) else { return };
    assert_eq!(reference.original(), text);
    // The canonical form names the same image.
    let canonical = Reference::parse(&reference.canonical()).expect("the canonical form parses");
    assert_eq!(canonical.registry(), reference.registry());
    assert_eq!(canonical.repository(), reference.repository());
    assert_eq!(canonical.tag(), reference.tag());
    assert_eq!(canonical.digest(), reference.digest());
    if reference.digest().is_none() {
        for keep_tag in [true, false] {
            let pinned = Reference::parse(&reference.pinned(DIGEST, keep_tag)).expect("a pinned reference parses");
            assert_eq!(pinned.digest(), Some(DIGEST));
            assert_eq!(pinned.repository(), reference.repository());
            assert_eq!(pinned.tag(), if keep_tag { reference.tag() } else { None });
        }
    }
});
