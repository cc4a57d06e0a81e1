use super::*;
use crate::event::*;
use crate::Change;

fn event() -> AuditEvent {
    AuditEvent {
        id: "0190-x".into(),
        seq: None,
        time: "2026-11-28T13:32:22.000000Z".into(),
        tenant: "default".into(),
        request_id: "r1".into(),
        actor: Actor {
            kind: ACTOR_TOKEN.into(),
            ..Default::default()
        },
        action: "user.update".into(),
        operation: Operation::default(),
        target: Target::default(),
        outcome: Outcome::from_status(200, None, None),
        latency_ms: 1.5,
        changes: vec![Change {
            op: "replace".into(),
            path: "active".into(),
            old: json!(true),
            new: json!(false),
        }],
        request: Payload {
            body: json!({"a!": 1, "a": 2, "Operations": []}),
            ..Default::default()
        },
        response: Payload::default(),
        parent_id: None,
        leaf_hash: None,
    }
}

const SALT: [u8; 16] = [7; 16];

#[test]
fn the_commitment_holds_digests_not_values() {
    let s = seal(event(), 7, &SALT).unwrap();
    let c: Value = serde_json::from_str(&s.commitment).unwrap();
    assert_eq!(c["leafFormat"], json!(1));
    assert_eq!(c["seq"], json!(7));
    assert!(c.get("leafHash").is_none());
    assert_eq!(c["changes"][0]["path"], json!("active"));
    assert_eq!(
        c["changes"][0]["old"],
        json!({"sha256": value_digest(&SALT, b"true"), "size": 4})
    );
    // Keys sort by UTF-16 code units: "a" before "a!".
    let body = r#"{"Operations":[],"a":2,"a!":1}"#;
    assert_eq!(
        c["request"]["body"],
        json!({"sha256": value_digest(&SALT, body.as_bytes()), "size": body.len()})
    );
    assert!(!s.commitment.contains("Operations"));
    assert_eq!(s.leaf_hash, leaf_hash(s.commitment.as_bytes()));
    assert_eq!(
        s.commitment,
        canonical(&c).unwrap(),
        "the bytes are canonical"
    );
    assert_eq!(s.payload.values, format!("{body}nulltruefalse"));
}

#[test]
fn open_gives_back_the_event_and_marks_pruned_ones() {
    let s = seal(event(), 7, &SALT).unwrap();
    let full = open(&s.commitment, &s.leaf_hash, Some(&s.payload)).unwrap();
    let back: AuditEvent = serde_json::from_value(full.clone()).unwrap();
    assert_eq!(back, s.event);
    assert!(full.get("pruned").is_none());
    let pruned = open(&s.commitment, &s.leaf_hash, None).unwrap();
    assert_eq!(pruned["pruned"], json!(true));
    assert_eq!(pruned["changes"][0]["old"]["size"], json!(4));
    assert_eq!(pruned["outcome"]["status"], json!(200));
}

#[test]
fn payload_checks_find_the_changed_value() {
    let s = seal(event(), 7, &SALT).unwrap();
    let view = LeafView::parse(&s.commitment).unwrap();
    view.check_payload(&s.payload).unwrap();
    let mut bad = s.payload.clone();
    bad.values = bad.values.replace("truefalse", "truetrue!");
    let e = view.check_payload(&bad).unwrap_err();
    assert!(e.0.contains("changes[0].new"), "{e}");
    let mut salt = s.payload.clone();
    salt.salt[0] ^= 1;
    assert!(view.check_payload(&salt).is_err());
    let mut short = s.payload.clone();
    short.values.truncate(3);
    assert!(view.check_payload(&short).is_err());
}

#[test]
fn salts_hide_equal_values() {
    let a = seal(event(), 7, &[1; 16]).unwrap();
    let b = seal(event(), 7, &[2; 16]).unwrap();
    assert_ne!(a.leaf_hash, b.leaf_hash);
}

#[test]
fn index_keys_compared_in_place_agree_with_built_ones() {
    let s = seal(event(), 7, &SALT).unwrap();
    let view = LeafView::parse(&s.commitment).unwrap();
    let key = view.index_key();
    assert!(view.index_key_matches(&key));
    // A field changed, cut short, lengthened, or an absent field made empty: each differs.
    let status = view
        .outcome
        .status
        .expect("the event has a status")
        .to_string();
    let changed = key.replacen(&status, "599", 1);
    assert_ne!(changed, key);
    assert!(!view.index_key_matches(&changed));
    assert!(!view.index_key_matches(&key[..key.len() - 1]));
    assert!(!view.index_key_matches(&format!("{key}x")));
    assert!(!view.index_key_matches(&format!("{key}\u{1f}")));
    let absent = key.find('\u{1f}').expect("some field is absent");
    let empty = format!("{}\u{1e}{}", &key[..absent], &key[absent + 1..]);
    assert!(!view.index_key_matches(&empty));
    assert!(!view.index_key_matches(""));
}
