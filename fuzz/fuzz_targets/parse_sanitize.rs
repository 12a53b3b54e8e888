//! Parse + sanitise any bytes: must never panic, and the payload must serialise.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (message, limits) = postwire_stages::parse::parse(data);
    let json = serde_json::to_vec(&message).expect("a message serialises");
    assert!(!json.is_empty());
    if let Some(html) = &message.html {
        assert!(!html.to_ascii_lowercase().contains("<script"), "sanitised HTML has a script");
    }
    let _ = limits;
});
