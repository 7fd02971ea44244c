//! Every frame decodes back to itself; damaged frames decode stably or not at all.

use super::*;

proptest! {
    #[test]
    fn request_frames_round_trip(frame in any_frame()) {
        let encoded = encode_request(&frame);
        prop_assert_eq!(decode_request(payload(&encoded)), Ok(frame));
    }

    /// What the fuzz target checks, from frames cut short or with bytes overwritten: whatever
    /// decodes re-encodes to itself.
    #[test]
    fn damaged_frames_decode_stably(
        frame in any_frame(),
        cut in any::<Index>(),
        overwrites in vec((any::<Index>(), any::<u8>()), 0..4),
    ) {
        let mut bytes = encode_request(&frame)[4..].to_vec();
        for (at, byte) in overwrites {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        if let Ok(decoded) = decode_request(&bytes) {
            assert_stable(&decoded)?;
        }
    }

    #[test]
    fn arbitrary_bytes_decode_stably(bytes in vec(any::<u8>(), 0..96)) {
        if let Ok(decoded) = decode_request(&bytes) {
            assert_stable(&decoded)?;
        }
    }

    #[test]
    fn connect_request_round_trips(
        protocol_version in any::<i32>(),
        last_zxid_seen in any::<i64>(),
        timeout_ms in any::<i32>(),
        session_id in any::<i64>(),
        password in vec(any::<u8>(), 0..20),
        read_only in proptest::option::of(any::<bool>()),
    ) {
        let request = ConnectRequest {
            protocol_version,
            last_zxid_seen,
            timeout_ms,
            session_id,
            password,
            read_only,
        };
        let frame = request.encode_frame();
        // int, long, int, long, buffer, then the readOnly byte only when present.
        let expected_len =
            4 + 4 + 8 + 4 + 8 + 4 + request.password.len() + usize::from(read_only.is_some());
        prop_assert_eq!(frame.len(), expected_len);
        prop_assert_eq!(ConnectRequest::decode(payload(&frame)), Ok(request));
    }

    #[test]
    fn connect_response_round_trips(
        protocol_version in any::<i32>(),
        timeout_ms in any::<i32>(),
        session_id in any::<i64>(),
        password in vec(any::<u8>(), 0..20),
        read_only in proptest::option::of(any::<bool>()),
    ) {
        let response = ConnectResponse {
            protocol_version,
            timeout_ms,
            session_id,
            password,
            read_only,
        };
        let frame = response.encode_frame();
        let expected_len =
            4 + 4 + 4 + 8 + 4 + response.password.len() + usize::from(read_only.is_some());
        prop_assert_eq!(frame.len(), expected_len);
        prop_assert_eq!(ConnectResponse::decode(payload(&frame)), Ok(response));
    }

    #[test]
    fn get_data_replies_carry_buffer_then_stat(data in proptest::option::of(bytes()), stat in any_stat()) {
        let frame = request(3, OpCode::GetData, Op::GetData { path: "/a".into(), watch: false });
        let reply = encode_reply(&frame, &Response { zxid: 9, result: Ok(Reply::Data { data: data.clone(), stat }) });
        let mut reader = JuteReader::new(payload(&reply));
        prop_assert_eq!((reader.i32().unwrap(), reader.i64().unwrap(), reader.i32().unwrap()), (3, 9, 0));
        prop_assert_eq!(reader.buffer_or_null().unwrap(), data);
        prop_assert_eq!(reader.stat().unwrap(), stat);
        prop_assert!(reader.finish().is_ok());
    }
}
