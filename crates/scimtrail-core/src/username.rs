//! userName: what is accepted, what is stored, and what uniqueness compares.
//!
//! * **Refused** (`invalidValue`): an empty or blank userName, one longer than
//!   [`MAX_USER_NAME_CHARS`] characters, and any control, format or default-ignorable
//!   character (NUL, TAB, U+200B ZERO WIDTH SPACE, U+FEFF, bidi controls, variation selectors,
//!   Hangul fillers…). These make two names look alike, or a name look empty.
//! * **Stored**: the userName exactly as the client sent it, so the IdP reads back its own value.
//! * **Compared** (uniqueness, and `userName` filters): the key of [`key`]. Leading and trailing
//!   spaces are dropped, runs of Unicode spaces count as one space, and each space-separated part
//!   is prepared as the PRECIS UsernameCaseMapped profile of RFC 8265 says (width mapping,
//!   lower case, NFC) — RFC 8265 §3.5 lets an application allow spaces this way. A part that
//!   the profile does not accept (a symbol such as `’`) is compared by its NFKC lower case.
//!   So `café` composed and decomposed, `admin` and fullwidth `ＡＤＭＩＮ`, `bob` and `bob `
//!   are one name.

use precis_core::profile::PrecisFastInvocation;
use precis_profiles::UsernameCaseMapped;
use unicode_normalization::UnicodeNormalization;

use crate::error::{ScimError, ScimResult};

/// The longest userName accepted, in characters (an e-mail address is at most 254).
pub const MAX_USER_NAME_CHARS: usize = 256;

/// Default_Ignorable_Code_Point (Unicode DerivedCoreProperties) and the remaining format (Cf)
/// characters: invisible, so refused in a userName.
const INVISIBLE: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    // Braille pattern blank: a symbol, but it shows as nothing.
    (0x2800, 0x2800),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
];

/// Control, format and default-ignorable characters: they do not show, so they must not
/// make two names differ (or a name look empty).
pub fn is_invisible(c: char) -> bool {
    let cp = c as u32;
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}')
        || INVISIBLE.iter().any(|&(lo, hi)| (lo..=hi).contains(&cp))
}

/// Check a userName a client sends (see the module documentation).
pub fn check(user_name: &str) -> ScimResult<()> {
    if user_name.trim().is_empty() {
        return Err(ScimError::invalid_value("userName must not be blank"));
    }
    let chars = user_name.chars().count();
    if chars > MAX_USER_NAME_CHARS {
        return Err(ScimError::invalid_value(format!(
            "userName has {chars} characters; at most {MAX_USER_NAME_CHARS} are accepted"
        )));
    }
    if let Some(c) = user_name.chars().find(|&c| is_invisible(c)) {
        return Err(ScimError::invalid_value(format!(
            "userName must not contain control or invisible characters (U+{:04X})",
            c as u32
        )));
    }
    Ok(())
}

/// The uniqueness key of a userName (see the module documentation). Total: it never fails,
/// so stored names that predate [`check`] still get a key.
pub fn key(user_name: &str) -> String {
    let spaced: String = user_name
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    spaced
        .split(' ')
        .filter(|p| !p.is_empty())
        .map(|part| match UsernameCaseMapped::enforce(part) {
            Ok(k) => k.into_owned(),
            Err(_) => part.nfkc().collect::<String>().to_lowercase(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alikes_share_a_key() {
        let same = [
            ("café", "cafe\u{301}"),
            ("admin", "ＡＤＭＩＮ"),
            ("bob", "bob "),
            ("bob", " Bob"),
            ("Bob Smith", "bob  smith"),
            ("bob smith", "bob\u{00A0}smith"),
            ("ÅSA", "åsa"),
            ("Juliet@Example.com", "juliet@example.com"),
        ];
        for (a, b) in same {
            assert_eq!(key(a), key(b), "{a:?} ~ {b:?}");
        }
        for (a, b) in [("bob", "bo b"), ("fußball", "fussball"), ("a.b", "ab")] {
            assert_ne!(key(a), key(b), "{a:?} vs {b:?}");
        }
        // RFC 8265 §3.3's own examples of what the profile maps.
        assert_eq!(key("juliet@example.com"), "juliet@example.com");
        assert_eq!(key("Xx\u{ff01}xX"), "xx!xx");
        assert_eq!(key("π"), "π");
        // A part outside the profile still gets a key.
        assert_eq!(key("O’Brien"), "o’brien");
    }

    #[test]
    fn invisible_and_control_characters_are_refused() {
        for bad in [
            "\u{200b}",
            "bo\u{200b}b",
            "bob\u{feff}",
            "\tbob",
            "nul\u{0}user",
            "a\u{202e}b",
            "x\u{3164}",
            "",
            "   ",
        ] {
            let e = check(bad).unwrap_err();
            assert_eq!(e.scim_type, Some(crate::ScimType::InvalidValue), "{bad:?}");
        }
        assert!(check(&"a".repeat(MAX_USER_NAME_CHARS)).is_ok());
        assert!(check(&"a".repeat(MAX_USER_NAME_CHARS + 1)).is_err());
        for ok in [
            "bjensen@example.com",
            "José García",
            "ＡＤＭＩＮ",
            "O’Brien",
        ] {
            assert!(check(ok).is_ok(), "{ok:?}");
        }
    }
}
