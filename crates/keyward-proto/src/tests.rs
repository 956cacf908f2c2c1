//! Tests: every call and answer through the codec and over a socket, framing faults, lost
//! connections, overlapping calls, and a real engine driven over the wire.

use cryptoki_sys::*;
use keyward_core::types::*;
use zeroize::Zeroizing;

use crate::wire::Bytes;

/// A representative value of each wire type, for the generated per-variant tests.
pub(crate) trait Sample {
    fn sample() -> Self;
}

impl Sample for () {
    fn sample() {}
}
impl Sample for bool {
    fn sample() -> bool {
        true
    }
}
impl Sample for CK_ULONG {
    fn sample() -> CK_ULONG {
        0x8000_0001
    }
}
impl Sample for usize {
    fn sample() -> usize {
        300
    }
}
impl Sample for Option<usize> {
    fn sample() -> Option<usize> {
        Some(4096)
    }
}
impl Sample for [u8; 32] {
    fn sample() -> [u8; 32] {
        *b"label with blanks               "
    }
}
impl Sample for Bytes {
    fn sample() -> Bytes {
        Bytes::from(&b"\x00\x01secret\xff"[..])
    }
}
impl Sample for Option<Bytes> {
    fn sample() -> Option<Bytes> {
        Some(Bytes::sample())
    }
}
impl Sample for Vec<u8> {
    fn sample() -> Vec<u8> {
        vec![7; 40]
    }
}
impl Sample for Zeroizing<Vec<u8>> {
    fn sample() -> Zeroizing<Vec<u8>> {
        Zeroizing::new(vec![0xa5; 33])
    }
}
impl Sample for Vec<CK_ULONG> {
    fn sample() -> Vec<CK_ULONG> {
        vec![1, CKM_ECDSA, CK_ULONG::MAX]
    }
}
impl Sample for (CK_ULONG, CK_ULONG) {
    fn sample() -> (CK_ULONG, CK_ULONG) {
        (0x11, 0x12)
    }
}
impl Sample for Vec<Attribute> {
    fn sample() -> Vec<Attribute> {
        vec![
            Attribute::bool(CKA_TOKEN, true),
            Attribute::ulong(CKA_CLASS, CKO_SECRET_KEY),
            Attribute::bytes(CKA_VALUE, vec![1, 2, 3]),
            Attribute {
                ty: CKA_WRAP_TEMPLATE,
                value: AttrValue::Template(vec![
                    Attribute::bool(CKA_SENSITIVE, false),
                    Attribute {
                        ty: CKA_DERIVE_TEMPLATE,
                        value: AttrValue::Template(vec![Attribute::bytes(CKA_LABEL, "x")]),
                    },
                ]),
            },
            Attribute {
                ty: CKA_ALLOWED_MECHANISMS,
                value: AttrValue::Mechanisms(vec![CKM_AES_GCM, CKM_SHA256_HMAC]),
            },
        ]
    }
}
impl Sample for Vec<AttrResult> {
    fn sample() -> Vec<AttrResult> {
        vec![
            AttrResult::Value(AttrValue::bytes(vec![9; 20])),
            AttrResult::Sensitive,
            AttrResult::Invalid,
            AttrResult::Value(AttrValue::Ulong(CKK_EC)),
        ]
    }
}
impl Sample for Mechanism {
    fn sample() -> Mechanism {
        Mechanism {
            mech: CKM_AES_GCM,
            params: MechParams::Gcm {
                iv: vec![1; 12],
                iv_bits: 96,
                aad: b"header".to_vec(),
                tag_bits: 128,
            },
        }
    }
}
impl Sample for MechParams {
    fn sample() -> MechParams {
        MechParams::AeadMessage {
            iv: vec![0; 12],
            iv_fixed_bits: 32,
            generator: CKG_GENERATE_COUNTER,
            tag: vec![0; 16],
            data_len: 0,
        }
    }
}
impl Sample for Output {
    fn sample() -> Output {
        Output::Data(Zeroizing::new(b"ciphertext".to_vec()))
    }
}
impl Sample for SlotInfo {
    fn sample() -> SlotInfo {
        SlotInfo {
            description: "slot".into(),
            manufacturer: "keyward".into(),
            flags: CKF_TOKEN_PRESENT,
            hardware_version: (1, 2),
            firmware_version: (3, 4),
        }
    }
}
impl Sample for TokenInfo {
    fn sample() -> TokenInfo {
        TokenInfo {
            label: "token".into(),
            manufacturer: "keyward".into(),
            model: "soft".into(),
            serial: "0123456789abcdef".into(),
            flags: CKF_TOKEN_INITIALIZED | CKF_RNG,
            max_session_count: CK_EFFECTIVELY_INFINITE,
            session_count: 1,
            max_rw_session_count: CK_EFFECTIVELY_INFINITE,
            rw_session_count: 0,
            max_pin_len: 256,
            min_pin_len: 4,
            total_public_memory: CK_UNAVAILABLE_INFORMATION,
            free_public_memory: CK_UNAVAILABLE_INFORMATION,
            total_private_memory: CK_UNAVAILABLE_INFORMATION,
            free_private_memory: CK_UNAVAILABLE_INFORMATION,
            hardware_version: (0, 1),
            firmware_version: (0, 1),
            utc_time: "2025010112000000".into(),
        }
    }
}
impl Sample for SessionInfo {
    fn sample() -> SessionInfo {
        SessionInfo {
            slot: 3,
            state: CKS_RW_USER_FUNCTIONS,
            flags: CKF_RW_SESSION | CKF_SERIAL_SESSION,
            device_error: 0,
        }
    }
}
impl Sample for MechanismInfo {
    fn sample() -> MechanismInfo {
        MechanismInfo {
            min_key_size: 256,
            max_key_size: 521,
            flags: CKF_SIGN | CKF_VERIFY | CKF_EC_F_P,
        }
    }
}

/// What the fake API writes into in/out parameters: different from the sample it receives.
pub(crate) fn changed_params() -> MechParams {
    MechParams::AeadMessage {
        iv: vec![0xee; 12],
        iv_fixed_bits: 32,
        generator: CKG_GENERATE_COUNTER,
        tag: vec![0x77; 16],
        data_len: 0,
    }
}

mod wire_level {
    use super::*;
    use crate::calls::fakes::{Hooked, Refuse, sample_answers, sample_calls};
    use crate::{Answer, Call, Request, Response, decode, dispatch, encode};

    #[test]
    fn one_variant_per_api_method() {
        // The compiler already refuses an `impl Api for Remote` that misses a method; this
        // also catches a table row that names a method twice.
        let api = include_str!("../../keyward-core/src/api.rs");
        let methods = api
            .lines()
            .filter(|l| l.trim_start().starts_with("fn "))
            .count();
        let calls = sample_calls();
        assert_eq!(calls.len(), methods);
        let mut names: Vec<&str> = calls.iter().map(Call::name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), methods);
        assert_eq!(sample_answers().len(), methods);
    }

    #[test]
    fn every_call_and_answer_round_trips() {
        for (i, call) in sample_calls().into_iter().enumerate() {
            let name = call.name();
            let req = Request {
                id: u64::MAX - i as u64,
                call,
            };
            let bytes = encode(&req).unwrap();
            let back: Request = decode(&bytes).unwrap();
            assert_eq!(back, req, "{name}");
        }
        let mut answers = sample_answers();
        answers.push(Answer::Failed {
            rv: CKR_PIN_INCORRECT,
            detail: "wrong".into(),
        });
        for (i, answer) in answers.into_iter().enumerate() {
            let name = answer.name();
            let resp = Response {
                id: i as u64,
                answer,
            };
            let back: Response = decode(&encode(&resp).unwrap()).unwrap();
            assert_eq!(back, resp, "{name}");
        }
    }

    #[test]
    fn decoding_is_strict() {
        let req = Request {
            id: 7,
            call: Call::GetSessionInfo { session: 3 },
        };
        let mut bytes = encode(&req).unwrap().to_vec();
        // id 7, then the variant index and the handle as varints.
        assert_eq!(bytes[0], 7);
        bytes.push(0);
        assert!(decode::<Request>(&bytes).is_err(), "trailing byte");
        bytes.truncate(bytes.len() - 2);
        assert!(decode::<Request>(&bytes).is_err(), "short");
        assert!(decode::<Request>(&[1, 0xff, 0x7f]).is_err(), "unknown call");
        assert!(decode::<Response>(&[]).is_err());
    }

    fn nested(depth: usize) -> Vec<Attribute> {
        let mut t = vec![Attribute::bool(CKA_SIGN, true)];
        for _ in 0..depth {
            t = vec![Attribute {
                ty: CKA_WRAP_TEMPLATE,
                value: AttrValue::Template(t),
            }];
        }
        t
    }

    #[test]
    fn template_nesting_is_bounded_when_decoding() {
        let ok = Call::CreateObject {
            session: 1,
            template: nested(8),
        };
        assert_eq!(decode::<Call>(&encode(&ok).unwrap()).unwrap(), ok);
        let deep = Call::CreateObject {
            session: 1,
            template: nested(9),
        };
        assert!(decode::<Call>(&encode(&deep).unwrap()).is_err());
        // A decoding failure part-way leaves no depth behind on this thread.
        assert_eq!(decode::<Call>(&encode(&ok).unwrap()).unwrap(), ok);
    }

    #[test]
    fn secrets_are_not_printed() {
        let call = Call::Login {
            session: 1,
            user: CKU_USER,
            pin: Bytes::from(&b"hunter2"[..]),
        };
        assert_eq!(format!("{call:?}"), "C_Login");
        let answer = Answer::GenerateRandom {
            ret: Zeroizing::new(b"hunter2".to_vec()),
        };
        assert_eq!(format!("{answer:?}"), "C_GenerateRandom");
        assert_eq!(format!("{:?}", Bytes::from(&b"hunter2"[..])), "<7 bytes>");
    }

    #[test]
    fn dispatch_runs_the_named_method() {
        for (call, expected) in sample_calls().into_iter().zip(sample_answers()) {
            let name = call.name();
            assert_eq!(dispatch(&Hooked::echo(), call), expected, "{name}");
        }
        for call in sample_calls() {
            let name = call.name();
            match dispatch(&Refuse, call) {
                Answer::Failed { rv, detail } => {
                    assert_eq!(rv, CKR_PIN_INCORRECT, "{name}");
                    // The method named in the error is the one the C name stands for.
                    let camel: String = detail
                        .split('_')
                        .flat_map(|w| {
                            let mut c = w.chars();
                            c.next()
                                .map(|f| f.to_ascii_uppercase())
                                .into_iter()
                                .chain(c)
                        })
                        .collect();
                    let bare = name.trim_start_matches("C_").to_ascii_lowercase();
                    let named = camel.to_ascii_lowercase();
                    assert!(
                        bare == named || bare == format!("get{named}"),
                        "{name} ran {detail}"
                    );
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}

mod connection {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::sync::{Arc, Condvar, Mutex};
    use std::thread;
    use std::time::{Duration, Instant};

    use keyward_core::Code;
    use keyward_core::api::Api;

    use super::*;
    use crate::calls::fakes::{Hooked, Refuse, sample_answers, sample_calls};
    use crate::{
        Answer, Call, Connection, Hello, HelloReply, MAGIC, MAX_FRAME, PROTOCOL_VERSION, Remote,
        Request, decode, dispatch, encode, read_frame, serve_connection, write_frame,
    };

    /// A daemon end on its own thread; the receiver reports when `serve_connection` returns.
    fn serve(api: Arc<dyn Api>, workers: usize) -> (UnixStream, mpsc::Receiver<bool>) {
        let (client, server) = UnixStream::pair().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let r = serve_connection(server, api, workers);
            let _ = tx.send(r.is_ok());
        });
        (client, rx)
    }

    fn connect(api: Arc<dyn Api>, workers: usize) -> (Remote, mpsc::Receiver<bool>) {
        let (client, done) = serve(api, workers);
        (Remote::new(Connection::from_stream(client).unwrap()), done)
    }

    fn returned(done: &mpsc::Receiver<bool>) -> bool {
        done.recv_timeout(Duration::from_secs(10)) == Ok(true)
    }

    fn send<T: serde::Serialize>(s: &mut UnixStream, msg: &T) {
        write_frame(s, &encode(msg).unwrap()).unwrap();
    }

    fn hello(s: &mut UnixStream) {
        send(
            s,
            &Hello {
                magic: MAGIC,
                version: PROTOCOL_VERSION,
            },
        );
        let reply: HelloReply = decode(&read_frame(s, MAX_FRAME).unwrap()).unwrap();
        assert_eq!(
            reply,
            HelloReply::Welcome {
                version: PROTOCOL_VERSION
            }
        );
    }

    /// The stream is closed by the daemon: nothing more arrives.
    fn closed(s: &mut UnixStream) -> bool {
        let mut b = [0u8; 1];
        matches!(s.read(&mut b), Ok(0) | Err(_))
    }

    #[test]
    fn every_method_over_a_socket() {
        let (remote, done) = connect(Arc::new(Hooked::echo()), 4);
        for (call, expected) in sample_calls().into_iter().zip(sample_answers()) {
            let name = call.name();
            // `remote` is an Api: the call goes through `impl Api for Remote`, over the
            // socket, through `dispatch` in the daemon and back.
            assert_eq!(dispatch(&remote, call), expected, "{name}");
        }
        drop(remote);
        assert!(returned(&done));

        let (remote, done) = connect(Arc::new(Refuse), 1);
        for call in sample_calls() {
            let name = call.name();
            match dispatch(&remote, call) {
                Answer::Failed { rv, detail } => {
                    assert_eq!(rv, CKR_PIN_INCORRECT, "{name}");
                    assert!(!detail.is_empty(), "{name}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        let e = remote.logout(1).unwrap_err();
        assert_eq!(e.code(), Code::PinIncorrect);
        assert_eq!(e.detail(), "logout");
        drop(remote);
        assert!(returned(&done));
    }

    #[test]
    fn in_out_parameters_are_written_back() {
        let (remote, _done) = connect(Arc::new(Hooked::echo()), 1);
        let mut params = MechParams::sample();
        let out = remote
            .encrypt_message(1, &mut params, b"aad", b"plain", None)
            .unwrap();
        assert_eq!(out, Output::sample());
        assert_eq!(params, changed_params());
        let mut params = MechParams::sample();
        remote
            .verify_message_next(1, &mut params, b"part", Some(b"sig"))
            .unwrap();
        assert_eq!(params, changed_params());
    }

    #[test]
    fn oversize_frame_closes_the_connection() {
        let (mut s, done) = serve(Arc::new(Hooked::echo()), 1);
        hello(&mut s);
        s.write_all(&u32::try_from(MAX_FRAME + 1).unwrap().to_be_bytes())
            .unwrap();
        assert!(returned(&done));
        assert!(closed(&mut s));
    }

    #[test]
    fn truncated_frame_closes_the_connection() {
        let (mut s, done) = serve(Arc::new(Hooked::echo()), 1);
        hello(&mut s);
        s.write_all(&100u32.to_be_bytes()).unwrap();
        s.write_all(&[0u8; 10]).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(returned(&done));
        assert!(closed(&mut s));
    }

    #[test]
    fn garbage_payload_closes_the_connection() {
        let (mut s, done) = serve(Arc::new(Hooked::echo()), 1);
        hello(&mut s);
        write_frame(&mut s, &[0x01, 0xff, 0xff, 0xff, 0x0f, 0x99]).unwrap();
        assert!(returned(&done));
        assert!(closed(&mut s));
    }

    /// A CreateObject request whose template nests `levels` deep, encoded by hand (encoding
    /// that many levels recursively would risk the test's own stack): each level is a
    /// one-attribute template [CKA_WRAP_TEMPLATE, AttrValue::Template(..)].
    fn nested_request(levels: usize) -> Vec<u8> {
        let mut level = vec![1u8];
        level.extend(encode(&CKA_WRAP_TEMPLATE).unwrap().iter());
        level.push(3);
        let mut payload = encode(&1u64).unwrap().to_vec(); // request id
        let create = encode(&Call::CreateObject {
            session: 1,
            template: vec![],
        })
        .unwrap();
        // The call's variant index and session, without the empty template's length byte.
        payload.extend_from_slice(&create[..create.len() - 1]);
        for _ in 0..levels {
            payload.extend_from_slice(&level);
        }
        payload.push(0);
        payload
    }

    #[test]
    fn deeply_nested_template_closes_the_connection() {
        // The hand encoding is right: three levels decode.
        let req: Request = decode(&nested_request(3)).unwrap();
        assert!(matches!(req.call, Call::CreateObject { template, .. } if template.len() == 1));

        let (mut s, done) = serve(Arc::new(Hooked::echo()), 1);
        hello(&mut s);
        write_frame(&mut s, &nested_request(100_000)).unwrap();
        assert!(returned(&done));
        assert!(closed(&mut s));
    }

    #[test]
    fn calls_sent_before_a_half_close_are_answered() {
        let (mut s, done) = serve(Arc::new(Hooked::echo()), 2);
        hello(&mut s);
        for id in [5, 6] {
            send(
                &mut s,
                &Request {
                    id,
                    call: Call::GetSessionInfo { session: 1 },
                },
            );
        }
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut ids = Vec::new();
        for _ in 0..2 {
            let resp: crate::Response = decode(&read_frame(&mut s, MAX_FRAME).unwrap()).unwrap();
            assert_eq!(
                resp.answer,
                Answer::GetSessionInfo {
                    ret: SessionInfo::sample()
                }
            );
            ids.push(resp.id);
        }
        ids.sort_unstable();
        assert_eq!(ids, [5, 6]);
        assert!(returned(&done));
        assert!(closed(&mut s));
    }

    #[test]
    fn bad_hellos_are_refused() {
        // Not our protocol: closed without a reply.
        let (mut s, done) = serve(Arc::new(Hooked::echo()), 1);
        send(
            &mut s,
            &Hello {
                magic: *b"HTTP",
                version: PROTOCOL_VERSION,
            },
        );
        assert!(returned(&done));
        assert!(closed(&mut s));

        // Another version: refused with a reason, then closed.
        let (mut s, done) = serve(Arc::new(Hooked::echo()), 1);
        send(
            &mut s,
            &Hello {
                magic: MAGIC,
                version: PROTOCOL_VERSION + 1,
            },
        );
        let reply: HelloReply = decode(&read_frame(&mut s, MAX_FRAME).unwrap()).unwrap();
        assert!(matches!(reply, HelloReply::Refused { reason } if reason.contains("version")));
        assert!(returned(&done));
        assert!(closed(&mut s));

        // A request where the hello belongs.
        let (mut s, done) = serve(Arc::new(Hooked::echo()), 1);
        send(
            &mut s,
            &Request {
                id: 1,
                call: Call::GetSlotList {
                    token_present: true,
                },
            },
        );
        assert!(returned(&done));
        assert!(closed(&mut s));

        // Silence: the hello never comes and the peer hangs up.
        let (s, done) = serve(Arc::new(Hooked::echo()), 1);
        drop(s);
        assert!(returned(&done));
    }

    /// A daemon end that answers the hello with `reply`.
    fn fake_daemon(reply: HelloReply) -> UnixStream {
        let (client, mut server) = UnixStream::pair().unwrap();
        thread::spawn(move || {
            let _ = read_frame(&mut server, MAX_FRAME);
            send(&mut server, &reply);
            let _ = read_frame(&mut server, MAX_FRAME);
        });
        client
    }

    #[test]
    fn client_refuses_a_mismatched_daemon() {
        let e = Connection::from_stream(fake_daemon(HelloReply::Refused {
            reason: "too old".into(),
        }))
        .err()
        .unwrap();
        assert_eq!(e.code(), Code::DeviceError);
        assert!(e.detail().contains("too old"), "{e}");
        let e = Connection::from_stream(fake_daemon(HelloReply::Welcome {
            version: PROTOCOL_VERSION + 1,
        }))
        .err()
        .unwrap();
        assert_eq!(e.code(), Code::DeviceError);
        let e = Remote::connect(std::path::Path::new("/nonexistent/keyward.sock"))
            .err()
            .unwrap();
        assert_eq!(e.code(), Code::DeviceError);
    }

    #[test]
    fn lost_connection_fails_pending_and_later_calls() {
        let (client, mut server) = UnixStream::pair().unwrap();
        let daemon = thread::spawn(move || {
            let _ = read_frame(&mut server, MAX_FRAME);
            send(
                &mut server,
                &HelloReply::Welcome {
                    version: PROTOCOL_VERSION,
                },
            );
            // Take two calls, answer none, and die.
            for _ in 0..2 {
                let req: Request = decode(&read_frame(&mut server, MAX_FRAME).unwrap()).unwrap();
                assert!(matches!(req.call, Call::Sign { .. }));
            }
        });
        let remote = Arc::new(Remote::new(Connection::from_stream(client).unwrap()));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let r = Arc::clone(&remote);
                thread::spawn(move || r.sign(1, b"data", Some(64)).unwrap_err().code())
            })
            .collect();
        for w in waiters {
            assert_eq!(w.join().unwrap(), Code::DeviceRemoved);
        }
        daemon.join().unwrap();
        assert_eq!(
            remote.session_info(1).unwrap_err().code(),
            Code::DeviceRemoved
        );
    }

    #[test]
    fn daemon_dropping_mid_call_is_device_removed() {
        // The engine side blocks in C_Sign; the daemon end of the socket then goes away.
        let (client, server) = UnixStream::pair().unwrap();
        let server2 = server.try_clone().unwrap();
        let api: Arc<dyn Api> = Arc::new(Hooked(Box::new(move |m| {
            if m == "sign" {
                let _ = server2.shutdown(std::net::Shutdown::Both);
            }
        })));
        thread::spawn(move || serve_connection(server, api, 1));
        let remote = Remote::new(Connection::from_stream(client).unwrap());
        let start = Instant::now();
        let e = remote.sign(1, b"data", None).unwrap_err();
        assert_eq!(e.code(), Code::DeviceRemoved);
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    /// Opens when `session_info` has been answered.
    #[derive(Default)]
    struct Gate {
        open: Mutex<bool>,
        cond: Condvar,
    }

    #[test]
    fn a_slow_call_does_not_block_a_fast_one() {
        let gate = Arc::new(Gate::default());
        let g = Arc::clone(&gate);
        let api: Arc<dyn Api> = Arc::new(Hooked(Box::new(move |m| match m {
            "generate_key_pair" => {
                let open = g.open.lock().unwrap();
                let (open, timeout) = g
                    .cond
                    .wait_timeout_while(open, Duration::from_secs(10), |o| !*o)
                    .unwrap();
                assert!(*open && !timeout.timed_out());
            }
            "session_info" => {
                *g.open.lock().unwrap() = true;
                g.cond.notify_all();
            }
            _ => {}
        })));
        let (remote, _done) = connect(api, 4);
        let remote = Arc::new(remote);
        let r = Arc::clone(&remote);
        let slow = thread::spawn(move || {
            r.generate_key_pair(
                1,
                &Mechanism::new(CKM_RSA_PKCS_KEY_PAIR_GEN),
                vec![],
                vec![],
            )
        });
        // Sent after the slow call is (very likely) already running in the daemon; either
        // way the slow call can only finish once this one has been answered.
        thread::sleep(Duration::from_millis(50));
        assert_eq!(remote.session_info(1).unwrap(), SessionInfo::sample());
        assert_eq!(
            slow.join().unwrap().unwrap(),
            <(CK_ULONG, CK_ULONG)>::sample()
        );
    }

    #[test]
    fn many_threads_share_one_connection() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let api: Arc<dyn Api> = Arc::new(Hooked(Box::new(move |_| {
            c.fetch_add(1, Ordering::Relaxed);
        })));
        let (remote, done) = connect(api, 3);
        let remote = Arc::new(remote);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let r = Arc::clone(&remote);
                thread::spawn(move || {
                    for i in 0..150 {
                        let call = sample_calls().swap_remove((t * 31 + i) % 78);
                        let expected = sample_answers().swap_remove((t * 31 + i) % 78);
                        assert_eq!(dispatch(&*r, call), expected);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(calls.load(Ordering::Relaxed), 8 * 150);
        drop(remote);
        assert!(returned(&done));
    }

    #[test]
    fn the_application_is_released_when_the_client_goes() {
        let api: Arc<dyn Api> = Arc::new(Hooked::echo());
        let (remote, done) = connect(Arc::clone(&api), 2);
        remote.slot_list(true).unwrap();
        drop(remote);
        assert!(returned(&done));
        assert_eq!(Arc::strong_count(&api), 1);
    }

    #[test]
    fn oversize_request_fails_without_closing() {
        let (remote, _done) = connect(Arc::new(Hooked::echo()), 1);
        let big = vec![0u8; MAX_FRAME + 1];
        assert_eq!(
            remote.digest_update(1, &big).unwrap_err().code(),
            Code::ArgumentsBad
        );
        remote.digest_update(1, b"small").unwrap();
    }
}

mod engine {
    use std::sync::Arc;
    use std::time::Instant;

    use keyward_core::api::Api;
    use keyward_core::config::Config;
    use keyward_core::engine::Engine;
    use keyward_core::{Code, Result};
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey, EcPoint};
    use openssl::ecdsa::EcdsaSig;
    use openssl::nid::Nid;

    use super::*;
    use crate::{Connection, Remote, serve_connection};

    const SO: &[u8] = b"so-secret";
    const USER: &[u8] = b"user-secret";

    fn bytes_attr(r: &AttrResult) -> Vec<u8> {
        match r {
            AttrResult::Value(AttrValue::Bytes(b)) => b.to_vec(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ec_key_generated_and_used_over_the_wire() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::from_str(
            &format!(
                "storage_dir = {:?}\n[kdf]\nmemory_kib = 256\niterations = 1\n",
                dir.path().to_str().unwrap()
            ),
            None,
        )?;
        let engine = Engine::new(config)?;
        let api: Arc<dyn Api> = Arc::new(engine.application());
        let (client, server) = std::os::unix::net::UnixStream::pair().unwrap();
        let daemon = std::thread::spawn(move || serve_connection(server, api, 4));
        let p11 = Remote::new(Connection::from_stream(client)?);

        let slot = *p11.slot_list(true)?.last().unwrap();
        let mut label = [b' '; 32];
        label[..4].copy_from_slice(b"wire");
        p11.init_token(slot, SO, &label)?;
        assert_eq!(p11.token_info(slot)?.label, "wire");
        let s = p11.open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)?;
        p11.login(s, CKU_SO, SO)?;
        p11.init_pin(s, USER)?;
        p11.logout(s)?;
        assert_eq!(
            p11.login(s, CKU_USER, b"wrong-pin").unwrap_err().code(),
            Code::PinIncorrect
        );
        p11.login(s, CKU_USER, USER)?;
        assert_eq!(p11.session_info(s)?.state, CKS_RW_USER_FUNCTIONS);

        let p256 = vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        let (public, private) = p11.generate_key_pair(
            s,
            &Mechanism::new(CKM_EC_KEY_PAIR_GEN),
            vec![
                Attribute::bytes(CKA_EC_PARAMS, p256),
                Attribute::bool(CKA_VERIFY, true),
            ],
            vec![Attribute::bool(CKA_SIGN, true)],
        )?;
        let digest = openssl::sha::sha256(b"signed over a socket");
        p11.sign_init(s, &Mechanism::new(CKM_ECDSA), private)?;
        assert!(matches!(p11.sign(s, &digest, None)?, Output::Len(64)));
        let sig = match p11.sign(s, &digest, Some(64))? {
            Output::Data(d) => d,
            other => panic!("{other:?}"),
        };
        assert_eq!(sig.len(), 64);

        // Checked outside the token, with the public point read over the wire.
        let attrs = p11.get_attribute_value(s, public, &[CKA_EC_POINT, CKA_PRIVATE_EXPONENT])?;
        assert_eq!(attrs[1], AttrResult::Invalid);
        let point = bytes_attr(&attrs[0]);
        assert_eq!(&point[..2], &[0x04, 65]);
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let mut ctx = openssl::bn::BigNumContext::new().unwrap();
        let point = EcPoint::from_bytes(&group, &point[2..], &mut ctx).unwrap();
        let key = EcKey::from_public_key(&group, &point).unwrap();
        let sig = EcdsaSig::from_private_components(
            BigNum::from_slice(&sig[..32]).unwrap(),
            BigNum::from_slice(&sig[32..]).unwrap(),
        )
        .unwrap();
        assert!(sig.verify(&digest, &key).unwrap());

        // The private value stays behind.
        let attrs = p11.get_attribute_value(s, private, &[CKA_VALUE])?;
        assert_eq!(attrs[0], AttrResult::Sensitive);

        // A trivial call's round trip (debug build, loaded machine: a loose bound).
        let n = 500;
        let start = Instant::now();
        for _ in 0..n {
            p11.session_info(s)?;
        }
        let per_call = start.elapsed() / n;
        eprintln!("C_GetSessionInfo round trip: {per_call:?}");
        assert!(per_call.as_millis() < 5, "{per_call:?}");

        drop(p11);
        daemon.join().unwrap().unwrap();
        Ok(())
    }
}
