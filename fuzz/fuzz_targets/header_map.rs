//! Credential extraction: arbitrary header maps through `ApiKeyService`, checked against
//! a model of the documented contract. The oracle is in `src/lib.rs`, shared with the
//! crate's tests.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keygate_fuzz::header_map(data));
