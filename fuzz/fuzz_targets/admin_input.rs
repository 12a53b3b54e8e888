//! What the admin API and the CLI parse from any input: `postwire_fuzz::admin_input`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| postwire_fuzz::admin_input(data));
