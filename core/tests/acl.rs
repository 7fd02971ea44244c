//! Guards against ACL bugs that leak or lock out data: a permission checked on the wrong znode
//! (create/delete check the parent), digests not matching ZooKeeper's sha1/base64 form, ip
//! prefixes matched wrongly, `auth` expanded to the wrong identities, digests shown to sessions
//! without ADMIN, bad ACLs accepted, and a failed addAuth that leaves the session usable.
//!
//! Mirrors Apache ZooKeeper's ACLTest and IPAuthTest (auth.rs has AuthTest). Expected answers were checked
//! against ZooKeeper 3.8.0 (kazoo and zkCli), except where 3.9 changed behaviour (noted).

use zookeeper_core::*;

mod common;
use common::{code, connect_as, connect_from};

/// `base64(sha1("alice:secret"))`, computed with python3's hashlib: a known vector, so a
/// broken digest function cannot agree with itself.
const ALICE_DIGEST_ID: &str = "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=";
/// `base64(sha1("bob:pw"))`.
const BOB_DIGEST_ID: &str = "bob:ikIaKsbtGweaHnb/jKn7OHqbunM=";

fn server() -> Server {
    let (config, _clock) = ServerConfig::with_manual_clock();
    Server::start(config).unwrap()
}

fn world(perms: Perms) -> Vec<Acl> {
    vec![Acl::new(perms, Id::anyone())]
}

#[test]
fn world_anyone_grants_exactly_its_perms_to_every_session() {
    let server = server();
    let zk = server.connect().unwrap();
    zk.create(
        "/read_only",
        b"x",
        &world(Perms::READ),
        CreateMode::Persistent,
    )
    .unwrap();
    let (acl, stat) = zk.get_acl("/read_only").unwrap();
    assert_eq!(acl, world(Perms::READ));
    assert_eq!(stat.aversion, 0);
    assert_eq!(
        zk.get_data("/read_only", None).unwrap().0,
        Some(b"x".to_vec())
    );
    assert_eq!(code(zk.set_data("/read_only", b"y", -1)), ErrorCode::NoAuth);
    assert_eq!(
        code(zk.create(
            "/read_only/child",
            b"",
            &Acl::open_unsafe(),
            CreateMode::Persistent
        )),
        ErrorCode::NoAuth
    );
    assert_eq!(
        code(zk.set_acl("/read_only", &Acl::open_unsafe(), -1)),
        ErrorCode::NoAuth
    );
}

#[test]
fn each_op_needs_its_own_permission() {
    let server = server();
    let zk = server.connect().unwrap();
    let perms = [
        ("r", Perms::READ),
        ("w", Perms::WRITE),
        ("c", Perms::CREATE),
        ("d", Perms::DELETE),
        ("a", Perms::ADMIN),
    ];
    for (name, perms) in perms {
        zk.create(
            &format!("/p_{name}"),
            b"x",
            &world(perms),
            CreateMode::Persistent,
        )
        .unwrap();
    }
    // create needs CREATE on the parent, and only CREATE.
    for (name, _) in perms {
        let result = zk.create(
            &format!("/p_{name}/k"),
            b"",
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        );
        if name == "c" {
            assert_eq!(result.unwrap(), "/p_c/k");
        } else {
            assert_eq!(code(result), ErrorCode::NoAuth, "create under /p_{name}");
        }
    }
    // setData needs WRITE.
    assert_eq!(zk.set_data("/p_w", b"y", 0).unwrap().version, 1);
    for name in ["r", "c", "d", "a"] {
        assert_eq!(
            code(zk.set_data(&format!("/p_{name}"), b"y", -1)),
            ErrorCode::NoAuth,
            "setData /p_{name}"
        );
    }
    // getData, getChildren and exists on an existing znode need READ.
    assert_eq!(zk.get_data("/p_r", None).unwrap().0, Some(b"x".to_vec()));
    assert_eq!(zk.get_children("/p_r", None).unwrap(), Vec::<String>::new());
    assert!(zk.exists("/p_r", None).unwrap().is_some());
    for name in ["w", "c", "d", "a"] {
        let path = format!("/p_{name}");
        assert_eq!(
            code(zk.get_data(&path, None)),
            ErrorCode::NoAuth,
            "getData {path}"
        );
        assert_eq!(
            code(zk.get_children(&path, None)),
            ErrorCode::NoAuth,
            "getChildren {path}"
        );
        // ZooKeeper 3.9 checks READ on exists of an existing znode (3.8.0 did not).
        assert_eq!(
            code(zk.exists(&path, None)),
            ErrorCode::NoAuth,
            "exists {path}"
        );
    }
    // exists on a missing znode needs nothing, not even READ on the parent.
    assert_eq!(zk.exists("/p_w/missing", None).unwrap(), None);
    // setACL needs ADMIN.
    assert_eq!(
        zk.set_acl("/p_a", &world(Perms::ADMIN), 0)
            .unwrap()
            .aversion,
        1
    );
    assert_eq!(
        code(zk.set_acl("/p_w", &Acl::open_unsafe(), -1)),
        ErrorCode::NoAuth
    );
    // getACL needs READ or ADMIN.
    assert_eq!(zk.get_acl("/p_r").unwrap().0, world(Perms::READ));
    assert_eq!(zk.get_acl("/p_a").unwrap().0, world(Perms::ADMIN));
    assert_eq!(code(zk.get_acl("/p_w")), ErrorCode::NoAuth);
    // check needs READ, alone and inside a multi.
    assert_eq!(zk.check("/p_r", 0).unwrap().version, 0);
    assert_eq!(code(zk.check("/p_w", -1)), ErrorCode::NoAuth);
    let error = zk.multi(vec![Op::check("/p_w", -1)]).unwrap_err();
    assert_eq!(error.code(), ErrorCode::NoAuth);
    assert_eq!(
        error.multi_results().unwrap(),
        &[OpResult::Error(Some(ErrorCode::NoAuth))]
    );
}

#[test]
fn delete_needs_delete_on_the_parent_not_on_the_znode() {
    let server = server();
    let zk = server.connect().unwrap();
    for (parent, perms) in [
        ("/del", Perms::DELETE | Perms::CREATE),
        ("/nodel", Perms(Perms::ALL.0 & !Perms::DELETE.0)),
    ] {
        zk.create(parent, b"", &world(perms), CreateMode::Persistent)
            .unwrap();
        // The child itself grants nothing, not even DELETE.
        zk.create(
            &format!("{parent}/k"),
            b"",
            &world(Perms::READ),
            CreateMode::Persistent,
        )
        .unwrap();
    }
    zk.delete("/del/k", -1).unwrap();
    assert_eq!(code(zk.delete("/nodel/k", -1)), ErrorCode::NoAuth);
    assert!(zk.exists("/nodel/k", None).unwrap().is_some());
}

#[test]
fn auth_scheme_expands_to_the_creators_digest_identities() {
    let server = server();
    let alice = connect_as(&server, "alice:secret");
    alice
        .create("/mine", b"x", &Acl::creator_all(), CreateMode::Persistent)
        .unwrap();
    let (acl, _) = alice.get_acl("/mine").unwrap();
    assert_eq!(
        acl,
        vec![Acl::new(Perms::ALL, Id::new("digest", ALICE_DIGEST_ID))]
    );
    // The ip identity is not an authenticated one: it never appears in an expansion.
    assert!(acl.iter().all(|entry| entry.id.scheme == "digest"));

    let anonymous = server.connect().unwrap();
    assert_eq!(code(anonymous.get_data("/mine", None)), ErrorCode::NoAuth);

    // With two digest identities, `auth` becomes one entry for each (ZooKeeper's order follows
    // its identity set, so only the set is compared).
    alice.add_auth("digest", b"bob:pw").unwrap();
    let read_admin = Perms::READ | Perms::ADMIN;
    alice
        .create(
            "/ours",
            b"",
            &[Acl::new(read_admin, Id::auth())],
            CreateMode::Persistent,
        )
        .unwrap();
    let (mut acl, _) = alice.get_acl("/ours").unwrap();
    acl.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(
        acl,
        vec![
            Acl::new(read_admin, Id::new("digest", ALICE_DIGEST_ID)),
            Acl::new(read_admin, Id::new("digest", BOB_DIGEST_ID)),
        ]
    );
}

#[test]
fn auth_scheme_without_a_digest_identity_is_invalid() {
    let server = server();
    let zk = server.connect().unwrap();
    assert_eq!(
        code(zk.create("/a", b"", &Acl::creator_all(), CreateMode::Persistent)),
        ErrorCode::InvalidAcl
    );
    assert_eq!(zk.exists("/a", None).unwrap(), None);
    zk.create("/b", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .unwrap();
    assert_eq!(
        code(zk.set_acl("/b", &Acl::creator_all(), -1)),
        ErrorCode::InvalidAcl
    );
    assert_eq!(zk.exists("/b", None).unwrap().unwrap().aversion, 0);
}

#[test]
fn ip_acl_matches_the_address_and_cidr_prefixes() {
    let server = server();
    let admin = server.connect().unwrap();
    let ip_acl = |id: &str| vec![Acl::new(Perms::ALL, Id::new("ip", id))];
    admin
        .create("/ten", b"", &ip_acl("10.0.0.0/8"), CreateMode::Persistent)
        .unwrap();
    admin
        .create(
            "/ten_one",
            b"",
            &ip_acl("10.1.0.0/16"),
            CreateMode::Persistent,
        )
        .unwrap();
    admin
        .create("/exact", b"", &ip_acl("10.0.0.5"), CreateMode::Persistent)
        .unwrap();
    admin
        .create(
            "/loopback",
            b"",
            &ip_acl("127.0.0.0/8"),
            CreateMode::Persistent,
        )
        .unwrap();
    // The host part of the prefix is ignored: 10.9.9.9/8 means 10.0.0.0/8.
    admin
        .create(
            "/host_bits",
            b"",
            &ip_acl("10.9.9.9/8"),
            CreateMode::Persistent,
        )
        .unwrap();

    let inside = connect_from(&server, "10.0.0.5");
    let other = connect_from(&server, "10.2.3.4");
    for path in ["/ten", "/exact", "/host_bits"] {
        inside.get_data(path, None).unwrap();
    }
    assert_eq!(code(inside.get_data("/ten_one", None)), ErrorCode::NoAuth);
    assert_eq!(code(inside.get_data("/loopback", None)), ErrorCode::NoAuth);
    other.get_data("/ten", None).unwrap();
    assert_eq!(code(other.get_data("/exact", None)), ErrorCode::NoAuth);
    // In-process clients are 127.0.0.1 unless told otherwise.
    admin.get_data("/loopback", None).unwrap();
    assert_eq!(code(admin.get_data("/ten", None)), ErrorCode::NoAuth);
}

#[test]
fn get_acl_masks_digests_without_admin() {
    let server = server();
    let alice = connect_as(&server, "alice:secret");
    let acl = vec![
        Acl::new(Perms::READ, Id::anyone()),
        Acl::new(Perms::ALL, Id::new("digest", ALICE_DIGEST_ID)),
    ];
    alice
        .create("/mixed", b"x", &acl, CreateMode::Persistent)
        .unwrap();
    assert_eq!(alice.get_acl("/mixed").unwrap().0, acl);

    let anonymous = server.connect().unwrap();
    assert_eq!(
        anonymous.get_acl("/mixed").unwrap().0,
        vec![
            Acl::new(Perms::READ, Id::anyone()),
            Acl::new(Perms::ALL, Id::new("digest", "alice:x"))
        ]
    );

    // ADMIN without READ still may read the ACL, unmasked.
    let admin_only = vec![
        Acl::new(Perms::ADMIN, Id::anyone()),
        Acl::new(Perms::ALL, Id::new("digest", ALICE_DIGEST_ID)),
    ];
    alice
        .create("/admin_only", b"x", &admin_only, CreateMode::Persistent)
        .unwrap();
    assert_eq!(anonymous.get_acl("/admin_only").unwrap().0, admin_only);
    assert_eq!(
        code(anonymous.get_data("/admin_only", None)),
        ErrorCode::NoAuth
    );
}

#[test]
fn invalid_acls_are_rejected() {
    let server = server();
    let zk = server.connect().unwrap();
    zk.create("/target", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .unwrap();
    let invalid: Vec<(&str, Vec<Acl>)> = vec![
        ("empty list", vec![]),
        (
            "unknown scheme",
            vec![Acl::new(Perms::ALL, Id::new("foo", "bar"))],
        ),
        (
            "world:other",
            vec![Acl::new(Perms::ALL, Id::new("world", "other"))],
        ),
        (
            "digest without a colon",
            vec![Acl::new(Perms::ALL, Id::new("digest", "nocolon"))],
        ),
        (
            "digest without a hash",
            vec![Acl::new(Perms::ALL, Id::new("digest", "user:"))],
        ),
        (
            "ip octet out of range",
            vec![Acl::new(Perms::ALL, Id::new("ip", "300.1.1.1"))],
        ),
        (
            "ip prefix too long",
            vec![Acl::new(Perms::ALL, Id::new("ip", "10.0.0.0/33"))],
        ),
        (
            "ip not an address",
            vec![Acl::new(Perms::ALL, Id::new("ip", "not-an-ip"))],
        ),
        (
            "one bad entry among good ones",
            vec![
                Acl::new(Perms::ALL, Id::anyone()),
                Acl::new(Perms::ALL, Id::new("ip", "1.2.3")),
            ],
        ),
    ];
    for (what, acl) in &invalid {
        let created = zk.create("/bad", b"", acl, CreateMode::Persistent);
        assert_eq!(code(created), ErrorCode::InvalidAcl, "create with {what}");
        assert_eq!(
            code(zk.set_acl("/target", acl, -1)),
            ErrorCode::InvalidAcl,
            "setACL with {what}"
        );
    }
    assert_eq!(zk.exists("/bad", None).unwrap(), None);
    let (acl, stat) = zk.get_acl("/target").unwrap();
    assert_eq!((acl, stat.aversion), (Acl::open_unsafe(), 0));
}

#[test]
fn duplicate_entries_are_dropped() {
    let server = server();
    let zk = server.connect().unwrap();
    let doubled = vec![
        Acl::new(Perms::ALL, Id::anyone()),
        Acl::new(Perms::ALL, Id::anyone()),
    ];
    zk.create("/dup", b"", &doubled, CreateMode::Persistent)
        .unwrap();
    assert_eq!(zk.get_acl("/dup").unwrap().0, Acl::open_unsafe());
}

#[test]
fn set_acl_bumps_aversion_and_checks_it() {
    let server = server();
    let zk = server.connect().unwrap();
    let created = zk
        .create2("/v", b"data", &Acl::open_unsafe(), CreateMode::Persistent)
        .unwrap()
        .1;
    let stat = zk.set_acl("/v", &world(Perms::ALL), 0).unwrap();
    assert_eq!(stat.aversion, 1);
    // setACL changes no other Stat field: it is not a data change.
    assert_eq!(
        Stat {
            aversion: 0,
            ..stat
        },
        created
    );
    assert_eq!(
        code(zk.set_acl("/v", &world(Perms::ALL), 0)),
        ErrorCode::BadVersion
    );
    assert_eq!(
        code(zk.set_acl("/v", &world(Perms::ALL), 5)),
        ErrorCode::BadVersion
    );
    assert_eq!(
        zk.set_acl("/v", &world(Perms::READ | Perms::ADMIN), -1)
            .unwrap()
            .aversion,
        2
    );
    let (acl, stat) = zk.get_acl("/v").unwrap();
    assert_eq!(acl, world(Perms::READ | Perms::ADMIN));
    assert_eq!(
        (stat.aversion, stat.version, stat.mzxid),
        (2, 0, created.mzxid)
    );
    assert_eq!(
        code(zk.set_acl("/missing", &Acl::open_unsafe(), -1)),
        ErrorCode::NoNode
    );
}
