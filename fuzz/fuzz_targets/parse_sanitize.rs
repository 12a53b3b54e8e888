//! Parse + sanitise any bytes: `postwire_fuzz::parse_sanitize`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| postwire_fuzz::parse_sanitize(data));
