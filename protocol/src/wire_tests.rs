//! Property tests across the wire format: round trips of every message, and every decoder fed
//! random, truncated, padded and oversized bytes returns an error without panicking.

use proptest::prelude::*;

use crate::codec::{limits, CodecError, MessageKind, WireMessage};
use crate::envelope::{GossipPayload, SignedEnvelope};
use crate::ids::{NetworkId, PeerKey};
use crate::messages::*;
use crate::testutil::*;

fn net() -> NetworkId {
    NetworkId::from_name("wire-tests")
}

/// Runs every gossip decoder and the request/response decoders on `bytes`; returns how many
/// accepted it.
fn decode_everything(bytes: &[u8]) -> usize {
    let n = net();
    [
        SignedEnvelope::<JobAnnounced>::from_frame(bytes, &n).is_ok(),
        SignedEnvelope::<ShardClaimed>::from_frame(bytes, &n).is_ok(),
        SignedEnvelope::<ShardProved>::from_frame(bytes, &n).is_ok(),
        SignedEnvelope::<AggregatorHeartbeat>::from_frame(bytes, &n).is_ok(),
        SignedEnvelope::<JobSettled>::from_frame(bytes, &n).is_ok(),
        SignedEnvelope::<JobFailed>::from_frame(bytes, &n).is_ok(),
        Request::from_frame(bytes).is_ok(),
        Response::from_frame(bytes).is_ok(),
    ]
    .iter()
    .filter(|ok| **ok)
    .count()
}

/// Signs `msg` (after `set_author` makes key(1) its author) and checks the round trip,
/// canonicality and every corruption of the frame.
fn check_gossip<T>(msg: T) -> Result<(), TestCaseError>
where
    T: GossipPayload + Clone + PartialEq + std::fmt::Debug,
{
    let env = SignedEnvelope::sign(&key(1), &net(), msg).unwrap();
    let frame = env.to_frame().unwrap();
    let back = SignedEnvelope::<T>::from_frame(&frame, &net()).unwrap();
    prop_assert_eq!(back.to_frame().unwrap(), frame.clone());
    prop_assert_eq!(&back, &env);
    // Exactly one decoder accepts it.
    prop_assert_eq!(decode_everything(&frame), 1);
    // Every strict prefix fails.
    for len in 0..frame.len() {
        prop_assert!(SignedEnvelope::<T>::from_frame(&frame[..len], &net()).is_err());
    }
    // A trailing byte fails.
    let mut padded = frame.clone();
    padded.push(0);
    prop_assert!(SignedEnvelope::<T>::from_frame(&padded, &net()).is_err());
    // Another version fails clearly.
    let mut v2 = frame.clone();
    v2[0] = 3;
    let err = SignedEnvelope::<T>::from_frame(&v2, &net()).unwrap_err();
    prop_assert!(err.to_string().contains("unsupported protocol version 3"));
    Ok(())
}

fn me() -> PeerKey {
    PeerKey::from(&key(1))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn job_announced_round_trips(mut manifest in arb_manifest()) {
        manifest.entry = me();
        check_gossip(JobAnnounced { manifest })?;
    }

    #[test]
    fn shard_claimed_round_trips(mut m in arb_claimed()) {
        m.claimer = me();
        check_gossip(m)?;
    }

    #[test]
    fn shard_proved_round_trips(mut m in arb_proved()) {
        m.worker = me();
        check_gossip(m)?;
    }

    #[test]
    fn heartbeat_round_trips(mut m in arb_heartbeat()) {
        m.aggregator = me();
        check_gossip(m)?;
    }

    #[test]
    fn job_settled_round_trips(mut m in arb_settled()) {
        m.aggregator = me();
        check_gossip(m)?;
    }

    #[test]
    fn job_failed_round_trips(mut m in arb_failed()) {
        m.reporter = me();
        check_gossip(m)?;
    }

    #[test]
    fn requests_round_trip(req in arb_request()) {
        let frame = req.to_frame().unwrap();
        let back = Request::from_frame(&frame).unwrap();
        prop_assert_eq!(&back, &req);
        prop_assert_eq!(back.to_frame().unwrap(), frame.clone());
        prop_assert!(Response::from_frame(&frame).is_err());
        for len in 0..frame.len() {
            prop_assert!(Request::from_frame(&frame[..len]).is_err());
        }
        let mut padded = frame;
        padded.push(7);
        prop_assert!(Request::from_frame(&padded).is_err());
    }

    #[test]
    fn responses_round_trip(resp in arb_response()) {
        let frame = resp.to_frame().unwrap();
        let back = Response::from_frame(&frame).unwrap();
        prop_assert_eq!(&back, &resp);
        prop_assert_eq!(back.to_frame().unwrap(), frame.clone());
        prop_assert!(Request::from_frame(&frame).is_err());
        for len in 0..frame.len() {
            prop_assert!(Response::from_frame(&frame[..len]).is_err());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_decode_as_gossip(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        prop_assert_eq!(decode_everything(&bytes), 0);
    }

    #[test]
    fn random_bodies_behind_valid_headers_never_panic(
        tag in prop::sample::select(MessageKind::ALL.to_vec()),
        body in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut frame = vec![2, 0, tag.tag()];
        frame.extend_from_slice(&body);
        // Gossip kinds need a signature, so they can never be accepted.
        let accepted = decode_everything(&frame);
        if tag.is_gossip() {
            prop_assert_eq!(accepted, 0);
        } else {
            prop_assert!(accepted <= 1);
        }
    }
}

#[test]
fn oversized_frames_are_refused_before_decoding() {
    for kind in MessageKind::ALL {
        let limit = kind.max_frame_bytes();
        let mut frame = vec![2, 0, kind.tag()];
        frame.resize(limit + 1, 0);
        let err = crate::codec::decode_header(&frame).unwrap_err();
        assert!(
            matches!(err, CodecError::TooLarge { kind: Some(k), .. } if k == kind)
                || (limit == limits::MAX_FRAME
                    && matches!(err, CodecError::TooLarge { kind: None, .. })),
            "{kind}: {err}"
        );
        assert_eq!(decode_everything(&frame), 0);
    }
    let huge = vec![0u8; limits::MAX_FRAME + 1];
    assert!(matches!(
        crate::codec::decode_header(&huge),
        Err(CodecError::TooLarge { kind: None, .. })
    ));
}

#[test]
fn biggest_messages_fit_their_limits() {
    let k = key(1);
    let proof = ShardProved {
        job: crate::ids::JobId([1; 32]),
        shard: 0,
        worker: PeerKey::from(&k),
        config_id: 1,
        proved_at_ms: 0,
        output: crate::matrix::IntMatrix::new(
            limits::MAX_SHARD_OUTPUT_ENTRIES,
            1,
            vec![i64::MIN; limits::MAX_SHARD_OUTPUT_ENTRIES],
        )
        .unwrap(),
        commitment: [0; 32],
        proof: crate::codec::Bytes(vec![0; limits::MAX_PROOF_BYTES]),
    };
    let env = SignedEnvelope::sign(&k, &net(), proof).unwrap();
    let frame = env.to_frame().unwrap();
    assert!(SignedEnvelope::<ShardProved>::from_frame(&frame, &net()).is_ok());

    let chunk = ChunkResponse::Found(crate::codec::Bytes(vec![0; crate::CHUNK_SIZE]));
    let frame = chunk.to_frame().unwrap();
    assert_eq!(ChunkResponse::from_frame(&frame).unwrap(), chunk);
}

#[test]
fn catch_up_report_respects_its_budget() {
    let mut report = CatchUpReport::default();
    let frame = vec![0u8; 8 << 20];
    let mut added = 0;
    while report.push(frame.clone()) {
        added += 1;
    }
    assert_eq!(added, 7);
    let encoded = Response::CatchUp(report).to_frame().unwrap();
    assert!(encoded.len() <= limits::CATCH_UP_REPORT);
}

#[test]
fn topics_are_versioned_and_map_to_kinds() {
    for kind in MessageKind::GOSSIP {
        let topic = topics::for_kind(kind).unwrap();
        assert!(topic.starts_with("/starkscale/2/"));
        assert_eq!(topics::kind_of(topic), Some(kind));
    }
    assert_eq!(topics::for_kind(MessageKind::FetchChunk), None);
    assert_eq!(topics::ALL.len(), MessageKind::GOSSIP.len());
}
