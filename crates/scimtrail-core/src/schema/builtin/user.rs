//! The core User schema (RFC 7643 §4.1, §8.7.1).

use super::{a, multi_complex, T};
use crate::schema::{Mutability, Returned, Schema, Uniqueness, USER_SCHEMA};

pub(crate) fn user_schema() -> Schema {
    let s = |n: &str, d: &str| a(n, T::String, d);
    let attributes = vec![
        s(
            "userName",
            "Unique identifier for the User, used to authenticate.",
        )
        .required()
        .unique(Uniqueness::Server),
        a(
            "name",
            T::Complex,
            "The components of the user's real name.",
        )
        .subs(vec![
            s("formatted", "The full name, formatted for display."),
            s("familyName", "The family name of the User."),
            s("givenName", "The given name of the User."),
            s("middleName", "The middle name(s) of the User."),
            s("honorificPrefix", "The honorific prefix(es) of the User."),
            s("honorificSuffix", "The honorific suffix(es) of the User."),
        ]),
        s(
            "displayName",
            "The name of the User, suitable for display to end-users.",
        ),
        s("nickName", "The casual way to address the user."),
        a(
            "profileUrl",
            T::Reference,
            "A fully qualified URL pointing to the User's profile.",
        )
        .refs(&["external"]),
        s("title", "The user's title, such as \"Vice President\"."),
        s(
            "userType",
            "Identifies the relationship between the organization and the user.",
        ),
        s(
            "preferredLanguage",
            "The User's preferred written or spoken language.",
        ),
        s("locale", "The User's default location for localization."),
        s(
            "timezone",
            "The User's time zone in IANA Time Zone database format.",
        ),
        a("active", T::Boolean, "The User's administrative status."),
        s("password", "The User's cleartext password; never returned.")
            .mutability(Mutability::WriteOnly)
            .returned(Returned::Never),
        multi_complex(
            "emails",
            "Email addresses for the user.",
            T::String,
            &["work", "home", "other"],
        ),
        multi_complex(
            "phoneNumbers",
            "Phone numbers for the User.",
            T::String,
            &["work", "home", "mobile", "fax", "pager", "other"],
        ),
        multi_complex(
            "ims",
            "Instant messaging addresses for the User.",
            T::String,
            &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
        ),
        multi_complex(
            "photos",
            "URLs of photos of the User.",
            T::Reference,
            &["photo", "thumbnail"],
        ),
        a(
            "addresses",
            T::Complex,
            "A physical mailing address for this User.",
        )
        .multi()
        .subs(vec![
            s(
                "formatted",
                "The full mailing address, formatted for display.",
            ),
            s("streetAddress", "The full street address component."),
            s("locality", "The city or locality component."),
            s("region", "The state or region component."),
            s("postalCode", "The zip code or postal code component."),
            s("country", "The country name component."),
            s("type", "A label indicating the attribute's function.")
                .canon(&["work", "home", "other"]),
            a("primary", T::Boolean, "Indicates the primary address."),
        ]),
        a(
            "groups",
            T::Complex,
            "A list of groups to which the user belongs.",
        )
        .multi()
        .subs(vec![
            s("value", "The identifier of the User's group."),
            a(
                "$ref",
                T::Reference,
                "The URI of the corresponding Group resource.",
            )
            .refs(&["User", "Group"]),
            s("display", "A human-readable name."),
            s("type", "How the membership was derived.").canon(&["direct", "indirect"]),
        ])
        .all_mutability(Mutability::ReadOnly),
        multi_complex(
            "entitlements",
            "A list of entitlements for the User.",
            T::String,
            &[],
        ),
        multi_complex("roles", "A list of roles for the User.", T::String, &[]),
        multi_complex(
            "x509Certificates",
            "A list of certificates issued to the User.",
            T::Binary,
            &[],
        ),
    ];
    Schema {
        id: USER_SCHEMA.to_string(),
        name: "User".to_string(),
        description: "User Account".to_string(),
        attributes,
    }
}
