//! Replays every input under `fuzz/regressions/` through the fuzz oracles, so what the
//! fuzzers found (and the seeds they start from) is checked on every `cargo test`.
//!
//! A crash found by `cargo fuzz run <target>` is fixed, then its input is copied into
//! `fuzz/regressions/<target>/` under a name that says what it exercises.

#[path = "../fuzz/src/lib.rs"]
mod oracles;

use std::path::PathBuf;

/// Every file of `fuzz/regressions/<target>/`, with its name.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    inputs.sort();
    inputs
}

/// Runs `oracle` on each input and names the input that broke it.
fn replay(target: &str, oracle: fn(&[u8])) -> usize {
    let inputs = inputs(target);
    for (name, data) in &inputs {
        let outcome = std::panic::catch_unwind(|| oracle(data));
        assert!(outcome.is_ok(), "{target}: regression input {name} fails");
    }
    inputs.len()
}

#[test]
fn key_format_regressions_hold() {
    let replayed = replay("key_format", oracles::key_format);
    assert!(
        replayed >= 5,
        "only {replayed} inputs: the corpus is missing"
    );
}

#[test]
fn header_map_regressions_hold() {
    let replayed = replay("header_map", oracles::header_map);
    assert!(
        replayed >= 9,
        "only {replayed} inputs: the corpus is missing"
    );
}

#[test]
fn decoder_splices_the_valid_key_into_a_bearer_header() {
    // Guards the seeds: if the decoder's layout changed, they would silently stop
    // reaching the handler.
    let entries = oracles::decode_headers(&[3 << 3, 0]);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, "authorization");
    assert_eq!(
        entries[0].1,
        format!("Bearer {}", oracles::KEY).into_bytes()
    );
}
