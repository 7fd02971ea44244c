//! Guards against ACL checks, validation and digests that differ from ZooKeeper's.

use super::*;

fn entry(perms: Perms, scheme: &str, id: &str) -> Acl {
    Acl::new(perms, Id::new(scheme, id))
}

#[test]
fn digest_matches_zookeeper_and_python_hashlib() {
    // python3: base64.b64encode(hashlib.sha1(b"user:password").digest()); the real
    // ZooKeeper 3.8 showed this id for an `auth` ACL after addauth digest user:password.
    assert_eq!(digest("user:password"), "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=");
    assert_eq!(digest("a:b:c"), "a:cLzgnoJ6mP5qz3w+mwvPE2vDgu0=");
    assert_eq!(digest("nocolon"), "nocolon:Ra+cHr2ZoHvBjtNArFGNGlVie4g=");
    assert_eq!(digest("üser:pässword"), "üser:S/LHSCEmmE6GVxI+xd586A6+JlE=");
}

#[test]
fn empty_acl_and_super_allow_everything() {
    assert!(check(&[], Perms::ADMIN, &[]));
    let acl = [entry(Perms::READ, "digest", "a:b")];
    assert!(check(&acl, Perms::WRITE, &[Id::new("super", "")]));
}

#[test]
fn world_anyone_allows_only_its_perms() {
    let acl = Acl::read_unsafe();
    assert!(check(&acl, Perms::READ, &[]));
    assert!(!check(&acl, Perms::WRITE, &[]));
    assert!(
        check(&acl, Perms::READ | Perms::ADMIN, &[]),
        "any shared bit is enough"
    );
    assert!(!check(
        &[entry(Perms::ALL, "world", "someone")],
        Perms::READ,
        &[]
    ));
}

#[test]
fn digest_entries_match_by_equality() {
    let id = digest("user:password");
    let acl = [entry(Perms::ALL, "digest", &id)];
    assert!(check(&acl, Perms::READ, &[Id::new("digest", id.clone())]));
    assert!(!check(
        &acl,
        Perms::READ,
        &[Id::new("digest", digest("user:other"))]
    ));
    assert!(!check(&acl, Perms::READ, &[Id::new("ip", id)]));
    assert!(!check(&acl, Perms::READ, &[]));
}

#[test]
fn unknown_schemes_never_match() {
    let acl = [
        entry(Perms::ALL, "auth", ""),
        entry(Perms::ALL, "sasl", "u"),
    ];
    assert!(!check(
        &acl,
        Perms::READ,
        &[Id::new("auth", ""), Id::new("sasl", "u")]
    ));
}

#[test]
fn ipv4_entries_match_by_prefix() {
    let me = [Id::new("ip", "10.1.2.3")];
    let allows = |expr: &str| check(&[entry(Perms::READ, "ip", expr)], Perms::READ, &me);
    assert!(allows("10.1.2.3"));
    assert!(!allows("10.1.2.4"));
    assert!(allows("10.1.2.3/32"));
    assert!(allows("10.1.2.0/24"));
    assert!(allows("10.0.0.0/8"));
    assert!(allows("10.1.2.0/30"));
    assert!(!allows("10.1.2.4/30"));
    assert!(allows("10.1.2.2/31"));
    assert!(allows("0.0.0.0/0"));
    assert!(allows("10.1.3.0/23"));
    assert!(!allows("10.1.4.0/23"));
    assert!(!allows("10.1.2.3/33"));
    assert!(!allows("10.1.2.3/-1"));
    assert!(!allows("10.1.2.3/x"));
    assert!(allows("+10.1.2.3/+32"), "Java's parseInt takes a sign");
    assert!(!allows("10.1.2"));
    assert!(!allows("::ffff:10.1.2.3"), "no embedded IPv4 form");
}

#[test]
fn ipv6_entries_match_by_prefix() {
    let me = [Id::new("ip", "2001:db8:0:0:0:0:0:1")];
    let allows = |expr: &str| check(&[entry(Perms::READ, "ip", expr)], Perms::READ, &me);
    assert!(allows("2001:db8::1"));
    assert!(allows("2001:0db8:0000:0000:0000:0000:0000:0001"));
    assert!(allows("2001:db8::/32"));
    assert!(allows("2001:db9::/31"));
    assert!(!allows("2001:db9::/32"));
    assert!(allows("::/0"));
    assert!(!allows("2001:db8::2"));
    assert!(!allows("2001:db8::1/129"));
    assert!(
        !allows("10.0.0.0/0"),
        "an IPv4 entry never matches an IPv6 address"
    );
    let loopback = [Id::new("ip", "0:0:0:0:0:0:0:1")];
    assert!(check(
        &[entry(Perms::READ, "ip", "::1")],
        Perms::READ,
        &loopback
    ));
}

#[test]
fn ip_ids_parse_as_zookeeper_parses_them() {
    for valid in [
        "1.2.3.4",
        "1.2.3.4/0",
        "1.2.3.4/32",
        "::",
        "::1",
        "1::",
        "a:b:c:d:e:f:0:1",
        "-1::",
        "::/128",
    ] {
        assert!(is_valid_ip_id(valid), "{valid}");
    }
    for invalid in [
        "",
        "1.2.3",
        "1.2.3.4.5",
        "1.2.3.256",
        "1.2.3.4/33",
        "1.2.3.4/",
        "1.2..4",
        "localhost",
        "1:2:3:4:5:6:7",
        "1:2:3:4:5:6:7:8:9",
        "1::2::3",
        ":::",
        "1:2:3:4::5:6:7:8",
        "12345::",
        "g::",
        "::1/129",
        "1.2.3.4/8/9",
    ] {
        assert!(!is_valid_ip_id(invalid), "{invalid}");
    }
    assert_eq!(
        parse_ip("-1::").map(|ip| ip.bytes[..2].to_vec()),
        Some(vec![0xff, 0xff])
    );
}

#[test]
fn fixup_drops_duplicates_keeping_the_first() {
    let acl = [
        entry(Perms::READ, "world", "anyone"),
        entry(Perms::ALL, "ip", "1.2.3.4"),
        entry(Perms::READ, "world", "anyone"),
    ];
    assert_eq!(fixup(&acl, &[], false), Ok(acl[..2].to_vec()));
}

#[test]
fn fixup_rejects_empty_and_unknown() {
    assert_eq!(fixup(&[], &[], false), Err(ErrorCode::InvalidAcl));
    for (scheme, id) in [
        ("world", "someone"),
        ("super", ""),
        ("sasl", "u"),
        ("x509", "cn"),
    ] {
        assert_eq!(
            fixup(&[entry(Perms::ALL, scheme, id)], &[], false),
            Err(ErrorCode::InvalidAcl)
        );
    }
}

#[test]
fn fixup_expands_auth_to_digest_identities_only() {
    let identities = [
        Id::new("ip", "127.0.0.1"),
        Id::new("digest", "a:h1"),
        Id::new("super", ""),
        Id::new("digest", "b:h2"),
    ];
    let acl = [
        entry(Perms::READ, "auth", "ignored"),
        entry(Perms::ALL, "digest", "a:h1"),
    ];
    assert_eq!(
        fixup(&acl, &identities, false),
        Ok(vec![
            entry(Perms::READ, "digest", "a:h1"),
            entry(Perms::READ, "digest", "b:h2"),
            entry(Perms::ALL, "digest", "a:h1"),
        ])
    );
    let unauthenticated = [Id::new("ip", "127.0.0.1"), Id::new("super", "")];
    assert_eq!(
        fixup(&Acl::creator_all(), &unauthenticated, false),
        Err(ErrorCode::InvalidAcl)
    );
}

#[test]
fn fixup_checks_digest_ids_as_java_split() {
    for valid in ["user:hash", "user:hash:", "user:hash::", ":hash"] {
        assert!(
            fixup(&[entry(Perms::ALL, "digest", valid)], &[], false).is_ok(),
            "{valid}"
        );
    }
    for invalid in ["user", "user:", "user::", "a:b:c", ":", "", "::"] {
        assert_eq!(
            fixup(&[entry(Perms::ALL, "digest", invalid)], &[], false),
            Err(ErrorCode::InvalidAcl),
            "{invalid}"
        );
    }
}

#[test]
fn fixup_checks_ip_ids() {
    // Observed on the real ZooKeeper 3.8.0: these signed forms are accepted.
    assert!(fixup(&[entry(Perms::ALL, "ip", "+1.2.3.4")], &[], false).is_ok());
    assert!(fixup(&[entry(Perms::ALL, "ip", "1.2.3.4/+8")], &[], false).is_ok());
    assert!(fixup(&[entry(Perms::ALL, "ip", "1.2.3.-0")], &[], false).is_ok());
    assert!(fixup(&[entry(Perms::ALL, "ip", "10.0.0.0/8")], &[], false).is_ok());
    assert_eq!(
        fixup(&[entry(Perms::ALL, "ip", "10.0.0.0/40")], &[], false),
        Err(ErrorCode::InvalidAcl)
    );
}

#[test]
fn mask_digests_hides_hashes_only() {
    let acl = [
        entry(Perms::ALL, "digest", "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY="),
        entry(Perms::READ, "ip", "1.2.3.4"),
        entry(Perms::READ, "digest", "a:b\nc:d"),
        entry(Perms::READ, "digest", "nohash"),
    ];
    assert_eq!(
        mask_digests(&acl),
        vec![
            entry(Perms::ALL, "digest", "user:x"),
            entry(Perms::READ, "ip", "1.2.3.4"),
            entry(Perms::READ, "digest", "a:x\nc:x"),
            entry(Perms::READ, "digest", "nohash"),
        ]
    );
}

#[test]
fn java_int_parsing() {
    assert_eq!(parse_java_int("255", 10), Some(255));
    assert_eq!(parse_java_int("+7", 10), Some(7));
    assert_eq!(parse_java_int("-0", 10), Some(0));
    assert_eq!(parse_java_int("-", 10), None);
    assert_eq!(parse_java_int("", 10), None);
    assert_eq!(parse_java_int("2147483648", 10), None);
    assert_eq!(parse_java_int("-2147483648", 10), Some(i32::MIN));
    assert_eq!(parse_java_int("fF", 16), Some(255));
    assert_eq!(parse_java_int("1 ", 10), None);
}

#[test]
fn x509_ids_match_exactly_and_only_with_the_provider() {
    let subject = "CN=client one,OU=Test,O=Example\\, Inc.,C=US";
    let acl = [entry(Perms::READ, "x509", subject)];
    let session = [Id::new("ip", "127.0.0.1"), Id::new("x509", subject)];
    assert!(check(&acl, Perms::READ, &session));
    assert!(!check(
        &acl,
        Perms::READ,
        &[Id::new("x509", "CN=client one")]
    ));
    assert_eq!(fixup(&acl, &[], true), Ok(acl.to_vec()));
    assert_eq!(fixup(&acl, &[], false), Err(ErrorCode::InvalidAcl));
    // `auth` takes the x509 identity (x509 is an "authenticated" provider), not the ip one.
    let expanded = fixup(&[entry(Perms::ALL, "auth", "")], &session, true).unwrap();
    assert_eq!(expanded, vec![entry(Perms::ALL, "x509", subject)]);
    assert_eq!(
        fixup(&[entry(Perms::ALL, "auth", "")], &session, false),
        Err(ErrorCode::InvalidAcl)
    );
}

fn null_id(perms: Perms, scheme: &str) -> Acl {
    let mut id = Id::new(scheme, "");
    id.id_is_null = true;
    Acl::new(perms, id)
}

#[test]
fn null_ids_are_answered_as_zookeeper_3_8_answered_them() {
    // Each as Apache ZooKeeper 3.8 answered a create with that ACL (the id sent as length -1).
    let marshalling = Err(ErrorCode::MarshallingError);
    for scheme in ["x509", "digest", "ip", "world"] {
        assert_eq!(
            fixup(&[null_id(Perms::ALL, scheme)], &[], true),
            marshalling
        );
    }
    // Without the x509 provider, x509 has no provider to look at the id: InvalidAcl.
    assert_eq!(
        fixup(&[null_id(Perms::ALL, "x509")], &[], false),
        Err(ErrorCode::InvalidAcl)
    );
    assert_eq!(
        fixup(&[null_id(Perms::ALL, "foo")], &[], true),
        Err(ErrorCode::InvalidAcl)
    );
    // auth never reads its id.
    let session = [Id::new("digest", "u:h")];
    assert_eq!(
        fixup(&[null_id(Perms::ALL, "auth")], &session, true),
        Ok(vec![entry(Perms::ALL, "digest", "u:h")])
    );
    // An empty id sent as a string is a name: X500Principal("") parses.
    assert_eq!(
        fixup(&[entry(Perms::ALL, "x509", "")], &[], true),
        Ok(vec![entry(Perms::ALL, "x509", "")])
    );
    // Entries are checked in order: an earlier malformed one answers first...
    let bad_digest = entry(Perms::ALL, "digest", "bad");
    assert_eq!(
        fixup(
            &[bad_digest.clone(), null_id(Perms::ALL, "x509")],
            &[],
            true
        ),
        Err(ErrorCode::InvalidAcl)
    );
    assert_eq!(
        fixup(
            &[null_id(Perms::ALL, "x509"), bad_digest.clone()],
            &[],
            true
        ),
        marshalling
    );
    // ...except that dropping duplicates compares a null id with each earlier entry of the
    // same perms and scheme first.
    assert_eq!(
        fixup(&[bad_digest, null_id(Perms::ALL, "digest")], &[], true),
        marshalling
    );
    assert_eq!(
        fixup(
            &[entry(Perms::READ, "foo", "x"), null_id(Perms::ALL, "foo")],
            &[],
            true
        ),
        Err(ErrorCode::InvalidAcl)
    );
}

fn null_scheme(perms: Perms, id: &str) -> Acl {
    let mut entry = Id::new("", id);
    entry.scheme_is_null = true;
    Acl::new(perms, entry)
}

#[test]
fn a_null_scheme_is_answered_as_zookeeper_3_8_answered_it() {
    let world = entry(Perms::ALL, "world", "anyone");
    // Alone, or first: fixupACL's own check, InvalidAcl.
    assert_eq!(
        fixup(&[null_scheme(Perms::ALL, "x")], &[], true),
        Err(ErrorCode::InvalidAcl)
    );
    assert_eq!(
        fixup(&[null_scheme(Perms::ALL, "x"), world.clone()], &[], true),
        Err(ErrorCode::InvalidAcl)
    );
    // After an entry of the same perms, dropping duplicates meets it (scheme.equals first).
    assert_eq!(
        fixup(&[world, null_scheme(Perms::ALL, "x")], &[], true),
        Err(ErrorCode::MarshallingError)
    );
    assert_eq!(
        fixup(
            &[
                entry(Perms::READ, "world", "anyone"),
                null_scheme(Perms::ALL, "x")
            ],
            &[],
            true
        ),
        Err(ErrorCode::InvalidAcl)
    );
}
