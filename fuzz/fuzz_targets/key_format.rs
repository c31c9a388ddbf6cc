//! Key parsing: `KeyFormat::check`, `ApiKey::parse` and `KeyFormat::with_prefix` on
//! arbitrary input. The oracle is in `src/lib.rs`, shared with the crate's tests.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keygate_fuzz::key_format(data));
