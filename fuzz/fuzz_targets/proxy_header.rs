//! Fuzzes the PROXY protocol parser: no input may panic, a header never takes more
//! bytes than were given or than the bounds allow, and any prefix of a complete
//! header is incomplete or the same refusal, never a different header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tremolo_core::proxy::{parse, Accept, MAX_V1, MAX_V2};

fuzz_target!(|data: &[u8]| {
    for accept in [Accept::V1, Accept::V2, Accept::Any] {
        if let Ok(Some((_, used))) = parse(data, accept) {
            assert!(used <= data.len() && used <= MAX_V1.max(MAX_V2));
            for i in 0..used {
                assert!(!matches!(parse(&data[..i], accept), Ok(Some(_))), "prefix {i}");
            }
        }
    }
});
