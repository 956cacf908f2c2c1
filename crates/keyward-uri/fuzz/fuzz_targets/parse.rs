//! Fuzz target: any input either is refused or parses to a URI whose canonical text parses
//! back to an equal URI and formats to the same text again.

#![no_main]

use keyward_uri::Pkcs11Uri;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Invalid UTF-8 becomes U+FFFD, so every input reaches the parser.
    let text = String::from_utf8_lossy(data);
    let Ok(uri) = text.parse::<Pkcs11Uri>() else {
        return;
    };
    let canonical = uri.to_string();
    let again = match canonical.parse::<Pkcs11Uri>() {
        Ok(again) => again,
        Err(e) => panic!("canonical form {canonical:?} of {text:?} refused: {e}"),
    };
    assert_eq!(again, uri, "{text:?} -> {canonical:?}");
    assert_eq!(again.to_string(), canonical);
});
