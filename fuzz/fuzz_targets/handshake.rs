//! Guards the handshake decoders against panics on hostile bytes, and against records that
//! change when re-encoded and decoded again.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zookeeper_core::proto::wire::{ConnectRequest, ConnectResponse};

fuzz_target!(|payload: &[u8]| {
    if let Ok(request) = ConnectRequest::decode(payload) {
        let encoded = request.encode_frame();
        assert_eq!(ConnectRequest::decode(&encoded[4..]), Ok(request));
    }
    if let Ok(response) = ConnectResponse::decode(payload) {
        let encoded = response.encode_frame();
        assert_eq!(ConnectResponse::decode(&encoded[4..]), Ok(response));
    }
});
