//! Guards the request decoder against panics on hostile bytes, and against frames that change
//! when re-encoded and decoded again (a server and a future client would then disagree).

#![no_main]

use libfuzzer_sys::fuzz_target;
use zookeeper_core::proto::wire::{decode_request, encode_request};

fuzz_target!(|payload: &[u8]| {
    // Err means even the header is unreadable; the server closes the connection.
    let Ok(frame) = decode_request(payload) else {
        return;
    };
    let encoded = encode_request(&frame);
    let length = i32::from_be_bytes(encoded[..4].try_into().expect("a length prefix"));
    assert_eq!(length as usize, encoded.len() - 4, "length prefix");
    let again = decode_request(&encoded[4..]).expect("a re-encoded frame decodes");
    assert_eq!(again, frame, "decode(encode(frame)) changed the frame");
    assert_eq!(encode_request(&again), encoded, "re-encoding is not stable");
});
