//! `admission::Intake` (what `serve` reads bodies with) gives exactly what a
//! fresh decode gives — the same uid and prepared request, or the same
//! error — for the bodies it remembers, for the same bodies with other
//! uids (recalled, not decoded), and for those bodies with any one byte
//! changed, anywhere, to any byte that matters to JSON.

use std::sync::Arc;

use entrypoint_guard::admission::{
    DecodeError, Intake, Memo, Prepared, RECALL_MAX_BODY_BYTES, RECALL_MAX_PER_LENGTH, Read, Schema,
    decode_lean_spanned,
};
use entrypoint_guard::engine::{Kinds, Policy};

use super::support::{FIXTURES, fixtures};

/// A fresh decode of `body`, made ready as the intake makes it.
fn fresh(body: &[u8], schema: &Arc<Schema>, policy: &Policy, memo: &Memo) -> Result<(String, Prepared), DecodeError> {
    decode_lean_spanned(body, schema).map(|(request, _)| {
        let uid = request.uid.clone();
        (uid, Prepared::new(request, policy, memo))
    })
}

fn same(got: &Result<Read, DecodeError>, wanted: &Result<(String, Prepared), DecodeError>, what: &str) {
    match (got, wanted) {
        (Ok(got), Ok((wanted_uid, wanted))) => {
            assert_eq!(got.uid, *wanted_uid, "{what}: the uid");
            assert_eq!(*got.prepared, *wanted, "{what}: the prepared request");
        }
        (Err(got), Err(wanted)) => assert_eq!(got, wanted, "{what}: the error"),
        (got, wanted) => panic!("{what}: the intake gives {got:?}, a fresh decode {wanted:?}"),
    }
}

/// Bytes that change what JSON means where they land.
const BYTES: [u8; 10] = [b'"', b'\\', b'{', b'}', b',', b':', b' ', b'0', 0x01, 0xff];

/// Reads `body` into an intake, then other-uid and one-byte variants of it,
/// each compared with a fresh decode; every `step`-th byte is changed (and
/// every byte around the uid). Returns how many variants were recalled.
pub(crate) fn same_when_recalled(body: &[u8], kinds: &Kinds, step: usize) -> usize {
    let policy = Policy {
        kinds: kinds.clone(),
        ..Policy::default()
    };
    let schema = Arc::new(Schema::of(kinds));
    let memo = Memo::new(8);
    let intake = Intake::new(Arc::clone(&schema), 8);
    let first = intake.read(body, &policy, &memo);
    same(&first, &fresh(body, &schema, &policy, &memo), "the body itself");
    let Ok(Read { prepared: first, .. }) = first else {
        return 0;
    };
    let spans = decode_lean_spanned(body, &schema).unwrap().1;
    assert_eq!(
        intake.remembered(),
        usize::from(spans.is_some()),
        "remembered iff its uid is plain"
    );
    let mut recalled = 0;
    // Whether the intake recalled a decode for `variant`: the first body's,
    // or that of a variant read before it (one that decoded, with a plain
    // uid of its own, is remembered too).
    let check = |variant: &[u8], what: &str| {
        let got = intake.read(variant, &policy, &memo);
        same(&got, &fresh(variant, &schema, &policy, &memo), what);
        matches!(&got, Ok(read) if read.recalled)
    };
    let first_recalled = |variant: &[u8]| {
        let read = intake.read(variant, &policy, &memo).unwrap();
        read.recalled && Arc::ptr_eq(&read.prepared, &first)
    };
    let uid = spans.map(|s| s.uid());
    if let Some(uid) = uid.clone() {
        // Other plain uids of the same length: recalled.
        for fill in [b'0', b'z', b'-', b' ', b'~'] {
            let mut variant = body.to_vec();
            variant[uid.clone()].fill(fill);
            let what = format!("uid of {:?}", fill as char);
            assert!(
                check(&variant, &what),
                "{what}: a plain uid of the same length is recalled"
            );
            assert!(first_recalled(&variant), "{what}: from the first body");
            recalled += 1;
        }
        // Longer and shorter: decoded.
        for variant in [
            [&body[..uid.start], b"x", &body[uid.start..]].concat(),
            [&body[..uid.start], &body[uid.start + 1..]].concat(),
        ] {
            recalled += usize::from(check(&variant, "a uid of another length"));
        }
    }
    let around = uid.map_or(0..0, |u| u.start.saturating_sub(3)..(u.end + 3).min(body.len()));
    let positions = (0..body.len()).step_by(step.max(1)).chain(around);
    for at in positions {
        for byte in BYTES {
            if body[at] == byte {
                continue;
            }
            let mut variant = body.to_vec();
            variant[at] = byte;
            recalled += usize::from(check(&variant, &format!("byte {at} set to {byte:#04x}")));
        }
    }
    recalled
}

#[test]
fn every_fixture_is_recalled_exactly() {
    for (name, body) in fixtures() {
        let recalled = same_when_recalled(&body, &Kinds::builtin(), 37);
        assert!(recalled >= 5, "{name}: other uids recalled ({recalled})");
        eprintln!("{name}: {recalled} variants recalled, the rest decoded, all alike");
    }
}

#[test]
fn an_escaped_uid_is_never_remembered() {
    let body = std::fs::read_to_string(format!("{FIXTURES}/pod-create.json")).unwrap();
    let uid = "b2b3dca4-1ed8-47f9-b4de-5d0db1224a06";
    let escaped = body.replacen(
        &format!("\"{uid}\""),
        "\"\\u0062\\u0032b3dca4-1ed8-47f9-b4de-5d0db1224a06\"",
        1,
    );
    assert_ne!(body, escaped);
    assert_eq!(same_when_recalled(escaped.as_bytes(), &Kinds::builtin(), 97), 0);
}

/// Two Pods of one ReplicaSet as an API server sends them: another uid,
/// another projected token volume name (`kube-api-access-` and five random
/// characters, in `volumes` and each `volumeMounts`), another second in
/// the managed fields. Recalled, and alike to a fresh decode.
#[test]
fn the_pods_of_one_replicaset_are_recalled() {
    let body = std::fs::read_to_string(format!("{FIXTURES}/pod-create-owned-by-replicaset.json")).unwrap();
    let request = decode_lean_spanned(body.as_bytes(), &Schema::builtin()).unwrap().0;
    let volume = body
        .find("kube-api-access-")
        .map(|at| &body[at..at + "kube-api-access-".len() + 5])
        .unwrap();
    let time = body.find("\"time\": \"").map(|at| &body[at + 9..at + 9 + 20]).unwrap();
    assert!(time.ends_with('Z'), "{time}");
    let sibling = body
        .replace(&request.uid, "0f4e2b6a-7c1d-4e55-9a3b-2d8c6f1e0b97")
        .replace(volume, "kube-api-access-q7x2m")
        .replace(time, "2026-12-02T04:08:14Z");
    assert_eq!(sibling.len(), body.len());
    let policy = Policy::default();
    let memo = Memo::new(8);
    let intake = Intake::new(Schema::builtin(), 8);
    assert!(!intake.read(body.as_bytes(), &policy, &memo).unwrap().recalled);
    let read = intake.read(sibling.as_bytes(), &policy, &memo);
    same(
        &read,
        &fresh(sibling.as_bytes(), &Schema::builtin(), &policy, &memo),
        "a sibling Pod",
    );
    let read = read.unwrap();
    assert!(read.recalled, "a sibling Pod is recalled");
    assert_eq!(read.uid, "0f4e2b6a-7c1d-4e55-9a3b-2d8c6f1e0b97");
    // Its image changed (a kept string): decoded.
    let other_image = sibling.replacen("registry.example/", "registry.exampl3/", 1);
    assert!(!intake.read(other_image.as_bytes(), &policy, &memo).unwrap().recalled);
}

#[test]
fn the_recall_is_bounded() {
    let policy = Policy::default();
    let memo = Memo::new(8);
    let body = std::fs::read(format!("{FIXTURES}/pod-create.json")).unwrap();
    let uid_at = body.windows(5).position(|w| w == b"\"uid\"").unwrap() + 8;
    // A body over the size kept is decoded every time.
    let padding = " ".repeat(RECALL_MAX_BODY_BYTES);
    let end = body.iter().rposition(|&b| b == b'}').unwrap();
    let big = [&body[..end], padding.as_bytes(), b"}"].concat();
    let intake = Intake::new(Schema::builtin(), 8);
    intake.read(&big, &policy, &memo).unwrap();
    assert_eq!(intake.remembered(), 0);
    // At most `capacity` bodies: the next starts over.
    let intake = Intake::new(Schema::builtin(), 3);
    let names: Vec<Vec<u8>> = (0..4)
        .map(|i| {
            let text = String::from_utf8(body.clone()).unwrap();
            text.replacen("\"app-pod\"", &format!("\"app-po{i}\""), 1).into_bytes()
        })
        .collect();
    for (i, body) in names.iter().enumerate() {
        intake.read(body, &policy, &memo).unwrap();
        assert_eq!(intake.remembered(), [1, 2, 3, 1][i]);
    }
    // At most RECALL_MAX_PER_LENGTH bodies of one length: the oldest goes.
    let intake = Intake::new(Schema::builtin(), 64);
    let names: Vec<Vec<u8>> = (0..=RECALL_MAX_PER_LENGTH)
        .map(|i| {
            let text = String::from_utf8(body.clone()).unwrap();
            text.replace("\"app-pod\"", &format!("\"app-po{i}\"")).into_bytes()
        })
        .collect();
    for body in &names {
        assert!(!intake.read(body, &policy, &memo).unwrap().recalled);
    }
    assert_eq!(intake.remembered(), RECALL_MAX_PER_LENGTH);
    let again = |body: &Vec<u8>| {
        let mut body = body.clone();
        body[uid_at] = b'z';
        intake.read(&body, &policy, &memo).unwrap().recalled
    };
    assert!(!again(&names[0]), "the oldest of one length is gone");
    assert!(again(&names[RECALL_MAX_PER_LENGTH]), "the newest is kept");
    // Nothing at all with a capacity of 0.
    let intake = Intake::new(Schema::builtin(), 0);
    intake.read(&body, &policy, &memo).unwrap();
    assert_eq!(intake.remembered(), 0);
}
