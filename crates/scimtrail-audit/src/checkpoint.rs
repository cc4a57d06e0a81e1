//! Signed checkpoints: the C2SP tlog-checkpoint body (origin, size, root) in a C2SP signed
//! note, signed with Ed25519. Keys are the C2SP note keys: the signer key
//! `PRIVATE+KEY+<name>+<id>+<base64>` (kept secret) and the verifier key
//! `<name>+<id>+<base64>` anyone may hold. Note and checkpoint encoding come from the
//! `signed_note` and `tlog_tiles` crates.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use signed_note::{Note, StandardSigner, StandardVerifier, VerifierList};
use tlog_tiles::checkpoint::Checkpoint;
use tlog_tiles::tlog::Hash as TlogHash;

use crate::merkle::Hash;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct CheckpointError(pub String);

fn cerr(msg: impl Into<String>) -> CheckpointError {
    CheckpointError(msg.into())
}

/// A key name (and default origin) made of `name`: no spaces, no `+`.
pub fn sanitize_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == '+' || c.is_control() {
                '-'
            } else {
                c
            }
        })
        .collect();
    if s.is_empty() {
        "scimtrail".into()
    } else {
        s
    }
}

/// The log's signing key. `Debug` never shows the secret.
pub struct LogSigner {
    skey: String,
    vkey: String,
    signer: StandardSigner,
}

impl std::fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSigner")
            .field("vkey", &self.vkey)
            .finish_non_exhaustive()
    }
}

const ALG_ED25519: u8 = 1;

impl LogSigner {
    /// A new random Ed25519 key named `name`.
    pub fn generate(name: &str) -> Result<Self, CheckpointError> {
        let name = sanitize_name(name);
        let seed: [u8; 32] = rand::random();
        let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
        let vkey = signed_note::new_ed25519_verifier_key(&name, &sk.verifying_key());
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(&seed);
        let id = vkey
            .split('+')
            .nth(1)
            .ok_or_else(|| cerr("bad verifier key"))?;
        let skey = format!("PRIVATE+KEY+{name}+{id}+{}", B64.encode(raw));
        Self::from_skey(&skey)
    }

    /// Load a signer key in the C2SP note format.
    pub fn from_skey(skey: &str) -> Result<Self, CheckpointError> {
        let skey = skey.trim().to_string();
        let signer = StandardSigner::new(&skey)
            .map_err(|e| cerr(format!("not a valid note signer key: {e}")))?;
        let raw = skey
            .splitn(5, '+')
            .nth(4)
            .and_then(|b| B64.decode(b).ok())
            .ok_or_else(|| cerr("not a valid note signer key"))?;
        let seed: [u8; 32] = raw
            .get(1..)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| cerr("not an Ed25519 note signer key"))?;
        let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
        let name = signed_note::Signer::name(&signer).to_string();
        let vkey = signed_note::new_ed25519_verifier_key(&name, &sk.verifying_key());
        Ok(LogSigner { skey, vkey, signer })
    }

    /// The secret key text (to write to the key file, mode 0600).
    pub fn skey(&self) -> &str {
        &self.skey
    }

    /// The verifier key `name+id+base64`.
    pub fn vkey(&self) -> &str {
        &self.vkey
    }

    pub fn name(&self) -> &str {
        signed_note::Signer::name(&self.signer)
    }

    /// The signed note of the checkpoint `(origin, size, root)`.
    pub fn sign(&self, origin: &str, size: u64, root: Hash) -> Result<String, CheckpointError> {
        let cp = Checkpoint::new(origin, size, TlogHash(root), "")
            .map_err(|_| cerr(format!("invalid checkpoint origin {origin:?}")))?;
        let mut note =
            Note::new(&cp.to_bytes(), &[]).map_err(|e| cerr(format!("bad note: {e}")))?;
        note.add_sigs(&[&self.signer])
            .map_err(|e| cerr(format!("cannot sign: {e}")))?;
        String::from_utf8(note.to_bytes()).map_err(|_| cerr("note is not UTF-8"))
    }
}

/// A checkpoint whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

/// Parse a verifier key, checking its key id.
pub fn parse_vkey(vkey: &str) -> Result<StandardVerifier, CheckpointError> {
    StandardVerifier::new(vkey.trim())
        .map_err(|e| cerr(format!("not a valid note verifier key: {e}")))
}

/// Check a signed checkpoint note against a verifier key and parse its body.
pub fn open_checkpoint(note: &[u8], vkey: &str) -> Result<VerifiedCheckpoint, CheckpointError> {
    let note_bytes = note;
    let verifier = parse_vkey(vkey)?;
    let note = Note::from_bytes(note).map_err(|e| cerr(format!("not a signed note: {e}")))?;
    let list = VerifierList::new(vec![Box::new(verifier)]);
    note.verify(&list)
        .map_err(|e| cerr(format!("signature check failed: {e}")))?;
    // `verify` stops at the first good signature of a key; a second line naming the same key
    // that does not verify is a forgery beside a real signature, and fails the note too.
    let text = std::str::from_utf8(note.text()).map_err(|_| cerr("the note is not UTF-8"))?;
    let verifier = parse_vkey(vkey)?;
    let (name, id) = (
        signed_note::Verifier::name(&verifier).to_string(),
        signed_note::Verifier::key_id(&verifier),
    );
    let raw = String::from_utf8_lossy(note_bytes);
    let sigs = raw.rsplit_once("\n\n").map(|(_, s)| s).unwrap_or("");
    for line in sigs.lines() {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            continue;
        };
        let Some((who, b64)) = rest.split_once(' ') else {
            continue;
        };
        let Ok(bytes) = B64.decode(b64) else { continue };
        if who != name || bytes.len() < 4 || bytes[..4] != id.to_be_bytes() {
            continue;
        }
        if !signed_note::Verifier::verify(&verifier, text.as_bytes(), &bytes[4..]) {
            return Err(cerr(format!("a signature line by {name} does not verify")));
        }
    }
    let cp = Checkpoint::from_bytes(note.text())
        .map_err(|_| cerr("the note is not a tlog checkpoint"))?;
    Ok(VerifiedCheckpoint {
        origin: cp.origin().to_string(),
        size: cp.size(),
        root: cp.hash().0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_open() {
        let k = LogSigner::generate("example.com/log").unwrap();
        assert!(k.vkey().starts_with("example.com/log+"));
        let note = k.sign("example.com/log", 7, [9u8; 32]).unwrap();
        let (body, sigs) = note.split_once("\n\n").unwrap();
        assert_eq!(
            body,
            format!("example.com/log\n7\n{}", B64.encode([9u8; 32]))
        );
        assert!(sigs.starts_with("\u{2014} example.com/log "));
        assert!(sigs.ends_with('\n'));
        let cp = open_checkpoint(note.as_bytes(), k.vkey()).unwrap();
        assert_eq!(cp.size, 7);
        assert_eq!(cp.root, [9u8; 32]);
        // Reloading the secret key gives the same verifier key.
        let again = LogSigner::from_skey(k.skey()).unwrap();
        assert_eq!(again.vkey(), k.vkey());
        assert!(!format!("{k:?}").contains(k.skey()));
    }

    #[test]
    fn keys_whose_base64_holds_a_plus_load() {
        for _ in 0..64 {
            let k = LogSigner::generate("log").unwrap();
            assert_eq!(LogSigner::from_skey(k.skey()).unwrap().vkey(), k.vkey());
        }
    }

    #[test]
    fn tampered_notes_and_other_keys_fail() {
        let k = LogSigner::generate("log").unwrap();
        let other = LogSigner::generate("log").unwrap();
        let note = k.sign("log", 7, [9u8; 32]).unwrap();
        assert!(open_checkpoint(note.as_bytes(), other.vkey()).is_err());
        let forged = note.replacen("\n7\n", "\n8\n", 1);
        assert!(open_checkpoint(forged.as_bytes(), k.vkey()).is_err());
        assert!(open_checkpoint(b"garbage", k.vkey()).is_err());
        // A second line by the trusted key that does not verify fails the note.
        let other_sig = other.sign("log", 7, [9u8; 32]).unwrap();
        let bad_line = other_sig.rsplit_once("\n\n").unwrap().1;
        let b64 = bad_line.trim_end().rsplit_once(' ').unwrap().1;
        let mut raw = B64.decode(b64).unwrap();
        let good_line = note.rsplit_once("\n\n").unwrap().1;
        let good = B64
            .decode(good_line.trim_end().rsplit_once(' ').unwrap().1)
            .unwrap();
        raw[..4].copy_from_slice(&good[..4]);
        let forged = format!("{note}\u{2014} log {}\n", B64.encode(raw));
        let e = open_checkpoint(forged.as_bytes(), k.vkey()).unwrap_err();
        assert!(e.0.contains("does not verify"), "{e}");
        assert!(parse_vkey("log+00000000+AAAA").is_err());
    }
}
