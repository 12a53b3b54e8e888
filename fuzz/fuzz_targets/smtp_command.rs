//! The SMTP command parser and session on any input: `postwire_fuzz::smtp_command`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| postwire_fuzz::smtp_command(data));
